//! Listener specs: each listener's protocol with its stage factories (built from their options
//! here, so a bad stage is a config error), its TLS (certificates read here), what a session
//! must establish before forwarding, and its routing rules.

use std::net::IpAddr;
use std::sync::Arc;

use proxy_core::audit::AuditKind;
use proxy_core::codec::RawTcp;
use proxy_core::forward::{ForwardLimits, FrameBudget};
use proxy_core::route::{Prerequisites, RouteId, RouteMatch, RouteRule, StaticRouter};
use proxy_core::stage::{NewStage, Protocol, StageRegistry, raw_tcp_registry};
use proxy_frontend::{
    Admission, KafkaListener, ListenerProtocol, ListenerSpec, ListenerTls, ReloadableServerConfig,
    TlsTermination,
};
use proxy_kafka::authorization::{AuditAllows, AuthorizationMetrics, NewAuthorization};
use proxy_kafka::broker_map::{BrokerMap, GatewayMode};
use proxy_kafka::quota::{NewQuota, QuotaMetrics};
use proxy_kafka::sasl::{ListenerSasl, SaslMetrics};
use proxy_kafka::tenant::{NewTenant, TenantMetrics};
use proxy_kafka::{Kafka, KafkaMetrics, kafka_registry};

use super::error;
use super::sasl::listener_sasl;
use crate::acl_reload::RulesFile;
use crate::config::{
    self, Config, ConfigError, KafkaConfig, KafkaGatewayConfig, ListenerConfig, ListenerTlsConfig,
    StageConfig,
};
use crate::users_reload::UsersFile;

/// Every listener's spec, the router their rules make, and what the binary keeps of them.
pub(super) struct Listeners {
    pub(super) specs: Vec<ListenerSpec>,
    pub(super) router: StaticRouter,
    pub(super) tls_reloads: Vec<(String, Arc<ReloadableServerConfig>)>,
    pub(super) kafka_metrics: Vec<(String, Arc<KafkaMetrics>)>,
    pub(super) quota_metrics: Vec<(String, Arc<QuotaMetrics>)>,
    pub(super) tenant_metrics: Vec<(String, Arc<TenantMetrics>)>,
    pub(super) sasl_metrics: Vec<(String, Arc<SaslMetrics>)>,
    /// The process's frame budget and each Kafka listener's under it.
    pub(super) frame_budgets: FrameBudgets,
    pub(super) users_files: Vec<UsersFile>,
    /// Kafka listeners' ACL rules files, reloaded on SIGHUP and when they change.
    pub(super) rules_files: Vec<RulesFile>,
    /// Kafka listeners' authorization decision counters, by listener name.
    pub(super) authorization_metrics: Vec<(String, Arc<AuthorizationMetrics>)>,
}

/// The process's frame budget and each Kafka listener's, by listener name.
#[derive(Debug, Clone)]
pub(crate) struct FrameBudgets {
    pub(crate) process: FrameBudget,
    pub(crate) listeners: Vec<(String, FrameBudget)>,
}

impl Listeners {
    /// Builds every listener of `config`, recording what is wrong in `errors`.
    pub(super) fn build(config: &Config, errors: &mut Vec<ConfigError>) -> Self {
        let mut built = Self {
            specs: Vec::with_capacity(config.listeners.len()),
            router: StaticRouter::new(),
            tls_reloads: Vec::new(),
            kafka_metrics: Vec::new(),
            quota_metrics: Vec::new(),
            tenant_metrics: Vec::new(),
            sasl_metrics: Vec::new(),
            frame_budgets: FrameBudgets {
                process: FrameBudget::new(config.limits.frame_budget),
                listeners: Vec::new(),
            },
            users_files: Vec::new(),
            rules_files: Vec::new(),
            authorization_metrics: Vec::new(),
        };
        let registries = Registries {
            tcp: raw_tcp_registry(),
            kafka: kafka_registry(),
            admin_audit: config
                .audit
                .as_ref()
                .is_some_and(|audit| audit.events.contains(&AuditKind::Admin)),
        };
        for (index, listener) in config.listeners.iter().enumerate() {
            let name: Arc<str> = Arc::from(listener.name.as_str());
            built.router = std::mem::take(&mut built.router).with_rules(
                name.clone(),
                rules(listener),
                RouteId::new(listener.cluster.as_str()),
            );
            let protocol = built.protocol(index, listener, &name, &registries, errors);
            let tls = built.tls(index, listener, errors);
            let frame_budget = built.frame_budget(listener);
            built.specs.push(ListenerSpec {
                requires: requires(tls.as_ref(), &protocol),
                name,
                bind: listener.bind,
                proxy_protocol: listener.proxy_protocol.clone(),
                tls,
                limits: Arc::new(ForwardLimits {
                    read_buffer: listener.read_buffer,
                    high_watermark: listener.high_watermark,
                    low_watermark: listener.low_watermark,
                    idle_timeout: listener.idle_timeout,
                    half_close_timeout: listener.half_close_timeout,
                    frame_timeout: match &listener.protocol {
                        config::ListenerProtocol::Kafka(kafka) => kafka.frames.timeout,
                        config::ListenerProtocol::Tcp => ForwardLimits::default().frame_timeout,
                    },
                }),
                frame_budget,
                admission: Arc::new(Admission::new(listener.connection_limits)),
                protocol,
            });
        }
        built
    }

    /// The listener's protocol with its stages.
    fn protocol(
        &mut self,
        index: usize,
        listener: &ListenerConfig,
        name: &Arc<str>,
        registries: &Registries,
        errors: &mut Vec<ConfigError>,
    ) -> ListenerProtocol {
        match &listener.protocol {
            config::ListenerProtocol::Tcp => ListenerProtocol::Tcp {
                stages: stages(&registries.tcp, &listener.stages, errors),
            },
            config::ListenerProtocol::Kafka(kafka) => {
                let mut stages = stages(&registries.kafka, &listener.stages, errors);
                if let Some(authorization) = self.authorization(index, listener, kafka, errors) {
                    // Before every configured stage: nothing a client may not do reaches one.
                    stages.insert(0, authorization);
                }
                if registries.admin_audit {
                    // First: it sees the requests as the client sent them, and the answers as
                    // the client gets them (denials included).
                    stages.insert(0, proxy_kafka::admin_audit::new_admin_audit());
                }
                ListenerProtocol::Kafka(self.kafka(index, listener, name, kafka, stages, errors))
            }
        }
    }

    /// A Kafka listener's authorization stage, its rules read (each file once, however many
    /// listeners name it).
    fn authorization(
        &mut self,
        index: usize,
        listener: &ListenerConfig,
        kafka: &KafkaConfig,
        errors: &mut Vec<ConfigError>,
    ) -> Option<Arc<dyn NewStage<Kafka>>> {
        let config = kafka.authorization.as_ref()?;
        let acl = match self
            .rules_files
            .iter_mut()
            .find(|file| file.path() == config.rules)
        {
            Some(file) => file.share(),
            None => match RulesFile::load(&config.rules) {
                Ok((file, acl)) => {
                    self.rules_files.push(file);
                    acl
                }
                Err(message) => {
                    errors.push(ConfigError::new(
                        format!("listener[{index}].authorization.rules"),
                        message,
                    ));
                    return None;
                }
            },
        };
        let audit_allows = if config.audit_allows {
            AuditAllows::Yes
        } else {
            AuditAllows::No
        };
        let stage = NewAuthorization::new(acl, audit_allows);
        self.authorization_metrics
            .push((listener.name.clone(), stage.metrics().clone()));
        Some(Arc::new(stage))
    }

    /// A Kafka listener: its broker map, counters and SASL handling.
    fn kafka(
        &mut self,
        index: usize,
        listener: &ListenerConfig,
        name: &Arc<str>,
        kafka: &KafkaConfig,
        stages: Vec<Arc<dyn NewStage<Kafka>>>,
        errors: &mut Vec<ConfigError>,
    ) -> KafkaListener {
        let metrics = Arc::new(KafkaMetrics::default());
        self.kafka_metrics
            .push((listener.name.clone(), metrics.clone()));
        for stage in &stages {
            if let Some(quota) = stage
                .as_any()
                .and_then(|any| any.downcast_ref::<NewQuota>())
            {
                self.quota_metrics
                    .push((listener.name.clone(), quota.metrics()));
            }
            if let Some(tenant) = stage
                .as_any()
                .and_then(|any| any.downcast_ref::<NewTenant>())
            {
                self.tenant_metrics
                    .push((listener.name.clone(), tenant.metrics().clone()));
            }
        }
        let sasl = match kafka
            .sasl
            .as_ref()
            .map(|sasl| listener_sasl(sasl, &mut self.users_files))
        {
            None => None,
            Some(Ok(sasl)) => {
                self.sasl_metrics
                    .push((listener.name.clone(), sasl.metrics().clone()));
                Some(sasl)
            }
            Some(Err(message)) => {
                errors.push(ConfigError::new(
                    format!("listener[{index}].sasl.users"),
                    message,
                ));
                None
            }
        };
        KafkaListener {
            brokers: Arc::new(BrokerMap::new(
                name.clone(),
                kafka.advertised_host.clone(),
                gateway_mode(&kafka.gateway, listener.bind.ip()),
            )),
            max_frame_size: kafka.frames.max_frame_size,
            max_request_size: kafka.frames.max_request_size,
            max_in_flight_requests: kafka.max_in_flight_requests,
            stages,
            metrics,
            sasl,
            routes: routes(listener),
        }
    }

    /// A Kafka listener's frame budget, under the process's; TCP listeners' reads are their
    /// messages, so nothing is assembled and nothing is charged.
    fn frame_budget(&mut self, listener: &ListenerConfig) -> Option<FrameBudget> {
        let config::ListenerProtocol::Kafka(kafka) = &listener.protocol else {
            return None;
        };
        let budget = self.frame_budgets.process.child(kafka.frames.budget);
        self.frame_budgets
            .listeners
            .push((listener.name.clone(), budget.clone()));
        Some(budget)
    }

    /// The listener's TLS, its certificates loaded (and kept for reloading).
    fn tls(
        &mut self,
        index: usize,
        listener: &ListenerConfig,
        errors: &mut Vec<ConfigError>,
    ) -> Option<ListenerTls> {
        match listener.tls.as_ref()? {
            ListenerTlsConfig::Passthrough { handshake_timeout } => {
                Some(ListenerTls::Passthrough {
                    handshake_timeout: *handshake_timeout,
                })
            }
            ListenerTlsConfig::Terminate {
                server,
                principal,
                handshake_timeout,
            } => match ReloadableServerConfig::load(server.clone()) {
                Ok(config) => {
                    let config = Arc::new(config);
                    self.tls_reloads
                        .push((listener.name.clone(), config.clone()));
                    Some(ListenerTls::Terminate(TlsTermination {
                        server: config,
                        handshake_timeout: *handshake_timeout,
                        principal: *principal,
                    }))
                }
                Err(err) => {
                    error(errors, format!("listener[{index}].tls"), &err);
                    None
                }
            },
        }
    }
}

/// The stage registries of the two protocols.
struct Registries {
    tcp: StageRegistry<RawTcp>,
    kafka: StageRegistry<Kafka>,
    /// `[audit]` wants admin events: Kafka listeners get the admin audit stage.
    admin_audit: bool,
}

/// The factories of a listener's `[[listener.stage]]` tables, in order.
fn stages<P: Protocol>(
    registry: &StageRegistry<P>,
    configs: &[StageConfig],
    errors: &mut Vec<ConfigError>,
) -> Vec<Arc<dyn NewStage<P>>> {
    configs
        .iter()
        .filter_map(|stage| match registry.build(&stage.kind, &stage.options) {
            Ok(factory) => Some(factory),
            Err(err) => {
                error(errors, stage.path.clone(), &err);
                None
            }
        })
        .collect()
}

/// What a session must establish before it forwards: TLS on a terminating listener, and an
/// authenticated client on one that terminates SASL.
fn requires(tls: Option<&ListenerTls>, protocol: &ListenerProtocol) -> Prerequisites {
    let mut requires = match tls {
        Some(ListenerTls::Terminate(_)) => Prerequisites::TLS,
        _ => Prerequisites::TCP,
    };
    if let ListenerProtocol::Kafka(KafkaListener {
        sasl: Some(ListenerSasl::Terminate(_)),
        ..
    }) = protocol
    {
        requires = requires.and(Prerequisites::AUTHENTICATED);
    }
    requires
}

/// The listener's `[[listener.route]]` rules, in order.
fn rules(listener: &ListenerConfig) -> Vec<RouteRule> {
    listener
        .routes
        .iter()
        .map(|rule| RouteRule {
            when: RouteMatch {
                authority: rule.authority.as_deref().map(Box::from),
                source: rule.source,
                sni: rule.sni.as_deref().map(Box::from),
                principal: rule.principal.as_deref().map(Box::from),
            },
            route: RouteId::new(rule.cluster.as_str()),
        })
        .collect()
}

/// Every route the listener's sessions can take: its cluster, then its rules' clusters, each
/// once.
fn routes(listener: &ListenerConfig) -> Vec<RouteId> {
    let mut routes: Vec<RouteId> = Vec::new();
    let clusters =
        std::iter::once(&listener.cluster).chain(listener.routes.iter().map(|rule| &rule.cluster));
    for cluster in clusters {
        let route = RouteId::new(cluster.as_str());
        if !routes.contains(&route) {
            routes.push(route);
        }
    }
    routes
}

/// The gateway a Kafka listener's keys describe; broker ports bind the listener's address.
fn gateway_mode(config: &KafkaGatewayConfig, bind_ip: IpAddr) -> GatewayMode {
    match config {
        KafkaGatewayConfig::PortPerBroker {
            broker_port_start,
            max_brokers,
            port_grace,
        } => GatewayMode::PortPerBroker {
            broker_port_start: *broker_port_start,
            max_brokers: *max_brokers,
            bind_ip,
            port_grace: *port_grace,
        },
        KafkaGatewayConfig::Sni {
            broker_host_pattern,
            advertised_port,
        } => GatewayMode::Sni {
            broker_host_pattern: broker_host_pattern.clone(),
            advertised_port: *advertised_port,
        },
    }
}
