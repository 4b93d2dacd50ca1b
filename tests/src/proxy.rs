//! An in-process Sluice: one raw TCP listener on an ephemeral loopback port, forwarding to one
//! cluster, built from the same library calls the binary makes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proxy_backend::{BackendAddr, ClusterSpec, TcpConnector};
use proxy_core::codec::RawTcp;
use proxy_core::forward::ForwardLimits;
use proxy_core::route::{Prerequisites, RouteId, StaticRouter};
use proxy_core::stage::NewStage;
use proxy_frontend::{BoundListener, Frontend, Lifecycle, ListenerSpec, SessionSummary, Sessions};
use tokio::sync::mpsc;

/// How the test proxy is set up.
#[derive(Clone)]
pub struct ProxyOptions {
    /// The cluster's backends, tried in order.
    pub backends: Vec<SocketAddr>,
    /// Per-session limits.
    pub limits: ForwardLimits,
    /// The connect timeout of each attempt.
    pub connect_timeout: Duration,
    /// Stage factories, in request order.
    pub stages: Vec<Arc<dyn NewStage<RawTcp>>>,
}

impl std::fmt::Debug for ProxyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyOptions")
            .field("backends", &self.backends)
            .finish_non_exhaustive()
    }
}

impl ProxyOptions {
    /// Default limits, a 2 s connect timeout and no stages.
    pub fn to(backends: impl IntoIterator<Item = SocketAddr>) -> Self {
        Self {
            backends: backends.into_iter().collect(),
            limits: ForwardLimits::default(),
            connect_timeout: Duration::from_secs(2),
            stages: Vec::new(),
        }
    }
}

/// A running proxy; stops accepting and force-closes its sessions when dropped.
#[derive(Debug)]
pub struct TestProxy {
    addr: SocketAddr,
    sessions: Sessions,
    lifecycle: Lifecycle,
    closed: mpsc::UnboundedReceiver<SessionSummary>,
}

impl TestProxy {
    /// Starts a proxy with `options`.
    pub async fn start(options: ProxyOptions) -> Self {
        let route = RouteId::new("cluster");
        let cluster = ClusterSpec {
            route: route.clone(),
            backends: options
                .backends
                .iter()
                .map(|a| BackendAddr {
                    host: a.ip().to_string(),
                    port: a.port(),
                })
                .collect(),
            connect_timeout: options.connect_timeout,
        };
        let (tx, closed) = mpsc::unbounded_channel();
        let frontend = Frontend::new(
            StaticRouter::new().with_route("test", route),
            TcpConnector::new([cluster]),
        )
        .with_close_observer(Arc::new(move |summary: &SessionSummary| {
            let _ = tx.send(summary.clone());
        }));
        let frontend = Arc::new(frontend);
        let spec = ListenerSpec {
            name: Arc::from("test"),
            bind: "127.0.0.1:0".parse().expect("loopback address"),
            requires: Prerequisites::TCP,
            limits: options.limits,
            stages: options.stages,
        };
        let listener = BoundListener::bind(spec)
            .await
            .expect("bind the test proxy");
        let addr = listener.local_addr();
        let lifecycle = Lifecycle::default();
        tokio::spawn(listener.serve(frontend.clone(), lifecycle.clone()));
        Self {
            addr,
            sessions: frontend.sessions().clone(),
            lifecycle,
            closed,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The sessions open right now.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// The next session to close, within `timeout`.
    pub async fn next_closed(&mut self, timeout: Duration) -> Option<SessionSummary> {
        tokio::time::timeout(timeout, self.closed.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.lifecycle.stop_accepting.cancel();
        self.lifecycle.force_close.cancel();
    }
}
