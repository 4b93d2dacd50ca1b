//! Checks for `[[listener]]` tables: each value on its own, then the rules that span
//! listeners (unique names and bind addresses) or tables (the cluster must exist).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::kafka::RawKafka;
use super::listener_sasl::authenticates_before_forwarding;
use super::ports::collide;
use super::raw::{RawListener, RawListenerLimits, RawStage};
use super::validate::Validator;
use super::{KafkaConfig, ListenerConfig, ListenerProtocol, StageConfig, addr, path, value};

const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60 * 60);
const DEFAULT_HALF_CLOSE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_READ_BUFFER: usize = 32 * 1024;
/// Smaller reads cost a syscall per few bytes; larger ones only waste memory per connection.
const READ_BUFFER_RANGE: (usize, usize) = (512, 16 * 1024 * 1024);
const DEFAULT_HIGH_WATERMARK: usize = 256 * 1024;
const DEFAULT_LOW_WATERMARK: usize = 128 * 1024;

const BIND_EXPECTED: &str = "expected IP:PORT such as 127.0.0.1:9192 or [::1]:9192";

/// Which protocol a listener speaks, known before its protocol-specific keys are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProtocolKind {
    Tcp,
    Kafka,
}

/// Where each listener name was first seen, to point duplicates at it.
#[derive(Debug, Default)]
struct Seen {
    names: HashMap<String, String>,
}

// === impl Validator ===

impl Validator {
    /// The valid listeners, each with its index in the file (for errors found later, across
    /// tables); `clusters` are the names of all `[cluster.NAME]` tables.
    pub(super) fn listeners(
        &mut self,
        raw: Vec<RawListener>,
        clusters: &[String],
    ) -> Vec<(usize, ListenerConfig)> {
        if raw.is_empty() {
            self.error(
                "listener".into(),
                "no listeners: define at least one [[listener]] table".into(),
            );
        }
        let mut seen = Seen::default();
        raw.into_iter()
            .enumerate()
            .filter_map(|(i, raw)| {
                let listener = self.listener(&path::index("listener", i), raw, clusters, &mut seen);
                Some((i, listener?))
            })
            .collect()
    }

    fn listener(
        &mut self,
        at: &str,
        raw: RawListener,
        clusters: &[String],
        seen: &mut Seen,
    ) -> Option<ListenerConfig> {
        let name = self.name(at, raw.name, seen);
        let bind = self.bind(at, raw.bind);
        let kind = self.protocol(at, raw.protocol);
        let raw_kafka = RawKafka {
            gateway: raw.gateway,
            advertised_host: raw.advertised_host,
            advertised_port: raw.advertised_port,
            broker_port_start: raw.broker_port_start,
            max_brokers: raw.max_brokers,
            broker_port_grace: raw.broker_port_grace,
            broker_host_pattern: raw.broker_host_pattern,
            max_frame_size: raw.max_frame_size,
            frame_budget: raw.frame_budget,
            frame_timeout: raw.frame_timeout,
            max_in_flight_requests: raw.max_in_flight_requests,
        };
        let cluster = self.cluster_ref(at, raw.cluster, clusters);
        let idle_timeout = self.or_default(
            path::key(at, "idle_timeout"),
            raw.idle_timeout,
            DEFAULT_IDLE_TIMEOUT,
            |text| value::duration(&text),
        );
        let half_close_timeout = self.or_default(
            path::key(at, "half_close_timeout"),
            raw.half_close_timeout,
            DEFAULT_HALF_CLOSE_TIMEOUT,
            |text| value::duration(&text),
        );
        let read_buffer = self.or_default(
            path::key(at, "read_buffer"),
            raw.read_buffer,
            DEFAULT_READ_BUFFER,
            |raw| value::byte_size_in(&raw, READ_BUFFER_RANGE),
        );
        let high = self.or_default(
            path::key(at, "high_watermark"),
            raw.high_watermark,
            DEFAULT_HIGH_WATERMARK,
            |raw| value::byte_size(&raw),
        );
        let low = self.or_default(
            path::key(at, "low_watermark"),
            raw.low_watermark,
            DEFAULT_LOW_WATERMARK,
            |raw| value::byte_size(&raw),
        );
        if let (Some(high), Some(low)) = (high, low)
            && low >= high
        {
            self.error(
                path::key(at, "low_watermark"),
                format!(
                    "low_watermark ({low} bytes) must be less than high_watermark ({high} \
                     bytes), or paused reads could never resume"
                ),
            );
        }
        let stages = match kind {
            Some(kind) => self.stages(at, raw.stage, kind),
            None => None,
        };
        let proxy_protocol = self.proxy_protocol(
            at,
            raw.proxy_protocol,
            raw.proxy_protocol_trusted,
            raw.proxy_protocol_timeout,
        );
        let connection_limits = self.listener_limits(
            at,
            RawListenerLimits {
                max_connections: raw.max_connections,
                max_connections_per_source: raw.max_connections_per_source,
                connection_rate_per_source: raw.connection_rate_per_source,
            },
        );
        let routes = self.routes(at, raw.route, clusters);
        let tls = self.listener_tls(at, raw.tls);
        let protocol = match kind? {
            ProtocolKind::Tcp => {
                self.no_kafka_keys(at, &raw_kafka);
                for (key, given) in [
                    ("sasl", raw.sasl.is_some()),
                    ("authorization", raw.authorization.is_some()),
                ] {
                    if given {
                        self.error(
                            path::key(at, key),
                            "only Kafka listeners (protocol = \"kafka\") take this key".into(),
                        );
                    }
                }
                Some(ListenerProtocol::Tcp)
            }
            ProtocolKind::Kafka => {
                let sasl = self.listener_sasl(at, raw.sasl, tls.as_ref());
                self.principal_rules_need_authentication(at, routes.as_deref(), &sasl, &tls);
                let authenticates = authenticates_before_forwarding(&sasl, &tls);
                let kafka = self.kafka(at, raw_kafka, bind, tls.as_ref(), authenticates);
                let authorization = self.listener_authorization(at, raw.authorization);
                match (kafka, sasl, authorization) {
                    (Some(kafka), Some(sasl), Some(authorization)) => {
                        Some(ListenerProtocol::Kafka(Box::new(KafkaConfig {
                            sasl,
                            authorization,
                            ..kafka
                        })))
                    }
                    _ => None,
                }
            }
        };
        Some(ListenerConfig {
            name: name?,
            bind: bind?,
            protocol: protocol?,
            cluster: cluster?,
            idle_timeout: idle_timeout?,
            half_close_timeout: half_close_timeout?,
            read_buffer: read_buffer?,
            high_watermark: high?,
            low_watermark: low?,
            stages: stages?,
            proxy_protocol: proxy_protocol?,
            routes: routes?,
            tls: tls?,
            connection_limits: connection_limits?,
        })
    }

    fn name(&mut self, at: &str, raw: Option<String>, seen: &mut Seen) -> Option<String> {
        let owner = at.to_owned();
        let at = path::key(at, "name");
        let name = self.required(&at, raw)?;
        if name.is_empty() {
            self.error(at, "listener name must not be empty".into());
            return None;
        }
        if let Some(first) = seen.names.get(&name) {
            self.error(
                at,
                format!("duplicate listener name {name:?} (also used by {first})"),
            );
            return None;
        }
        seen.names.insert(name.clone(), owner);
        Some(name)
    }

    /// The listener's `bind`, unless another listener's takes its port.
    fn bind(&mut self, at: &str, raw: Option<String>) -> Option<SocketAddr> {
        let owner = at.to_owned();
        let at = path::key(at, "bind");
        let text = self.required(&at, raw)?;
        let Some(bind) = addr::parse_bind(&text) else {
            self.error(
                at,
                format!("invalid socket address {text:?}: {BIND_EXPECTED}"),
            );
            return None;
        };
        if let Some((_, first)) = self.binds.iter().find(|(other, _)| *other == bind) {
            self.error(
                at,
                format!("duplicate bind address {text:?} (also used by {first})"),
            );
            return None;
        }
        if let Some((other, first)) = self.binds.iter().find(|(other, _)| collide(*other, bind)) {
            self.error(
                at,
                format!(
                    "{text:?} takes port {} of {first} (bind = \"{other}\"): an unspecified \
                     address (0.0.0.0, ::) holds its port on every address",
                    bind.port()
                ),
            );
            return None;
        }
        self.binds.push((bind, owner));
        Some(bind)
    }

    fn protocol(&mut self, at: &str, raw: Option<String>) -> Option<ProtocolKind> {
        let at = path::key(at, "protocol");
        match self.required(&at, raw)?.as_str() {
            "tcp" => Some(ProtocolKind::Tcp),
            "kafka" => Some(ProtocolKind::Kafka),
            other => {
                self.error(
                    at,
                    format!("unsupported protocol {other:?}: expected \"tcp\" or \"kafka\""),
                );
                None
            }
        }
    }

    pub(super) fn cluster_ref(
        &mut self,
        at: &str,
        raw: Option<String>,
        clusters: &[String],
    ) -> Option<String> {
        let at = path::key(at, "cluster");
        let name = self.required(&at, raw)?;
        if clusters.contains(&name) {
            return Some(name);
        }
        let defined = if clusters.is_empty() {
            "none".to_owned()
        } else {
            let quoted: Vec<String> = clusters.iter().map(|c| format!("{c:?}")).collect();
            quoted.join(", ")
        };
        self.error(
            at,
            format!("no cluster named {name:?} (defined: {defined})"),
        );
        None
    }

    /// Checks each stage's kind and options against the stages this build of Sluice has, so a
    /// bad stage is reported in the same run as every other mistake.
    fn stages(
        &mut self,
        at: &str,
        raw: Vec<RawStage>,
        kind_of_listener: ProtocolKind,
    ) -> Option<Vec<StageConfig>> {
        let tcp = proxy_core::stage::raw_tcp_registry();
        let kafka = proxy_kafka::kafka_registry();
        let mut stages = Some(Vec::with_capacity(raw.len()));
        for (i, stage) in raw.into_iter().enumerate() {
            let at = path::index(&path::key(at, "stage"), i);
            let kind = self.required(&path::key(&at, "kind"), stage.kind);
            let protocol = kind_of_listener;
            let built = kind.as_deref().map(|name| match protocol {
                ProtocolKind::Tcp => tcp.build(name, &stage.options).map(drop),
                ProtocolKind::Kafka => kafka.build(name, &stage.options).map(drop),
            });
            if let Some(Err(err)) = built {
                self.error(at.clone(), err.to_string());
                stages = None;
                continue;
            }
            match (kind, stages.as_mut()) {
                (Some(kind), Some(stages)) => stages.push(StageConfig {
                    kind,
                    options: stage.options,
                    path: at,
                }),
                // Keep checking the remaining stages so their errors are reported too.
                (Some(_), None) => {}
                (None, _) => stages = None,
            }
        }
        stages
    }
}
