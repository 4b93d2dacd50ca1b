//! Turns a validated [`Config`] into what the library crates run: listener specs with their
//! stage factories, cluster specs, and the router. Stage options are checked here, so
//! `sluice check` reports a bad stage with its key path like any other config error.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use proxy_backend::health::Requirement;
use proxy_backend::{BackendTls, BackendTlsOptions, ChildSpec, ClusterSpec};
use proxy_core::forward::ForwardLimits;
use proxy_kafka::sasl::{SaslMetrics, SaslServerConfig, SaslTermination};
use proxy_kafka::{KafkaMetrics, kafka_registry};
use proxy_core::route::{Prerequisites, RouteId, RouteMatch, RouteRule, StaticRouter};
use proxy_core::sasl::{FailureThrottle, UserStore};
use proxy_core::stage::raw_tcp_registry;
use proxy_frontend::{
    GatewayMode, KafkaGateway, KafkaListener, ListenerSasl, ListenerSpec, ListenerTls,
    ReloadableServerConfig, SaslTerminate, TlsTermination,
};

use crate::config::{
    Config, ConfigError, ConfigErrors, KafkaGatewayConfig, KafkaSaslConfig, ListenerProtocol,
    ListenerTlsConfig, ReadyRequires,
};

/// Everything the proxy runs, built from configuration.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) listeners: Vec<ListenerSpec>,
    pub(crate) clusters: Vec<ClusterSpec>,
    pub(crate) router: StaticRouter,
    /// The clusters readiness depends on, and how to probe them.
    pub(crate) probes: Vec<Probe>,
    /// Terminating listeners' TLS configurations, reloaded on SIGHUP and when files change.
    pub(crate) tls_reloads: Vec<(String, Arc<ReloadableServerConfig>)>,
    /// Kafka listeners' per-API counters, by listener name.
    pub(crate) kafka_metrics: Vec<(String, Arc<KafkaMetrics>)>,
    /// SASL-inspecting and -terminating listeners' outcome counters, by listener name.
    pub(crate) sasl_metrics: Vec<(String, Arc<SaslMetrics>)>,
}

/// A Kafka listener's SASL handling; for termination, its users file read and checked (the
/// error names the file).
fn listener_sasl(config: &KafkaSaslConfig) -> Result<ListenerSasl, String> {
    let metrics = Arc::new(SaslMetrics::default());
    match config {
        KafkaSaslConfig::Inspect { mechanisms } => Ok(ListenerSasl::Inspect {
            mechanisms: mechanisms.as_slice().into(),
            metrics,
        }),
        KafkaSaslConfig::Terminate {
            mechanisms,
            users,
            timeout,
            session_lifetime,
            accept_mtls_principal,
            failure_delay,
        } => {
            let text = std::fs::read_to_string(users)
                .map_err(|err| format!("cannot read the users file {}: {err}", users.display()))?;
            let store =
                UserStore::parse(&text).map_err(|err| format!("{}: {err}", users.display()))?;
            if store.is_empty() {
                tracing::warn!(
                    users = %users.display(),
                    "the users file lists no users: every client authentication will fail"
                );
            }
            Ok(ListenerSasl::Terminate(SaslTerminate {
                termination: SaslTermination {
                    config: Arc::new(SaslServerConfig {
                        mechanisms: mechanisms.clone(),
                        users: Arc::new(store),
                        session_lifetime: *session_lifetime,
                    }),
                    metrics,
                    throttle: Arc::new(FailureThrottle::new(
                        *failure_delay,
                        MAX_FAILURE_DELAY,
                        FAILURE_WINDOW,
                    )),
                },
                timeout: *timeout,
                accept_mtls_principal: *accept_mtls_principal,
            }))
        }
    }
}

/// The longest a client address that keeps failing to authenticate is made to wait.
const MAX_FAILURE_DELAY: Duration = Duration::from_secs(10);
/// Failures older than this (counted from an address's latest) are forgotten.
const FAILURE_WINDOW: Duration = Duration::from_secs(300);

/// A cluster whose reachability readiness requires.
#[derive(Debug)]
pub(crate) struct Probe {
    pub(crate) cluster: ClusterSpec,
    pub(crate) requirement: Requirement,
    pub(crate) interval: Duration,
}

/// Builds the plan, or every error found while building it.
pub(crate) fn plan(config: &Config) -> Result<Plan, ConfigErrors> {
    let registry = raw_tcp_registry();
    let kafka_registry = kafka_registry();
    let mut kafka_metrics = Vec::new();
    let mut sasl_metrics = Vec::new();
    let mut errors = Vec::new();
    let mut listeners = Vec::new();
    let mut router = StaticRouter::new();
    let mut tls_reloads = Vec::new();
    for (index, listener) in config.listeners.iter().enumerate() {
        let name: Arc<str> = Arc::from(listener.name.as_str());
        let mut stages = Vec::new();
        let mut kafka = None;
        match &listener.protocol {
            ListenerProtocol::Tcp => {
                for stage in &listener.stages {
                    match registry.build(&stage.kind, &stage.options) {
                        Ok(factory) => stages.push(factory),
                        Err(err) => {
                            errors.push(ConfigError::new(stage.path.clone(), err.to_string()));
                        }
                    }
                }
            }
            ListenerProtocol::Kafka(config) => {
                let mut kafka_stages = Vec::new();
                for stage in &listener.stages {
                    match kafka_registry.build(&stage.kind, &stage.options) {
                        Ok(factory) => kafka_stages.push(factory),
                        Err(err) => {
                            errors.push(ConfigError::new(stage.path.clone(), err.to_string()));
                        }
                    }
                }
                let metrics = Arc::new(KafkaMetrics::default());
                kafka_metrics.push((listener.name.clone(), metrics.clone()));
                let sasl = match &config.sasl {
                    None => None,
                    Some(sasl) => match listener_sasl(sasl) {
                        Ok(sasl) => {
                            sasl_metrics.push((listener.name.clone(), sasl.metrics().clone()));
                            Some(sasl)
                        }
                        Err(message) => {
                            errors.push(ConfigError::new(
                                format!("listener[{index}].sasl.users"),
                                message,
                            ));
                            None
                        }
                    },
                };
                let routes = std::iter::once(&listener.cluster)
                    .chain(listener.routes.iter().map(|rule| &rule.cluster))
                    .map(|cluster| RouteId::new(cluster.as_str()))
                    .fold(Vec::new(), |mut routes, route| {
                        if !routes.contains(&route) {
                            routes.push(route);
                        }
                        routes
                    });
                kafka = Some(KafkaListener {
                    gateway: Arc::new(KafkaGateway::new(
                        name.clone(),
                        config.advertised_host.clone(),
                        gateway_mode(&config.gateway, listener.bind.ip()),
                    )),
                    node_id: None,
                    max_frame_size: config.max_frame_size,
                    stages: kafka_stages,
                    metrics,
                    sasl,
                    routes,
                });
            }
        }
        let rules = listener
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
            .collect();
        router = router.with_rules(name.clone(), rules, RouteId::new(listener.cluster.as_str()));
        let tls = match &listener.tls {
            None => None,
            Some(ListenerTlsConfig::Passthrough { handshake_timeout }) => {
                Some(ListenerTls::Passthrough {
                    handshake_timeout: *handshake_timeout,
                })
            }
            Some(ListenerTlsConfig::Terminate {
                server,
                principal,
                handshake_timeout,
            }) => match ReloadableServerConfig::load(server.clone()) {
                Ok(config) => {
                    let config = Arc::new(config);
                    tls_reloads.push((listener.name.clone(), config.clone()));
                    Some(ListenerTls::Terminate(TlsTermination {
                        server: config,
                        handshake_timeout: *handshake_timeout,
                        principal: *principal,
                    }))
                }
                Err(err) => {
                    errors.push(ConfigError::new(
                        format!("listener[{index}].tls"),
                        err.to_string(),
                    ));
                    None
                }
            },
        };
        let mut requires = match tls {
            Some(ListenerTls::Terminate(_)) => Prerequisites::TLS,
            _ => Prerequisites::TCP,
        };
        if let Some(KafkaListener {
            sasl: Some(ListenerSasl::Terminate(_)),
            ..
        }) = &kafka
        {
            requires = requires.and(Prerequisites::AUTHENTICATED);
        }
        listeners.push(ListenerSpec {
            name,
            bind: listener.bind,
            requires,
            proxy_protocol: listener.proxy_protocol.clone(),
            tls,
            limits: ForwardLimits {
                read_buffer: listener.read_buffer,
                high_watermark: listener.high_watermark,
                low_watermark: listener.low_watermark,
                idle_timeout: listener.idle_timeout,
                half_close_timeout: listener.half_close_timeout,
            },
            stages,
            kafka,
        });
    }
    let mut clusters = Vec::with_capacity(config.clusters.len());
    for (name, cluster) in &config.clusters {
        let tls = match &cluster.tls {
            None => None,
            Some(tls) => {
                let options = BackendTlsOptions {
                    ca: tls.ca.clone(),
                    server_name: tls.server_name.clone(),
                    client_cert: tls.cert.clone(),
                    client_key: tls.key.clone(),
                    insecure_skip_verify: tls.insecure_skip_verify,
                };
                match BackendTls::from_files(&options) {
                    Ok(tls) => Some(tls),
                    Err(err) => {
                        errors.push(ConfigError::new(
                            format!("cluster.{name}.tls"),
                            err.to_string(),
                        ));
                        None
                    }
                }
            }
        };
        clusters.push(ClusterSpec {
            route: RouteId::new(name.as_str()),
            backends: cluster.backends.clone(),
            connect_timeout: cluster.connect_timeout,
            send_proxy_protocol: cluster.send_proxy_protocol,
            exec: cluster.exec.as_ref().map(|exec| ChildSpec {
                argv: exec.argv.clone(),
                stop_timeout: exec.stop_timeout,
            }),
            tls,
            sasl: cluster.sasl.clone().map(Arc::new),
        });
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let probes = clusters
        .iter()
        .filter_map(|spec| {
            let config = config.clusters.get(spec.route.as_str())?;
            let requirement = match config.ready_requires {
                ReadyRequires::None => return None,
                ReadyRequires::Any => Requirement::Any,
                ReadyRequires::All => Requirement::All,
            };
            Some(Probe {
                cluster: spec.clone(),
                requirement,
                interval: config.probe_interval,
            })
        })
        .collect();
    Ok(Plan {
        listeners,
        clusters,
        router,
        probes,
        tls_reloads,
        kafka_metrics,
        sasl_metrics,
    })
}

/// The gateway a Kafka listener's keys describe; broker ports bind the listener's address.
fn gateway_mode(config: &KafkaGatewayConfig, bind_ip: IpAddr) -> GatewayMode {
    match config {
        KafkaGatewayConfig::PortPerBroker { broker_port_start } => GatewayMode::PortPerBroker {
            broker_port_start: *broker_port_start,
            bind_ip,
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
