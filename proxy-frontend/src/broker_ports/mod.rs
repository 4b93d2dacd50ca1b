//! The listening ports of a port-per-broker Kafka gateway: one per broker its broker map knows,
//! opened as brokers are learnt (before the response naming one reaches the client), or taken
//! over from the process this one replaced. Each is served like the bootstrap listener (same
//! name, TLS, limits and stages), its sessions pinned to that broker.
//!
//! What a cluster says cannot make the listener open an unbounded number of ports, nor ports
//! outside its range: the broker map only hands over node ids in `0..max_brokers`, and
//! `BrokerPorts::open` checks again (a socket a predecessor handed over). A broker the clusters
//! stop reporting has its port closed after the gateway's grace period (`retire.rs`); sessions
//! already on that port go on until they end.

mod retire;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use proxy_core::route::Router;
use proxy_core::upstream::Connect;
use proxy_kafka::broker_map::{BrokerListeners, BrokerMap, GatewayMode};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::accept::accept_loop;
use crate::frontend::{Frontend, Lifecycle};
use crate::session::{Served, Stop};
use crate::spec::ListenerSpec;

/// The accept queue of ports bound here (Linux caps it at `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 1024;

/// Hears of every broker port a gateway starts and stops serving: the binary offers each to a
/// successor, and must stop offering one that closed (a copy of its socket would keep it
/// listening, with nobody accepting).
pub trait BrokerPortObserver: Send + Sync + 'static {
    /// Broker `node_id`'s port of `listener` serves on `socket`.
    fn opened(&self, listener: &str, node_id: i32, socket: &TcpListener);

    /// Broker `node_id`'s port of `listener` no longer serves: its socket is being closed.
    fn closed(&self, listener: &str, node_id: i32);
}

/// The name a broker's listening socket goes by in an upgrade hand-off.
pub fn broker_socket_name(listener: &str, node_id: i32) -> String {
    format!("{listener}{BROKER_SOCKET_INFIX}{node_id}")
}

/// The listener and node id a hand-off socket name stands for, if it names a broker's port.
pub fn parse_broker_socket_name(name: &str) -> Option<(&str, i32)> {
    let (listener, node_id) = name.rsplit_once(BROKER_SOCKET_INFIX)?;
    Some((listener, node_id.parse().ok()?))
}

const BROKER_SOCKET_INFIX: &str = "/broker/";

/// A listening socket bound at once, without waiting on the runtime: a broker's port must
/// accept before the response naming it is written. Must be called within a tokio runtime.
pub(crate) fn listen_now(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }?;
    // As `TcpListener::bind` does: a restarted proxy rebinds despite TIME_WAIT sockets.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The broker ports of one port-per-broker listener.
pub(crate) struct BrokerPorts<R, C> {
    /// The bootstrap listener's spec: every broker port is served like it.
    template: Arc<ListenerSpec>,
    brokers: Arc<BrokerMap>,
    frontend: Arc<Frontend<R, C>>,
    lifecycle: Lifecycle,
    observe: Option<Arc<dyn BrokerPortObserver>>,
    /// Each broker port by node id. Never more than `max_brokers`: the keys are node ids the
    /// map gives a port, `0..max_brokers`.
    serving: Mutex<BTreeMap<i32, Port>>,
    /// This value, for the sessions of the ports it opens (they open ports too).
    me: Weak<Self>,
}

/// One broker's port.
enum Port {
    /// Claimed by `BrokerPorts::open`, being bound.
    Opening,
    /// Accepting.
    Open(OpenPort),
    /// Being closed: not opened again until its socket is gone (a bind would fail meanwhile).
    Closing,
}

/// A broker port that accepts.
struct OpenPort {
    addr: SocketAddr,
    /// When it started serving: an adopted port whose broker no cluster names has been
    /// unreported since then.
    opened: Instant,
    /// Stops its accept loop alone; a child of the listener's `stop_accepting`.
    close: CancellationToken,
    /// The accept loop, which closes the socket as it ends.
    accepting: JoinHandle<()>,
}

impl fmt::Debug for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Opening => f.write_str("Opening"),
            Self::Open(port) => write!(f, "Open({})", port.addr),
            Self::Closing => f.write_str("Closing"),
        }
    }
}

impl<R, C> fmt::Debug for BrokerPorts<R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerPorts")
            .field("listener", &self.template.name)
            .field("serving", &*self.serving.lock())
            .finish_non_exhaustive()
    }
}

impl<R: Router, C: Connect> BrokerPorts<R, C> {
    /// The broker ports of `template`'s listener; serves `adopted` (ports a predecessor handed
    /// over) at once, and closes the ports of brokers the clusters stop reporting, until the
    /// listener stops accepting.
    pub(crate) fn start(
        template: Arc<ListenerSpec>,
        brokers: Arc<BrokerMap>,
        frontend: Arc<Frontend<R, C>>,
        lifecycle: Lifecycle,
        observe: Option<Arc<dyn BrokerPortObserver>>,
        adopted: Vec<(i32, StdTcpListener)>,
    ) -> Arc<Self> {
        let grace = match brokers.mode() {
            GatewayMode::PortPerBroker { port_grace, .. } => Some(*port_grace),
            GatewayMode::Sni { .. } => None,
        };
        let ports = Arc::new_cyclic(|me| Self {
            template,
            brokers,
            frontend,
            lifecycle,
            observe,
            serving: Mutex::default(),
            me: me.clone(),
        });
        for (node_id, socket) in adopted {
            ports.open(node_id, Some(socket));
        }
        if let Some(grace) = grace {
            let retiring = ports.clone().retire_unreported(grace);
            ports.lifecycle.tracker.spawn(retiring);
        }
        ports
    }

    /// Serves `node_id`'s port: `socket` when one was handed over, else a port bound now.
    fn open(&self, node_id: i32, socket: Option<StdTcpListener>) {
        let name = &self.template.name;
        let Some(addr) = self.brokers.broker_addr(node_id) else {
            // The map never hands such a node id over; a predecessor's socket is checked
            // against the config before it gets here. Dropping `socket` closes it.
            error!(
                listener.name = %name,
                broker.node_id = node_id,
                "broker node id has no port in the listener's range (0 to max_brokers - 1); not served"
            );
            return;
        };
        // Claimed first, bound after: the lock is never held across a bind or a spawn.
        {
            let mut serving = self.serving.lock();
            if serving.contains_key(&node_id) {
                return;
            }
            serving.insert(node_id, Port::Opening);
        }
        let bound = match socket {
            Some(socket) => socket
                .set_nonblocking(true)
                .and_then(|()| TcpListener::from_std(socket)),
            None => listen_now(addr),
        };
        let listener = match bound {
            Ok(listener) => listener,
            Err(err) => {
                self.serving.lock().remove(&node_id);
                error!(
                    listener.name = %name,
                    broker.node_id = node_id,
                    addr = %addr,
                    error = %err,
                    "cannot open the broker's port; clients cannot reach this broker"
                );
                return;
            }
        };
        if let Some(observe) = &self.observe {
            observe.opened(name, node_id, &listener);
        }
        info!(listener.name = %name, broker.node_id = node_id, addr = %addr, "serving broker port");
        let served = Arc::new(Served {
            phases: self.template.phases(),
            drain_timeout: self.lifecycle.drain_timeout,
            spec: self.template.clone(),
            broker: Some(node_id),
            broker_listeners: self.me.upgrade().map(|me| me as Arc<dyn BrokerListeners>),
            stop: Stop::of(&self.lifecycle),
        });
        let local = listener.local_addr().unwrap_or(addr);
        let close = self.lifecycle.stop_accepting.child_token();
        let accepting = self.lifecycle.tracker.spawn(accept_loop(
            listener,
            local,
            served,
            self.frontend.clone(),
            self.lifecycle.clone(),
            close.clone(),
        ));
        let port = OpenPort {
            addr: local,
            opened: Instant::now(),
            close,
            accepting,
        };
        self.serving.lock().insert(node_id, Port::Open(port));
    }
}

impl<R: Router, C: Connect> BrokerListeners for BrokerPorts<R, C> {
    fn serve(&self, node_ids: &[i32]) {
        for &node_id in node_ids {
            self.open(node_id, None);
        }
    }
}
