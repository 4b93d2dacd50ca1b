//! `proxy-backend`: the upstream side of a session.
//!
//! A [`Connector`] knows each cluster and implements
//! [`Connect`](proxy_core::upstream::Connect): it walks the session's backend state machine from
//! `Idle` through `Connecting` (one attempt per address, in configured order, each bounded by the
//! cluster's connect timeout) to `Ready`, or to `Failed` with the reason the client's close line
//! will show. An `exec` cluster spawns a child per session instead ([`ChildReaper`] stops and
//! reaps them). A cluster with [`BackendTls`] gets a TLS handshake after the connect
//! (`Connecting → TlsHandshaking → Ready`); one with
//! [`ClusterSasl`](proxy_kafka::client::ClusterSasl) then authenticates with the cluster's own
//! credentials (`→ Authenticating → Ready`) through the proxy's own Kafka client
//! ([`authenticate`](proxy_kafka::client::authenticate())). The connector
//! counts the connections it opens per cluster ([`BackendConnections`]). [`health`] probes
//! clusters for readiness.

mod child;
mod cluster;
mod connections;
mod connector;
#[cfg(test)]
mod connector_sasl_tests;
#[cfg(test)]
mod connector_tests;
pub mod health;
mod io;
mod tls;

pub use self::child::{ChildIo, ChildReaper, ChildSpec};
pub use self::cluster::{BackendAddr, ClusterSpec};
pub use self::connections::BackendConnections;
pub use self::connector::Connector;
pub use self::io::BackendIo;
pub use self::tls::{BackendTls, BackendTlsError, BackendTlsOptions};
