//! `proxy-frontend`: the client side of Sluice.
//!
//! A [`BoundListener`] accepts connections and spawns one task per session on the caller's
//! [`TaskTracker`](tokio_util::task::TaskTracker). Each session builds its
//! [`SessionContext`](proxy_core::SessionContext), walks the frontend state machine, asks the
//! [`Router`](proxy_core::route::Router) for a route, obtains a backend through any
//! [`Connect`](proxy_core::upstream::Connect) implementation, passes the forwarding gate, and
//! forwards through its stage chain until it closes; then it writes one close line.
//!
//! This crate installs no signal handlers: shutdown arrives as [`Lifecycle`] tokens.

mod closes;
mod error;
mod frontend;
mod kafka;
mod listener;
mod proxy_header;
mod session;
mod sessions;
mod tls;

pub use self::closes::CloseCounts;
pub use self::error::FrontendError;
pub use self::frontend::{CloseObserver, Frontend, Lifecycle};
pub use self::kafka::{
    BrokerListenerStarter, BrokerVersions, GatewayMode, HostPattern, KafkaGateway, KafkaListener,
    ListenerSasl, NODE_ID_PLACEHOLDER, RouteBrokers, SaslTerminate, broker_socket_name,
    offered_versions, parse_broker_socket_name,
};
pub use self::listener::{BoundListener, BrokerPortObserver, ListenerSpec, serve_broker_ports};
pub use self::session::SessionSummary;
pub use self::sessions::{SessionEntry, Sessions};
pub use self::tls::{
    CertFiles, ClientAuth, ListenerTls, MinTlsVersion, PrincipalSource, ReloadableServerConfig,
    TlsConfigError, TlsServerOptions, TlsTermination,
};
