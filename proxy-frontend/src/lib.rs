//! `proxy-frontend`: the client side of Sluice.
//!
//! A [`BoundListener`] accepts connections and spawns one task per session on the caller's
//! [`TaskTracker`](tokio_util::task::TaskTracker). Each session builds its
//! [`SessionContext`](proxy_core::SessionContext) and walks the frontend state machine the
//! listener's phases make: PROXY header, TLS, the Kafka SASL negotiation, routing with the
//! [`Router`](proxy_core::route::Router), a backend from any
//! [`Connect`](proxy_core::upstream::Connect) implementation, the forwarding gate, forwarding
//! through its stage chain, draining; then it writes one close line. A port-per-broker Kafka
//! listener also serves a port per broker its broker map learns.
//!
//! This crate installs no signal handlers: shutdown arrives as [`Lifecycle`] tokens.

mod accept;
mod admission;
#[cfg(test)]
mod admission_tests;
mod broker_ports;
mod closes;
mod discovery;
mod error;
mod frontend;
mod listener;
mod session;
mod sessions;
mod spec;
mod summary;
mod tls;

pub use self::admission::{
    Admission, AdmissionCounts, ConnectionBudget, ConnectionLimits, SourceRate,
};
pub use self::broker_ports::{BrokerPortObserver, broker_socket_name, parse_broker_socket_name};
pub use self::closes::CloseCounts;
pub use self::error::FrontendError;
pub use self::frontend::{CloseObserver, DEFAULT_DRAIN_TIMEOUT, Frontend, Lifecycle};
pub use self::listener::BoundListener;
pub use self::sessions::{ListenerTotals, SessionEntry, Sessions};
pub use self::spec::{KafkaListener, ListenerProtocol, ListenerSpec};
pub use self::summary::SessionSummary;
pub use self::tls::{
    CertFiles, CertificateExpiry, ClientAuth, ListenerTls, MinTlsVersion, PrincipalSource,
    ReloadableServerConfig, TlsConfigError, TlsServerOptions, TlsTermination,
};
