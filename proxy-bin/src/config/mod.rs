//! The `sluice` binary's TOML configuration: the first thing `main` does is turn the file into a
//! validated [`Config`] that the listeners, clusters and shutdown logic are built from.
//!
//! Loading happens in passes so that an operator sees every mistake in one run instead of
//! fixing them one at a time: [`first_pass`] deserializes the file into [`raw`] structs while
//! recording unknown keys (with a suggestion from [`keys`]) and values of the wrong type, then
//! [`validate`] checks every value, and [`load()`] reads every file the config names
//! ([`files`]). All errors are collected into [`ConfigErrors`], each with its key path and the
//! line of that key ([`lines`]).
//!
//! Only a TOML syntax error stops the first pass early, because after that there is no
//! document left to read.

mod addr;
mod audit;
mod cluster_sasl;
mod error;
mod files;
mod first_pass;
mod kafka;
mod kafka_ports;
mod keys;
mod lifecycle;
mod limits;
mod lines;
mod listener;
mod listener_authorization;
mod listener_sasl;
mod load;
mod path;
mod ports;
mod proxy;
mod raw;
mod route;
mod secret_file;
mod tls;
mod validate;
mod value;
mod warnings;

#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzz_checks;

#[cfg(test)]
mod audit_tests;
#[cfg(test)]
mod cluster_sasl_tests;
#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod kafka_frames_tests;
#[cfg(test)]
mod kafka_ports_tests;
#[cfg(test)]
mod kafka_tests;
#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod limits_tests;
#[cfg(test)]
mod listener_sasl_tests;
#[cfg(test)]
mod ports_tests;
#[cfg(test)]
mod proxy_tests;
#[cfg(test)]
mod reference_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use proxy_core::proxy_protocol::{ProxyProtocolPolicy, ProxyProtocolVersion};
use proxy_core::sasl::Mechanism;
use proxy_frontend::{PrincipalSource, TlsServerOptions};

pub(crate) use error::with_causes;
pub use error::{ConfigError, ConfigErrors};
pub(crate) use files::read_acl_rules;
pub use lines::KeyLines;
pub use load::{Loaded, load, parse, parse_in};
/// A backend as written in the file (port never 0); the connector's own type, so no conversion.
pub use proxy_backend::BackendAddr;
use proxy_kafka::broker_map::HostPattern;
/// A cluster's SASL credentials, the password read from its file; the connector's own type.
pub use proxy_kafka::client::ClusterSasl;

/// The configuration used when no file is given: one plain TCP listener forwarding to a local
/// broker. It is also the smallest complete example of the format.
pub const DEFAULT_CONFIG: &str = include_str!("../default.toml");

/// A validated configuration: every address parsed, every reference resolved, every default
/// applied. Later stages never need to re-check it.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// In file order, so log output and startup order follow what the operator wrote.
    pub listeners: Vec<ListenerConfig>,
    /// Keyed by the name in `[cluster.NAME]`; every listener's `cluster` is a key here.
    pub clusters: BTreeMap<String, ClusterConfig>,
    /// How a graceful stop is timed.
    pub shutdown: ShutdownConfig,
    /// The admin HTTP listener (`/livez`, `/readyz`, `/metrics`), when configured.
    pub admin: Option<AdminConfig>,
    /// Process-wide limits.
    pub limits: LimitsConfig,
    /// Where audit events go, when configured.
    pub audit: Option<AuditConfig>,
}

/// The optional `[audit]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// Where the events are written.
    pub sink: AuditSinkConfig,
    /// Which kinds are wanted.
    pub events: Vec<proxy_core::audit::AuditKind>,
    /// Events held for a slow sink; beyond, they are dropped and counted.
    pub queue: usize,
}

/// An audit sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditSinkConfig {
    /// Appended to this file (resolved against the config file's directory).
    File(std::path::PathBuf),
    /// Written to standard output (logs go to standard error).
    Stdout,
    /// Produced to a topic partition of a cluster of the config, with its TLS and SASL.
    Kafka {
        /// The `[cluster.NAME]`.
        cluster: String,
        /// The topic (it must exist).
        topic: String,
        /// The partition, 0 by default.
        partition: i32,
    },
}

/// The optional `[limits]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Connections all listeners hold together; `None`: derived at start from the descriptor
    /// limit, leaving room for backend connections and the admin endpoint.
    pub max_connections: Option<usize>,
    /// Bytes all listeners' frames being assembled may hold together
    /// ([`proxy_core::forward::FrameBudget`]).
    pub frame_budget: usize,
    /// Worker threads of the runtime (HAProxy's `nbthread`); `None`: one per CPU the process
    /// may run on.
    pub threads: Option<usize>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: None,
            frame_budget: DEFAULT_PROCESS_FRAME_BUDGET,
            threads: None,
        }
    }
}

/// More worker threads than this is a typo, not a machine.
pub const MAX_THREADS: i64 = 1024;

/// What all listeners' frames being assembled may hold together unless `[limits]
/// frame_budget` says otherwise.
pub const DEFAULT_PROCESS_FRAME_BUDGET: usize = 512 * 1024 * 1024;
/// What one Kafka listener's frames being assembled may hold together unless its
/// `frame_budget` says otherwise: two frames of the default `max_frame_size`.
pub const DEFAULT_LISTENER_FRAME_BUDGET: usize = 256 * 1024 * 1024;
/// How long a client may take to finish a frame it has begun unless `frame_timeout` says
/// otherwise.
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(60);

/// A Kafka listener's frame limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Response frames above this many bytes close the session; requests too when set.
    pub max_frame_size: usize,
    /// Request frames above this many bytes close the session.
    pub max_request_size: usize,
    /// Bytes the listener's frames being assembled may hold together.
    pub budget: usize,
    /// How long a client may take to finish a frame it has begun.
    pub timeout: Duration,
}

impl FrameLimits {
    /// The largest frame either way, with its length prefix: what a budget must hold.
    pub fn largest(max_frame_size: usize, max_request_size: usize) -> usize {
        max_frame_size.max(max_request_size) + 4
    }
}

/// The `[admin]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminConfig {
    /// Where the admin endpoints listen.
    pub bind: SocketAddr,
    /// A connection must send a whole request head within this long of being accepted (or of
    /// its first byte after an answer), so clients that open connections and send nothing, or
    /// a few bytes, cannot hold them.
    pub header_read_timeout: Duration,
    /// A kept-alive connection with nothing sent since its last answer is closed after this
    /// long; a scraper's keep-alive reuse fits in it, an abandoned connection does not.
    pub idle_timeout: Duration,
    /// Admin connections open at once; at the cap, the least recently active one is closed to
    /// make room, so a probe is still answered (see `admin::open`).
    pub max_connections: usize,
}

/// How many of a cluster's backends must be reachable for the proxy to report ready.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReadyRequires {
    /// Readiness does not depend on this cluster.
    #[default]
    None,
    /// At least one backend answers a TCP connect.
    Any,
    /// Every backend answers a TCP connect.
    All,
}

/// A child-process backend: one child per session, the session's bytes on its stdin/stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecConfig {
    /// The program and its arguments; never empty, run without a shell.
    pub argv: Vec<String>,
    /// Each of the two waits when stopping a child (after closing stdin, after SIGTERM).
    pub stop_timeout: Duration,
}

/// One `[[listener]]`: a socket we accept on and the cluster its connections go to.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerConfig {
    /// Unique, so logs and metrics can say which listener a connection came through.
    pub name: String,
    /// Unique, because two listeners cannot bind the same address.
    pub bind: SocketAddr,
    /// What is spoken on the client side; decides which stages make sense.
    pub protocol: ListenerProtocol,
    /// The key of the cluster in [`Config::clusters`] that connections are forwarded to.
    pub cluster: String,
    /// A connection with no traffic in either direction for this long is closed, so abandoned
    /// clients do not hold backend connections forever.
    pub idle_timeout: Duration,
    /// Once one side has closed, a session idle this long is closed: a peer that went away
    /// does not hold its half open until the idle timeout.
    pub half_close_timeout: Duration,
    /// Size of each direction's read buffer; bounds memory per connection.
    pub read_buffer: usize,
    /// Bytes queued toward one peer above which reads from the other side pause, so a slow
    /// reader cannot make us buffer without limit.
    pub high_watermark: usize,
    /// Queued bytes below which paused reads resume; below `high_watermark` so reads do not
    /// flap on and off around a single threshold.
    pub low_watermark: usize,
    /// The `[[listener.stage]]` tables, in the order the pipeline runs them.
    pub stages: Vec<StageConfig>,
    /// Whether connections start with a PROXY header, whose to believe, and how long to wait.
    pub proxy_protocol: ProxyProtocolPolicy,
    /// `[[listener.route]]` rules, tried in order before falling back to `cluster`.
    pub routes: Vec<RouteConfig>,
    /// TLS termination or passthrough, when the listener has a `[listener.tls]` table.
    pub tls: Option<ListenerTlsConfig>,
    /// How many connections the listener, and each source address, may hold.
    pub connection_limits: proxy_frontend::ConnectionLimits,
}

/// A listener's TLS, with every path resolved against the config file's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerTlsConfig {
    /// `mode = "terminate"` (the default).
    Terminate {
        /// Certificates, versions, ALPN and client authentication.
        server: TlsServerOptions,
        /// How a client certificate names its principal.
        principal: PrincipalSource,
        /// How long the handshake may take.
        handshake_timeout: Duration,
    },
    /// `mode = "passthrough"`: route by the ClientHello's SNI, forward the bytes untouched.
    Passthrough {
        /// How long the ClientHello may take to arrive.
        handshake_timeout: Duration,
    },
}

/// A cluster's TLS toward its backends, paths resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTlsConfig {
    /// The CA bundle backends' certificates must chain to; the system roots when absent.
    pub ca: Option<PathBuf>,
    /// The name to verify (and send as SNI) instead of the backend's host.
    pub server_name: Option<String>,
    /// A client certificate chain for mTLS to the backends.
    pub cert: Option<PathBuf>,
    /// Its key.
    pub key: Option<PathBuf>,
    /// Accept any backend certificate; only ever when written explicitly.
    pub insecure_skip_verify: bool,
}

/// One `[[listener.route]]`: sessions matching every condition given go to `cluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// A key of [`Config::clusters`].
    pub cluster: String,
    /// The PROXY header's authority (host name), compared ignoring case.
    pub authority: Option<String>,
    /// A network the real client's address must be in.
    pub source: Option<IpNet>,
    /// The TLS ClientHello's server name, compared ignoring case.
    pub sni: Option<String>,
    /// The authenticated principal, compared exactly.
    pub principal: Option<String>,
}

/// The protocol a listener accepts. An enum rather than a string so adding one forces every
/// `match` on it to be revisited.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenerProtocol {
    /// Raw bytes, forwarded as they are.
    Tcp,
    /// Kafka, through a gateway that keeps clients on the proxy (boxed: it is most of a
    /// listener's config, and raw TCP listeners need none of it).
    Kafka(Box<KafkaConfig>),
}

/// A Kafka listener's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// How clients reach each broker.
    pub gateway: KafkaGatewayConfig,
    /// The host clients are told for brokers (port-per-broker).
    pub advertised_host: String,
    /// Frame sizes, the budget of frames being assembled, and how long one may take.
    pub frames: FrameLimits,
    /// Requests a session may have awaiting their answers; at this many, reading from the
    /// client pauses until an answer arrives.
    pub max_in_flight_requests: usize,
    /// `[listener.sasl]`: `None` passes SASL through to the broker.
    pub sasl: Option<KafkaSaslConfig>,
    /// `[listener.authorization]`: `None` lets every request through.
    pub authorization: Option<AuthorizationConfig>,
}

/// `[listener.authorization]`: ACLs decided at the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationConfig {
    /// The rules file, resolved against the config file's directory.
    pub rules: PathBuf,
    /// Audit allowed decisions too (denials always are).
    pub audit_allows: bool,
}

/// `[listener.sasl]` with `mode = "inspect"` or `"terminate"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KafkaSaslConfig {
    /// The broker authenticates; the proxy learns the principal and the outcome.
    Inspect {
        /// Mechanisms let through.
        mechanisms: Vec<Mechanism>,
    },
    /// The proxy authenticates clients, then the cluster's own credentials are used upstream.
    Terminate {
        /// Mechanisms offered.
        mechanisms: Vec<Mechanism>,
        /// The users file (`sluice user add` writes it), resolved.
        users: PathBuf,
        /// From the end of the TLS handshake (or accept) to authenticated.
        timeout: Duration,
        /// Told to clients (KIP-368); `None`: sessions never expire.
        session_lifetime: Option<Duration>,
        /// A client certificate's principal authenticates the session without SASL.
        accept_mtls_principal: bool,
        /// The delay after a first failure of a user from a client; doubles per further failure.
        failure_delay: Duration,
        /// Sessions authenticating at once on the listener.
        max_unauthenticated: usize,
        /// Sessions authenticating at once from one client (IPv6: one /64).
        max_unauthenticated_per_source: usize,
    },
}

/// `gateway = "port-per-broker" | "sni"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KafkaGatewayConfig {
    /// Broker node id N is served on `broker_port_start + N`, for N in `0..max_brokers`.
    PortPerBroker {
        /// The port of node id 0.
        broker_port_start: u16,
        /// How many broker ports at most; with `broker_port_start`, the range of ports
        /// (checked to end at 65535 at most, and to hold no other socket of the config).
        max_brokers: u16,
        /// How long the port of a broker the cluster stopped reporting stays open.
        port_grace: Duration,
    },
    /// One TLS port; the SNI names the broker.
    Sni {
        /// Broker host names, with the node id in place of `{node_id}`.
        broker_host_pattern: HostPattern,
        /// The port clients are told.
        advertised_port: u16,
    },
}

/// One `[[listener.stage]]`. Its options are kept as TOML because each stage kind defines and
/// checks its own; this module only knows that `kind` is required.
#[derive(Debug, Clone, PartialEq)]
pub struct StageConfig {
    /// Which stage to build, e.g. `"throttle"`.
    pub kind: String,
    /// Every other key of the table, for the stage to interpret.
    pub options: toml::Table,
    /// Where the table is, e.g. `listener[0].stage[1]`, so a stage rejecting its options can
    /// point the operator at the right place.
    pub path: String,
}

/// One `[cluster.NAME]`: the backends a listener forwards to.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// Never empty; DNS names are kept unresolved so they are looked up at connect time.
    pub backends: Vec<BackendAddr>,
    /// How long one connect attempt may take, so a dead backend fails fast.
    pub connect_timeout: Duration,
    /// A PROXY header to send to backends before any other byte, naming the real client.
    pub send_proxy_protocol: Option<ProxyProtocolVersion>,
    /// Set instead of `backends` for a child-process cluster (then `backends` is empty).
    pub exec: Option<ExecConfig>,
    /// What readiness requires of this cluster.
    pub ready_requires: ReadyRequires,
    /// How often the backends are probed when readiness depends on them.
    pub probe_interval: Duration,
    /// TLS toward the backends, when the cluster has a `[cluster.NAME.tls]` table.
    pub tls: Option<ClusterTlsConfig>,
    /// How Sluice authenticates to the cluster, when it has a `[cluster.NAME.sasl]` table.
    pub sasl: Option<ClusterSasl>,
    /// The file `sasl`'s password was read from (resolved), so `sluice check` can warn when
    /// others can read it.
    pub sasl_password_file: Option<PathBuf>,
}

/// The optional `[shutdown]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct ShutdownConfig {
    /// After a stop signal, how long listeners keep accepting while load balancers and
    /// Kubernetes remove the endpoint (0 when a preStop sleep already covers that).
    pub accept_grace: Duration,
    /// After the listeners close, how long open sessions may finish before they are cut.
    pub drain_timeout: Duration,
    /// The time the orchestrator allows before SIGKILL; `sluice check` warns when the phases
    /// do not fit in it.
    pub termination_grace_period: Duration,
    /// How long a successor started by an upgrade or reload (SIGUSR2, SIGHUP) has to report
    /// ready before this process kills it and keeps serving.
    pub upgrade_timeout: Duration,
}
