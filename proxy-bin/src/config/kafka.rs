//! Checks for a Kafka listener's keys: `gateway`, `advertised_host`, `broker_port_start`,
//! `max_brokers`, `broker_port_grace`, `broker_host_pattern`, `advertised_port`,
//! `max_frame_size`, `frame_budget`, `frame_timeout` and `max_in_flight_requests`; and that TCP
//! listeners set none of them. The broker ports' range is
//! checked in [`super::kafka_ports`].

use std::net::SocketAddr;

use proxy_kafka::broker_map::{DEFAULT_BROKER_PORT_GRACE, HostPattern, NODE_ID_PLACEHOLDER};
use proxy_kafka::{
    DEFAULT_MAX_ANONYMOUS_REQUEST_SIZE, DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_IN_FLIGHT_REQUESTS,
};

use super::raw::RawSize;
use super::validate::Validator;
use super::{
    DEFAULT_FRAME_TIMEOUT, DEFAULT_LISTENER_FRAME_BUDGET, FrameLimits, KafkaConfig,
    KafkaGatewayConfig, ListenerTlsConfig, path, value,
};

/// Frames below this cannot hold a request header.
const MIN_FRAME_SIZE: usize = 1024;
/// Kafka's own frames cannot exceed an i32.
const MAX_FRAME_SIZE: usize = i32::MAX as usize;
/// The most requests in flight a session may be allowed: librdkafka's own ceiling for
/// `max.in.flight`. At about 80 bytes of bookkeeping each, a million is 80 MB per session;
/// anything larger is a typo, not a pipeline.
const MAX_IN_FLIGHT_REQUESTS: i64 = 1_000_000;

/// A listener's Kafka keys, as written.
#[derive(Debug, Default)]
pub(super) struct RawKafka {
    pub(super) gateway: Option<String>,
    pub(super) advertised_host: Option<String>,
    pub(super) advertised_port: Option<i64>,
    pub(super) broker_port_start: Option<i64>,
    pub(super) max_brokers: Option<i64>,
    pub(super) broker_port_grace: Option<String>,
    pub(super) broker_host_pattern: Option<String>,
    pub(super) max_frame_size: Option<RawSize>,
    pub(super) frame_budget: Option<RawSize>,
    pub(super) frame_timeout: Option<String>,
    pub(super) max_in_flight_requests: Option<i64>,
}

impl RawKafka {
    /// The keys given, by name.
    fn present(&self) -> Vec<&'static str> {
        [
            ("gateway", self.gateway.is_some()),
            ("advertised_host", self.advertised_host.is_some()),
            ("advertised_port", self.advertised_port.is_some()),
            ("broker_port_start", self.broker_port_start.is_some()),
            ("max_brokers", self.max_brokers.is_some()),
            ("broker_port_grace", self.broker_port_grace.is_some()),
            ("broker_host_pattern", self.broker_host_pattern.is_some()),
            ("max_frame_size", self.max_frame_size.is_some()),
            ("frame_budget", self.frame_budget.is_some()),
            ("frame_timeout", self.frame_timeout.is_some()),
            (
                "max_in_flight_requests",
                self.max_in_flight_requests.is_some(),
            ),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect()
    }
}

impl Validator {
    /// Reports Kafka keys on a listener of another protocol.
    pub(super) fn no_kafka_keys(&mut self, at: &str, raw: &RawKafka) {
        for key in raw.present() {
            self.error(
                path::key(at, key),
                "only Kafka listeners (protocol = \"kafka\") take this key".into(),
            );
        }
    }

    /// A Kafka listener's gateway and limits.
    pub(super) fn kafka(
        &mut self,
        at: &str,
        raw: RawKafka,
        bind: Option<SocketAddr>,
        tls: Option<&Option<ListenerTlsConfig>>,
        authenticates: bool,
    ) -> Option<KafkaConfig> {
        let frames = self.frame_limits(at, &raw, authenticates);
        let max_in_flight_requests = self.or_default(
            path::key(at, "max_in_flight_requests"),
            raw.max_in_flight_requests,
            DEFAULT_MAX_IN_FLIGHT_REQUESTS,
            in_flight_limit,
        );
        if let Some(Some(ListenerTlsConfig::Passthrough { .. })) = tls {
            self.error(
                path::key(&path::key(at, "tls"), "mode"),
                "a Kafka listener reads Kafka frames: TLS must be terminated (mode = \
                 \"terminate\"), not passed through"
                    .into(),
            );
        }
        let gateway_at = path::key(at, "gateway");
        let gateway = match self.required(&gateway_at, raw.gateway)?.as_str() {
            "port-per-broker" => {
                for key in ["broker_host_pattern", "advertised_port"] {
                    let set = match key {
                        "broker_host_pattern" => raw.broker_host_pattern.is_some(),
                        _ => raw.advertised_port.is_some(),
                    };
                    if set {
                        self.error(path::key(at, key), "only for gateway = \"sni\"".into());
                    }
                }
                let port_grace = self.or_default(
                    path::key(at, "broker_port_grace"),
                    raw.broker_port_grace,
                    DEFAULT_BROKER_PORT_GRACE,
                    |text| value::duration(&text),
                );
                let ports =
                    self.broker_port_range(at, raw.broker_port_start, raw.max_brokers, bind);
                let (broker_port_start, max_brokers) = ports?;
                KafkaGatewayConfig::PortPerBroker {
                    broker_port_start,
                    max_brokers,
                    port_grace: port_grace?,
                }
            }
            "sni" => {
                let port_keys = [
                    ("broker_port_start", raw.broker_port_start.is_some()),
                    ("max_brokers", raw.max_brokers.is_some()),
                    ("broker_port_grace", raw.broker_port_grace.is_some()),
                ];
                for (key, set) in port_keys {
                    if set {
                        self.error(
                            path::key(at, key),
                            "only for gateway = \"port-per-broker\"".into(),
                        );
                    }
                }
                if !matches!(tls, Some(Some(ListenerTlsConfig::Terminate { .. })) | None) {
                    self.error(
                        gateway_at.clone(),
                        "gateway = \"sni\" needs a [listener.tls] table (mode = \"terminate\"): \
                         the broker is chosen by the TLS server name"
                            .into(),
                    );
                }
                let pattern_at = path::key(at, "broker_host_pattern");
                let pattern = self.required(&pattern_at, raw.broker_host_pattern)?;
                let Some(broker_host_pattern) = HostPattern::parse(&pattern) else {
                    self.error(
                        pattern_at,
                        format!(
                            "{pattern:?} must contain {NODE_ID_PLACEHOLDER} exactly once, as in \
                             \"broker-{NODE_ID_PLACEHOLDER}.kafka.example.com\""
                        ),
                    );
                    return None;
                };
                let port_at = path::key(at, "advertised_port");
                let advertised_port = match raw.advertised_port {
                    Some(port) => match u16::try_from(port).ok().filter(|&p| p > 0) {
                        Some(port) => port,
                        None => {
                            self.error(port_at, format!("{port} is not a port (1-65535)"));
                            return None;
                        }
                    },
                    None => bind?.port(),
                };
                KafkaGatewayConfig::Sni {
                    broker_host_pattern,
                    advertised_port,
                }
            }
            other => {
                self.error(
                    gateway_at,
                    format!("unknown gateway {other:?}: expected \"port-per-broker\" or \"sni\""),
                );
                return None;
            }
        };
        let host_at = path::key(at, "advertised_host");
        let advertised_host = match (raw.advertised_host, &gateway, bind) {
            (Some(host), _, _) if host.trim().is_empty() => {
                self.error(host_at, "must not be empty".into());
                return None;
            }
            (Some(host), _, _) => host,
            // SNI gateways advertise the pattern's names; the host is unused.
            (None, KafkaGatewayConfig::Sni { .. }, _) => String::new(),
            (None, _, Some(bind)) if !bind.ip().is_unspecified() => bind.ip().to_string(),
            (None, _, _) => {
                self.error(
                    host_at,
                    "missing required key: clients must be told a host for each broker, and \
                     the listener binds an unspecified address"
                        .into(),
                );
                return None;
            }
        };
        Some(KafkaConfig {
            gateway,
            advertised_host,
            frames: frames?,
            max_in_flight_requests: max_in_flight_requests?,
            sasl: None,
            authorization: None,
        })
    }
}

impl Validator {
    /// `max_frame_size`, `frame_budget` and `frame_timeout`: the sizes of frames each way, what
    /// the listener's frames being assembled may hold together, and how long a client may
    /// take to finish one. Requests are kept to [`DEFAULT_MAX_ANONYMOUS_REQUEST_SIZE`] unless
    /// the listener authenticates clients before forwarding or `max_frame_size` is set.
    fn frame_limits(
        &mut self,
        at: &str,
        raw: &RawKafka,
        authenticates: bool,
    ) -> Option<FrameLimits> {
        let size_at = path::key(at, "max_frame_size");
        let explicit = self.or_default(size_at, raw.max_frame_size.clone(), None, |raw| {
            value::byte_size_in(&raw, (MIN_FRAME_SIZE, MAX_FRAME_SIZE)).map(Some)
        });
        let budget_at = path::key(at, "frame_budget");
        let budget = self.or_default(
            budget_at.clone(),
            raw.frame_budget.clone(),
            DEFAULT_LISTENER_FRAME_BUDGET,
            |raw| value::byte_size_in(&raw, (MIN_FRAME_SIZE, usize::MAX)),
        );
        let timeout = self.or_default(
            path::key(at, "frame_timeout"),
            raw.frame_timeout.clone(),
            DEFAULT_FRAME_TIMEOUT,
            |text| value::duration(&text),
        );
        let explicit = explicit?;
        let max_frame_size = explicit.unwrap_or(DEFAULT_MAX_FRAME_SIZE);
        let max_request_size = explicit.unwrap_or(if authenticates {
            DEFAULT_MAX_FRAME_SIZE
        } else {
            DEFAULT_MAX_ANONYMOUS_REQUEST_SIZE
        });
        let budget = budget?;
        let largest = FrameLimits::largest(max_frame_size, max_request_size);
        if budget < largest {
            self.error(
                budget_at,
                format!(
                    "{budget} bytes cannot hold one frame of max_frame_size ({largest} bytes with                      its length prefix): a frame that large could never be read; raise                      frame_budget or lower max_frame_size"
                ),
            );
            return None;
        }
        Some(FrameLimits {
            max_frame_size,
            max_request_size,
            budget,
            timeout: timeout?,
        })
    }
}

/// `max_in_flight_requests`: at least one (none would never read a request), at most
/// [`MAX_IN_FLIGHT_REQUESTS`].
fn in_flight_limit(n: i64) -> Result<usize, String> {
    match usize::try_from(n) {
        Ok(limit) if (1..=MAX_IN_FLIGHT_REQUESTS).contains(&n) => Ok(limit),
        _ => Err(format!(
            "{n} is not a request count: expected a whole number from 1 to \
             {MAX_IN_FLIGHT_REQUESTS} (reading pauses at this many unanswered requests)"
        )),
    }
}
