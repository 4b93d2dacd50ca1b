//! A listening socket and its accept loop.
//!
//! One connection's failure never ends the loop: accept errors (a full file-descriptor table,
//! a connection reset before it was accepted) are logged and, where retrying at once would spin,
//! followed by a short pause.

use std::fmt;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::Duration;

use proxy_core::codec::RawTcp;
use proxy_core::forward::ForwardLimits;
use proxy_core::proxy_protocol::ProxyProtocolPolicy;
use proxy_core::route::{Prerequisites, Router};
use proxy_core::stage::NewStage;
use proxy_core::upstream::Connect;
use tokio::net::{TcpListener, TcpSocket};
use tracing::{debug, info, warn};

use crate::error::FrontendError;
use crate::frontend::{Frontend, Lifecycle};
use crate::kafka::{GatewayMode, KafkaListener};
use crate::session;
use crate::tls::ListenerTls;

/// The accept queue of listeners bound with [`BoundListener::bind_now`] (Linux caps it at
/// `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 1024;

/// How long to pause after an accept error that would repeat at once (EMFILE, ENFILE, ENOBUFS).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Everything a listener needs to know, from configuration.
#[derive(Clone)]
pub struct ListenerSpec {
    /// The listener's name, in logs, metrics and routing.
    pub name: Arc<str>,
    /// Where to listen.
    pub bind: SocketAddr,
    /// What a session must establish before it may forward.
    pub requires: Prerequisites,
    /// Whether connections start with a PROXY header, and whose to believe.
    pub proxy_protocol: ProxyProtocolPolicy,
    /// TLS termination or passthrough, after any PROXY header.
    pub tls: Option<ListenerTls>,
    /// Buffer bounds and timeouts of each session.
    pub limits: ForwardLimits,
    /// Factories of the stages each session runs, in request order (raw TCP listeners).
    pub stages: Vec<Arc<dyn NewStage<RawTcp>>>,
    /// Set for Kafka listeners: the session speaks Kafka through this gateway and these stages.
    pub kafka: Option<KafkaListener>,
}

impl fmt::Debug for ListenerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenerSpec")
            .field("name", &self.name)
            .field("bind", &self.bind)
            .field("requires", &self.requires)
            .field("proxy_protocol", &self.proxy_protocol)
            .field("tls", &self.tls)
            .field("limits", &self.limits)
            .field("stages", &self.stages.len())
            .field("kafka", &self.kafka)
            .finish()
    }
}

/// A bound listening socket, not yet accepting.
#[derive(Debug)]
pub struct BoundListener {
    spec: Arc<ListenerSpec>,
    listener: TcpListener,
}

// === impl BoundListener ===

impl BoundListener {
    /// Binds the listener's address.
    pub async fn bind(spec: ListenerSpec) -> Result<Self, FrontendError> {
        let listener =
            TcpListener::bind(spec.bind)
                .await
                .map_err(|source| FrontendError::Bind {
                    listener: spec.name.to_string(),
                    addr: spec.bind,
                    source,
                })?;
        Ok(Self {
            spec: Arc::new(spec),
            listener,
        })
    }

    /// Binds the listener's address at once, without waiting on the runtime (a Kafka gateway
    /// opens a broker's port this way before the response naming it reaches the client).
    /// Must be called within a tokio runtime.
    pub fn bind_now(spec: ListenerSpec) -> Result<Self, FrontendError> {
        let bind_error = |source| FrontendError::Bind {
            listener: spec.name.to_string(),
            addr: spec.bind,
            source,
        };
        let socket = match spec.bind {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .map_err(bind_error)?;
        // As `TcpListener::bind` does: a restarted proxy rebinds despite TIME_WAIT sockets.
        socket.set_reuseaddr(true).map_err(bind_error)?;
        socket.bind(spec.bind).map_err(bind_error)?;
        let listener = socket.listen(LISTEN_BACKLOG).map_err(bind_error)?;
        Ok(Self {
            spec: Arc::new(spec),
            listener,
        })
    }

    /// Serves `spec` on a socket that is already bound and listening: one handed over by the
    /// process this one replaces, or passed by systemd socket activation. Nothing is accepted
    /// until [`serve`](Self::serve); connections meanwhile wait in the socket's backlog.
    ///
    /// Must be called within a tokio runtime.
    pub fn from_std(
        spec: ListenerSpec,
        listener: std::net::TcpListener,
    ) -> Result<Self, FrontendError> {
        let adopt = |source| FrontendError::Adopt {
            listener: spec.name.to_string(),
            source,
        };
        listener.set_nonblocking(true).map_err(adopt)?;
        let listener = TcpListener::from_std(listener).map_err(adopt)?;
        Ok(Self {
            spec: Arc::new(spec),
            listener,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.spec.bind)
    }

    /// What the listener serves.
    pub fn spec(&self) -> &ListenerSpec {
        &self.spec
    }

    /// The listener's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Accepts connections until `lifecycle.stop_accepting` is cancelled, running each session
    /// on `lifecycle.tracker`. Returns when the listening socket has been closed.
    pub async fn serve<R: Router, C: Connect>(
        self,
        frontend: Arc<Frontend<R, C>>,
        lifecycle: Lifecycle,
    ) {
        let local = self.local_addr();
        let Self { spec, listener } = self;
        info!(listener = %spec.name, addr = %local, "listening");
        loop {
            // `accept` is cancel safe: a connection not yet returned stays in the backlog.
            let accepted = tokio::select! {
                biased;
                () = lifecycle.stop_accepting.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let frontend = frontend.clone();
                    let spec = spec.clone();
                    let stop = session::Stop {
                        drain: lifecycle.stop_accepting.clone(),
                        force_close: lifecycle.force_close.clone(),
                    };
                    lifecycle.tracker.spawn(async move {
                        session::run(stream, peer, spec, frontend, stop).await;
                    });
                }
                Err(err) if is_transient(&err) => {
                    debug!(listener = %spec.name, error = %err, "connection lost before accept");
                }
                Err(err) => {
                    warn!(listener = %spec.name, error = %err, "accept failed; pausing");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            }
        }
        // Close the socket before saying so: new connections are refused from here on.
        drop(listener);
        info!(listener = %spec.name, addr = %local, "stopped accepting");
    }
}

/// The listening socket, so the binary can hand a duplicate of it to its successor. Closing
/// the duplicate (never `shutdown`) leaves this listener untouched.
impl AsFd for BoundListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }
}

/// Errors about one connection that leave the listener healthy.
fn is_transient(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        err.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    )
}

/// Called with each broker listener a Kafka gateway starts (to offer it to a successor).
pub type BrokerPortObserver = Arc<dyn Fn(i32, &BoundListener) + Send + Sync>;

/// Lets a port-per-broker Kafka listener open its brokers' ports as they are revealed (or serve
/// the ones a predecessor handed over): each is served like `bootstrap` (same name, TLS, limits
/// and stages) for one node id, on the same frontend and lifecycle; `observe` hears of each.
/// Does nothing for other listeners.
pub fn serve_broker_ports<R: Router, C: Connect>(
    bootstrap: &ListenerSpec,
    frontend: Arc<Frontend<R, C>>,
    lifecycle: Lifecycle,
    observe: Option<BrokerPortObserver>,
) {
    let Some(kafka) = &bootstrap.kafka else {
        return;
    };
    if !matches!(kafka.gateway.mode(), GatewayMode::PortPerBroker { .. }) {
        // An SNI gateway opens no ports per broker; a SASL-terminating one still wants the
        // cluster's API versions before its first client asks.
        if matches!(kafka.sasl, Some(crate::kafka::ListenerSasl::Terminate(_))) {
            crate::kafka::discover_in_background(bootstrap, frontend, lifecycle);
        }
        return;
    }
    crate::kafka::discover_in_background(bootstrap, frontend.clone(), lifecycle.clone());
    let template = bootstrap.clone();
    kafka
        .gateway
        .set_broker_listener_starter(Box::new(move |node_id, addr, socket| {
            let mut spec = template.clone();
            spec.bind = addr;
            if let Some(kafka) = &mut spec.kafka {
                kafka.node_id = Some(node_id);
            }
            let listener = match socket {
                Some(socket) => BoundListener::from_std(spec, socket),
                None => BoundListener::bind_now(spec),
            }
            .map_err(|err| match err {
                FrontendError::Bind { source, .. } | FrontendError::Adopt { source, .. } => source,
            })?;
            if let Some(observe) = &observe {
                observe(node_id, &listener);
            }
            let frontend = frontend.clone();
            let serving = lifecycle.clone();
            lifecycle
                .tracker
                .spawn(async move { listener.serve(frontend, serving).await });
            Ok(())
        }));
}
