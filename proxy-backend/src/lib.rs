//! `proxy-backend`: the upstream side of a session.
//!
//! A [`TcpConnector`] knows each cluster's backend addresses and implements
//! [`Connect`](proxy_core::upstream::Connect): it walks the session's backend state machine from
//! `Idle` through `Connecting` (one attempt per address, in configured order, each bounded by the
//! cluster's connect timeout) to `Ready`, or to `Failed` with the reason the client's close line
//! will show. TLS origination and SASL toward backends will join it here.

mod cluster;
mod connector;

pub use self::cluster::{BackendAddr, ClusterSpec};
pub use self::connector::TcpConnector;
