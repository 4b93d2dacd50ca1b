//! A listening socket: bound (or adopted from a predecessor or systemd), then served.
//!
//! Serving a Kafka listener also starts what its gateway needs before any client asks: broker
//! discovery in the background and, for a port-per-broker gateway, the broker ports (those a
//! predecessor handed over first).

use std::fmt;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use proxy_core::route::Router;
use proxy_core::upstream::Connect;
use proxy_kafka::broker_map::BrokerListeners;
use proxy_kafka::sasl::ListenerSasl;
use tokio::net::TcpListener;

use crate::accept::accept_loop;
use crate::broker_ports::{BrokerPortObserver, BrokerPorts, listen_now};
use crate::discovery::discover_in_background;
use crate::error::FrontendError;
use crate::frontend::{Frontend, Lifecycle};
use crate::session::{Served, Stop};
use crate::spec::ListenerSpec;

/// A bound listening socket, not yet accepting.
pub struct BoundListener {
    spec: Arc<ListenerSpec>,
    listener: TcpListener,
    /// Broker ports a predecessor handed over (port-per-broker Kafka listeners).
    adopted_brokers: Vec<(i32, StdTcpListener)>,
    /// Hears of every broker port this listener opens and closes.
    observe_brokers: Option<Arc<dyn BrokerPortObserver>>,
}

impl fmt::Debug for BoundListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundListener")
            .field("spec", &self.spec)
            .field("listener", &self.listener)
            .field("adopted_brokers", &self.adopted_brokers.len())
            .finish_non_exhaustive()
    }
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
        Ok(Self::new(spec, listener))
    }

    /// Binds the listener's address at once, without waiting on the runtime. Must be called
    /// within a tokio runtime.
    pub fn bind_now(spec: ListenerSpec) -> Result<Self, FrontendError> {
        let listener = listen_now(spec.bind).map_err(|source| FrontendError::Bind {
            listener: spec.name.to_string(),
            addr: spec.bind,
            source,
        })?;
        Ok(Self::new(spec, listener))
    }

    /// Serves `spec` on a socket that is already bound and listening: one handed over by the
    /// process this one replaces, or passed by systemd socket activation. Nothing is accepted
    /// until [`serve`](Self::serve); connections meanwhile wait in the socket's backlog.
    ///
    /// Must be called within a tokio runtime.
    pub fn from_std(spec: ListenerSpec, listener: StdTcpListener) -> Result<Self, FrontendError> {
        let adopt = |source| FrontendError::Adopt {
            listener: spec.name.to_string(),
            source,
        };
        listener.set_nonblocking(true).map_err(adopt)?;
        let listener = TcpListener::from_std(listener).map_err(adopt)?;
        Ok(Self::new(spec, listener))
    }

    fn new(spec: ListenerSpec, listener: TcpListener) -> Self {
        Self {
            spec: Arc::new(spec),
            listener,
            adopted_brokers: Vec::new(),
            observe_brokers: None,
        }
    }

    /// Serves broker `node_id`'s port on `socket`, handed over by a predecessor, once this
    /// listener serves (port-per-broker Kafka listeners; ignored by others): clients that know
    /// the broker keep reaching it across an upgrade.
    pub fn adopt_broker_socket(&mut self, node_id: i32, socket: StdTcpListener) {
        self.adopted_brokers.push((node_id, socket));
    }

    /// Tells `observe` of every broker port this listener opens (to offer it to a successor)
    /// and closes (to stop offering it).
    pub fn observe_broker_ports(&mut self, observe: Arc<dyn BrokerPortObserver>) {
        self.observe_brokers = Some(observe);
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
    /// on `lifecycle.tracker`. Returns when the listening socket has been closed. A Kafka
    /// listener first starts its broker ports (port-per-broker) and broker discovery.
    pub async fn serve<R: Router, C: Connect>(
        self,
        frontend: Arc<Frontend<R, C>>,
        lifecycle: Lifecycle,
    ) {
        let local = self.local_addr();
        let Self {
            spec,
            listener,
            adopted_brokers,
            observe_brokers,
        } = self;
        let mut broker_listeners: Option<Arc<dyn BrokerListeners>> = None;
        if let Some(kafka) = spec.kafka() {
            if spec.serves_broker_ports() {
                let ports = BrokerPorts::start(
                    spec.clone(),
                    kafka.brokers.clone(),
                    frontend.clone(),
                    lifecycle.clone(),
                    observe_brokers,
                    adopted_brokers,
                );
                broker_listeners = Some(ports);
            }
            // Port-per-broker gateways open their brokers' ports before any client asks; a
            // SASL-terminating listener wants its clusters' API versions before its first
            // client's ApiVersions.
            let terminates_sasl = matches!(kafka.sasl, Some(ListenerSasl::Terminate(_)));
            if broker_listeners.is_some() || terminates_sasl {
                discover_in_background(
                    &spec.name,
                    kafka,
                    broker_listeners.as_ref(),
                    &frontend,
                    &lifecycle,
                );
            }
        }
        let served = Arc::new(Served {
            phases: spec.phases(),
            drain_timeout: lifecycle.drain_timeout,
            spec,
            broker: None,
            broker_listeners,
            stop: Stop::of(&lifecycle),
        });
        let accepting = lifecycle.stop_accepting.clone();
        accept_loop(listener, local, served, frontend, lifecycle, accepting).await;
    }
}

/// The listening socket, so the binary can hand a duplicate of it to its successor. Closing
/// the duplicate (never `shutdown`) leaves this listener untouched.
impl AsFd for BoundListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }
}
