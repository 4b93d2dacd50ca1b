//! An in-process Sluice: one raw TCP listener on an ephemeral loopback port, forwarding to one
//! cluster, built from the same library calls the binary makes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proxy_backend::{BackendAddr, BackendTls, ChildReaper, ClusterSpec, Connector};
use proxy_core::codec::RawTcp;
use proxy_core::context::LiveResources;
use proxy_core::forward::ForwardLimits;
use proxy_core::proxy_protocol::{ProxyProtocolPolicy, ProxyProtocolVersion};
use proxy_core::route::{Prerequisites, RouteId, RouteRule, StaticRouter};
use proxy_core::stage::NewStage;
use proxy_frontend::{
    Admission, BoundListener, CloseCounts, ConnectionBudget, ConnectionLimits, Frontend, Lifecycle,
    ListenerProtocol, ListenerSpec, ListenerTls, SessionSummary, Sessions,
};
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
    /// The listener's PROXY-protocol policy.
    pub proxy_protocol: ProxyProtocolPolicy,
    /// The PROXY header sent to the backends, if any.
    pub send_proxy_protocol: Option<ProxyProtocolVersion>,
    /// Extra clusters (name, backends) that `rules` may route to.
    pub other_clusters: Vec<(&'static str, Vec<SocketAddr>)>,
    /// Routing rules tried before the default cluster.
    pub rules: Vec<RouteRule>,
    /// TLS termination or passthrough on the listener.
    pub tls: Option<ListenerTls>,
    /// TLS toward the backends of every cluster.
    pub backend_tls: Option<BackendTls>,
    /// How long a draining session may finish its work before it closes itself.
    pub drain_timeout: Duration,
    /// The listener's connection limits.
    pub connection_limits: ConnectionLimits,
    /// The process-wide connection limit, if any.
    pub max_connections: Option<usize>,
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
            proxy_protocol: ProxyProtocolPolicy::default(),
            send_proxy_protocol: None,
            other_clusters: Vec::new(),
            rules: Vec::new(),
            tls: None,
            backend_tls: None,
            drain_timeout: proxy_frontend::DEFAULT_DRAIN_TIMEOUT,
            connection_limits: ConnectionLimits::default(),
            max_connections: None,
        }
    }
}

/// A running proxy; stops accepting and force-closes its sessions when dropped.
#[derive(Debug)]
pub struct TestProxy {
    addr: SocketAddr,
    sessions: Sessions,
    closes: CloseCounts,
    live: Arc<LiveResources>,
    lifecycle: Lifecycle,
    closed: mpsc::UnboundedReceiver<SessionSummary>,
    admission: Arc<Admission>,
}

impl TestProxy {
    /// Starts a proxy with `options`.
    pub async fn start(options: ProxyOptions) -> Self {
        let route = RouteId::new("cluster");
        let cluster = |name: &str, backends: &[SocketAddr]| ClusterSpec {
            route: RouteId::new(name),
            backends: backends
                .iter()
                .map(|a| BackendAddr {
                    host: a.ip().to_string(),
                    port: a.port(),
                })
                .collect(),
            connect_timeout: options.connect_timeout,
            send_proxy_protocol: options.send_proxy_protocol,
            exec: None,
            tls: options.backend_tls.clone(),
            sasl: None,
        };
        let mut clusters = vec![cluster("cluster", &options.backends)];
        clusters.extend(
            options
                .other_clusters
                .iter()
                .map(|(name, backends)| cluster(name, backends)),
        );
        let (tx, closed) = mpsc::unbounded_channel();
        let frontend = Frontend::new(
            StaticRouter::new().with_rules("test", options.rules, route),
            Connector::new(clusters, ChildReaper::new()),
        )
        .with_close_observer(Arc::new(move |summary: &SessionSummary| {
            let _ = tx.send(summary.clone());
        }))
        .with_connection_budget(match options.max_connections {
            Some(max) => ConnectionBudget::new(max),
            None => ConnectionBudget::unlimited(),
        });
        let frontend = Arc::new(frontend);
        let spec = ListenerSpec {
            name: Arc::from("test"),
            bind: "127.0.0.1:0".parse().expect("loopback address"),
            requires: match options.tls {
                Some(ListenerTls::Terminate(_)) => Prerequisites::TLS,
                _ => Prerequisites::TCP,
            },
            proxy_protocol: options.proxy_protocol,
            tls: options.tls,
            limits: Arc::new(options.limits),
            frame_budget: None,
            admission: Arc::new(Admission::new(options.connection_limits)),
            protocol: ListenerProtocol::Tcp {
                stages: options.stages,
            },
        };
        let admission = spec.admission.clone();
        let listener = BoundListener::bind(spec)
            .await
            .expect("bind the test proxy");
        let addr = listener.local_addr();
        let lifecycle = Lifecycle {
            drain_timeout: options.drain_timeout,
            ..Lifecycle::default()
        };
        tokio::spawn(listener.serve(frontend.clone(), lifecycle.clone()));
        Self {
            addr,
            sessions: frontend.sessions().clone(),
            closes: frontend.closes().clone(),
            live: frontend.live_resources().clone(),
            lifecycle,
            closed,
            admission,
        }
    }

    /// The listener's admission state (connection limits and what they refused).
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The sessions open right now.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Closed sessions by reason label.
    pub fn closes(&self) -> &CloseCounts {
        &self.closes
    }

    /// The gauges of what live sessions hold.
    pub fn live_resources(&self) -> &LiveResources {
        &self.live
    }

    /// Starts draining, as a shutdown does: the listener stops accepting and every session
    /// enters `Draining`.
    pub fn drain(&self) {
        self.lifecycle.stop_accepting.cancel();
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
