//! Health probing: is a cluster's readiness requirement met?
//!
//! A probe is a TCP connect to each backend address, bounded by the cluster's connect timeout
//! (and, when the cluster sends PROXY headers, a `LOCAL` header so the backend sees a
//! well-formed connection), run once at start-up and then every probe interval. The result is
//! published in a [`ClusterHealth`] that readiness reads without waiting.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use proxy_core::proxy_protocol;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::cluster::ClusterSpec;

/// How many of a cluster's backends readiness needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// At least one.
    Any,
    /// Every one.
    All,
}

/// The latest probe result of one cluster.
#[derive(Debug)]
pub struct ClusterHealth {
    cluster: String,
    requirement: Requirement,
    total: usize,
    reachable: AtomicUsize,
    /// Each backend (`host:port` as configured) and whether it answered the last probe.
    backends: Vec<(String, AtomicBool)>,
    /// False until the first probe finished: a cluster never probed is not ready.
    probed: AtomicBool,
}

impl ClusterHealth {
    /// A cluster whose `backends` (named as configured) have not been probed yet.
    pub fn new(
        cluster: impl Into<String>,
        requirement: Requirement,
        backends: impl IntoIterator<Item = String>,
    ) -> Self {
        let backends: Vec<_> = backends
            .into_iter()
            .map(|name| (name, AtomicBool::new(false)))
            .collect();
        Self {
            cluster: cluster.into(),
            requirement,
            total: backends.len(),
            reachable: AtomicUsize::new(0),
            backends,
            probed: AtomicBool::new(false),
        }
    }

    /// The cluster's name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// How many backends answered the last probe.
    pub fn reachable(&self) -> usize {
        self.reachable.load(Ordering::Relaxed)
    }

    /// Each backend, as configured, and whether it answered the last probe (false before the
    /// first).
    pub fn backends(&self) -> impl Iterator<Item = (&str, bool)> {
        self.backends
            .iter()
            .map(|(name, up)| (name.as_str(), up.load(Ordering::Relaxed)))
    }

    /// `Ok` when the requirement holds; otherwise a one-line reason.
    pub fn check(&self) -> Result<(), String> {
        if !self.probed.load(Ordering::Relaxed) {
            return Err(format!("cluster {}: backends not probed yet", self.cluster));
        }
        let reachable = self.reachable();
        match self.requirement {
            Requirement::Any if reachable == 0 => {
                Err(format!("cluster {}: no backend reachable", self.cluster))
            }
            Requirement::All if reachable < self.total => Err(format!(
                "cluster {}: {reachable} of {} backends reachable, all required",
                self.cluster, self.total
            )),
            _ => Ok(()),
        }
    }

    /// Records a probe: whether each backend, in order, answered.
    fn record(&self, up: &[bool]) {
        for ((_, slot), up) in self.backends.iter().zip(up) {
            slot.store(*up, Ordering::Relaxed);
        }
        let reachable = up.iter().filter(|up| **up).count();
        let before = self.reachable.swap(reachable, Ordering::Relaxed);
        let first = !self.probed.swap(true, Ordering::Relaxed);
        if first || before != reachable {
            info!(cluster = %self.cluster, reachable, total = self.total, "backend reachability");
        }
    }
}

/// Probes `cluster`'s backends now and then every `interval` until `stop` is cancelled,
/// publishing into `health`.
pub async fn probe_until(
    cluster: ClusterSpec,
    health: Arc<ClusterHealth>,
    interval: Duration,
    stop: CancellationToken,
) {
    loop {
        let up = probe_each(&cluster).await;
        health.record(&up);
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// How many of `cluster`'s backend addresses accept a TCP connection right now.
pub async fn probe_once(cluster: &ClusterSpec) -> usize {
    probe_each(cluster)
        .await
        .into_iter()
        .filter(|up| *up)
        .count()
}

/// Whether each of `cluster`'s backends, in order, accepts a TCP connection right now (on one
/// of the addresses its name resolves to).
async fn probe_each(cluster: &ClusterSpec) -> Vec<bool> {
    let mut up = Vec::with_capacity(cluster.backends.len());
    for backend in &cluster.backends {
        let deadline = Instant::now() + cluster.connect_timeout;
        let Ok(addrs) = crate::connector::resolve(backend, deadline).await else {
            debug!(backend.addr = %backend, "probe: backend did not resolve");
            up.push(false);
            continue;
        };
        let mut answered = false;
        for addr in addrs {
            if probe_addr(cluster, addr, deadline).await {
                answered = true;
                break;
            }
        }
        up.push(answered);
    }
    up
}

async fn probe_addr(cluster: &ClusterSpec, addr: SocketAddr, deadline: Instant) -> bool {
    match timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(mut stream)) => {
            if let Some(version) = cluster.send_proxy_protocol {
                let header = proxy_protocol::encode_local(version);
                if let Ok(Err(err)) = timeout_at(deadline, stream.write_all(&header)).await {
                    warn!(backend.addr = %addr, error = %err, "probe: could not send PROXY header");
                }
            }
            let _ = stream.shutdown().await;
            true
        }
        Ok(Err(err)) => {
            debug!(backend.addr = %addr, error = %err, "probe: connect failed");
            false
        }
        Err(_) => {
            debug!(backend.addr = %addr, "probe: connect timed out");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;
    use crate::cluster::test_cluster as cluster;

    #[tokio::test]
    async fn requirements_follow_the_probe() {
        let up = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let down = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let up_port = up.local_addr().unwrap().port();
        let spec = cluster(&[up_port, down]);
        let names = || spec.backends.iter().map(ToString::to_string);
        let any = ClusterHealth::new("c", Requirement::Any, names());
        let all = ClusterHealth::new("c", Requirement::All, names());
        assert!(any.check().unwrap_err().contains("not probed yet"));
        assert_eq!(probe_once(&spec).await, 1);
        let answered = probe_each(&spec).await;
        assert_eq!(answered, [true, false]);
        any.record(&answered);
        all.record(&answered);
        assert_eq!(any.check(), Ok(()));
        let backends: Vec<_> = any
            .backends()
            .map(|(name, up)| (name.to_owned(), up))
            .collect();
        assert_eq!(
            backends,
            [
                (format!("127.0.0.1:{up_port}"), true),
                (format!("127.0.0.1:{down}"), false)
            ]
        );
        assert_eq!(
            all.check().unwrap_err(),
            "cluster c: 1 of 2 backends reachable, all required"
        );
        drop(up);
        any.record(&probe_each(&spec).await);
        assert_eq!(any.check().unwrap_err(), "cluster c: no backend reachable");
        assert!(any.backends().all(|(_, up)| !up));
    }
}
