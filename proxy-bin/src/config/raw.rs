//! The first pass: the file deserialized into structs that mirror it, with every key the
//! structs do not expect recorded by path.
//!
//! Values that need checking beyond their TOML type (addresses, durations, sizes, the protocol)
//! stay strings here, and required keys are `Option`s, so that [`super::validate`] can report
//! all of them at once with their paths instead of serde stopping at the first. The keys each
//! struct takes are listed again in [`super::keys`], for suggestions and the reference; a test
//! checks the two agree.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// The whole file.
#[derive(Debug, Deserialize)]
pub(super) struct RawConfig {
    /// `[[listener]]` tables; missing means none, which validation rejects with a clear message.
    #[serde(default)]
    pub(super) listener: Vec<RawListener>,
    /// `[cluster.NAME]` tables; a `BTreeMap` so validation and errors follow name order.
    #[serde(default)]
    pub(super) cluster: BTreeMap<String, RawCluster>,
    /// The optional `[shutdown]` table.
    #[serde(default)]
    pub(super) shutdown: Option<RawShutdown>,
    /// The optional `[admin]` table.
    #[serde(default)]
    pub(super) admin: Option<RawAdmin>,
    /// The optional `[limits]` table.
    #[serde(default)]
    pub(super) limits: Option<RawLimits>,
    /// The optional `[audit]` table.
    #[serde(default)]
    pub(super) audit: Option<RawAudit>,
}

/// The `[audit]` table; see [`super::AuditConfig`].
#[derive(Debug, Deserialize)]
pub(super) struct RawAudit {
    pub(super) sink: Option<String>,
    pub(super) path: Option<String>,
    pub(super) cluster: Option<String>,
    pub(super) topic: Option<String>,
    pub(super) partition: Option<i64>,
    pub(super) events: Option<Vec<String>>,
    pub(super) queue: Option<i64>,
}

/// The `[limits]` table; see [`super::LimitsConfig`].
#[derive(Debug, Deserialize)]
pub(super) struct RawLimits {
    pub(super) max_connections: Option<i64>,
    pub(super) frame_budget: Option<RawSize>,
    pub(super) threads: Option<i64>,
}

/// A listener's connection-limit keys; see [`proxy_frontend::ConnectionLimits`].
#[derive(Debug)]
pub(super) struct RawListenerLimits {
    pub(super) max_connections: Option<i64>,
    pub(super) max_connections_per_source: Option<i64>,
    pub(super) connection_rate_per_source: Option<i64>,
}

/// The `[admin]` table; see [`super::AdminConfig`].
#[derive(Debug, Deserialize)]
pub(super) struct RawAdmin {
    pub(super) bind: Option<String>,
    pub(super) header_read_timeout: Option<String>,
    pub(super) idle_timeout: Option<String>,
    pub(super) max_connections: Option<i64>,
}

/// One `[[listener]]`; see [`super::ListenerConfig`] for what each key is for.
#[derive(Debug, Deserialize)]
pub(super) struct RawListener {
    pub(super) name: Option<String>,
    pub(super) bind: Option<String>,
    pub(super) protocol: Option<String>,
    pub(super) cluster: Option<String>,
    pub(super) idle_timeout: Option<String>,
    pub(super) half_close_timeout: Option<String>,
    pub(super) read_buffer: Option<RawSize>,
    pub(super) high_watermark: Option<RawSize>,
    pub(super) low_watermark: Option<RawSize>,
    pub(super) proxy_protocol: Option<String>,
    pub(super) proxy_protocol_trusted: Option<Vec<String>>,
    pub(super) proxy_protocol_timeout: Option<String>,
    pub(super) max_connections: Option<i64>,
    pub(super) max_connections_per_source: Option<i64>,
    pub(super) connection_rate_per_source: Option<i64>,
    #[serde(default)]
    pub(super) stage: Vec<RawStage>,
    #[serde(default)]
    pub(super) route: Vec<RawRoute>,
    pub(super) tls: Option<RawListenerTls>,
    // Kafka listeners only; see `super::kafka`.
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
    pub(super) sasl: Option<super::listener_sasl::RawListenerSasl>,
    pub(super) authorization: Option<super::listener_authorization::RawAuthorization>,
}

/// A listener's `[listener.tls]` table; see [`super::ListenerTlsConfig`].
#[derive(Debug, Deserialize)]
pub(super) struct RawListenerTls {
    pub(super) mode: Option<String>,
    pub(super) cert: Option<String>,
    pub(super) key: Option<String>,
    #[serde(default)]
    pub(super) certificate: Vec<RawTlsCertificate>,
    pub(super) min_version: Option<String>,
    pub(super) alpn: Option<Vec<String>>,
    pub(super) client_auth: Option<String>,
    pub(super) client_ca: Option<String>,
    pub(super) principal: Option<String>,
    pub(super) handshake_timeout: Option<String>,
}

/// One `[[listener.tls.certificate]]`: a certificate served for some server names.
#[derive(Debug, Deserialize)]
pub(super) struct RawTlsCertificate {
    pub(super) names: Option<Vec<String>>,
    pub(super) cert: Option<String>,
    pub(super) key: Option<String>,
}

/// A cluster's `[cluster.NAME.tls]` table.
#[derive(Debug, Deserialize)]
pub(super) struct RawClusterTls {
    pub(super) ca: Option<String>,
    pub(super) server_name: Option<String>,
    pub(super) cert: Option<String>,
    pub(super) key: Option<String>,
    pub(super) insecure_skip_verify: Option<bool>,
}

/// A cluster's `[cluster.NAME.sasl]` table; see [`super::cluster_sasl`].
#[derive(Debug, Deserialize)]
pub(super) struct RawClusterSasl {
    pub(super) mechanism: Option<String>,
    pub(super) username: Option<String>,
    pub(super) password_file: Option<String>,
    pub(super) allow_plain_without_tls: Option<bool>,
}

/// One `[[listener.route]]`; see [`super::RouteConfig`].
#[derive(Debug, Deserialize)]
pub(super) struct RawRoute {
    pub(super) cluster: Option<String>,
    pub(super) authority: Option<String>,
    pub(super) source: Option<String>,
    pub(super) sni: Option<String>,
    pub(super) principal: Option<String>,
}

/// One `[[listener.stage]]`.
#[derive(Debug, Deserialize)]
pub(super) struct RawStage {
    pub(super) kind: Option<String>,
    /// Everything but `kind` belongs to the stage. Flattening also keeps these keys away from
    /// `serde_ignored`, so they are not reported as unknown.
    #[serde(flatten)]
    pub(super) options: toml::Table,
}

/// One `[cluster.NAME]`; see [`super::ClusterConfig`].
#[derive(Debug, Deserialize)]
pub(super) struct RawCluster {
    pub(super) backends: Option<Vec<String>>,
    pub(super) connect_timeout: Option<String>,
    pub(super) send_proxy_protocol: Option<String>,
    pub(super) exec: Option<Vec<String>>,
    pub(super) child_stop_timeout: Option<String>,
    pub(super) ready_requires: Option<String>,
    pub(super) probe_interval: Option<String>,
    pub(super) tls: Option<RawClusterTls>,
    pub(super) sasl: Option<RawClusterSasl>,
}

/// The `[shutdown]` table; see [`super::ShutdownConfig`].
#[derive(Debug, Deserialize)]
pub(super) struct RawShutdown {
    pub(super) accept_grace: Option<String>,
    pub(super) drain_timeout: Option<String>,
    pub(super) termination_grace_period: Option<String>,
    pub(super) upgrade_timeout: Option<String>,
}

/// A byte size as written: a TOML integer (bytes) or a string such as `"32KiB"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RawSize {
    Bytes(i64),
    Text(String),
}

// === impl RawSize ===

impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Hand-written rather than `#[serde(untagged)]`, whose error ("did not match any
        // variant") would not tell the operator what a size looks like.
        struct SizeVisitor;

        impl Visitor<'_> for SizeVisitor {
            type Value = RawSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte size: an integer number of bytes or a string such as \"32KiB\"")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawSize, E> {
                Ok(RawSize::Bytes(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawSize, E> {
                i64::try_from(v)
                    .map(RawSize::Bytes)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawSize, E> {
                Ok(RawSize::Text(v.to_owned()))
            }
        }

        deserializer.deserialize_any(SizeVisitor)
    }
}

impl fmt::Display for RawSize {
    /// As written in the file, so error messages quote what the operator typed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawSize::Bytes(n) => write!(f, "{n}"),
            RawSize::Text(text) => write!(f, "{text:?}"),
        }
    }
}
