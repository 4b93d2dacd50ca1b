//! `proxy-backend`: the upstream side of a session.
//!
//! A [`Connector`] knows each cluster and implements
//! [`Connect`](proxy_core::upstream::Connect): it walks the session's backend state machine from
//! `Idle` through `Connecting` (one attempt per address, in configured order, each bounded by the
//! cluster's connect timeout) to `Ready`, or to `Failed` with the reason the client's close line
//! will show. An `exec` cluster spawns a child per session instead ([`ChildReaper`] stops and
//! reaps them). A cluster with [`BackendTls`] gets a TLS handshake after the connect
//! (`Connecting → TlsHandshaking → Ready`). [`health`] probes clusters for readiness. SASL
//! toward backends will join it here.

mod child;
mod cluster;
mod connector;
pub mod health;
mod io;
mod tls;

pub use self::child::{ChildIo, ChildReaper, ChildSpec};
pub use self::cluster::{BackendAddr, ClusterSpec};
pub use self::connector::Connector;
pub use self::io::BackendIo;
pub use self::tls::{BackendTls, BackendTlsError, BackendTlsOptions};
