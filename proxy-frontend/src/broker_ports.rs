//! The listening ports of a port-per-broker Kafka gateway: one per broker its broker map knows,
//! opened as brokers are learnt (before the response naming one reaches the client), or taken
//! over from the process this one replaced. Each is served like the bootstrap listener (same
//! name, TLS, limits and stages), its sessions pinned to that broker.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use proxy_core::route::Router;
use proxy_core::upstream::Connect;
use proxy_kafka::broker_map::{BrokerListeners, BrokerMap};
use tokio::net::{TcpListener, TcpSocket};
use tracing::{error, info};

use crate::accept::accept_loop;
use crate::frontend::{Frontend, Lifecycle};
use crate::session::Served;
use crate::spec::ListenerSpec;

/// The accept queue of ports bound here (Linux caps it at `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 1024;

/// Called with each broker port a gateway starts serving (to offer it to a successor): the
/// listener's name, the broker's node id, and the listening socket.
pub type BrokerPortObserver = Arc<dyn Fn(&str, i32, &TcpListener) + Send + Sync>;

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
    observe: Option<BrokerPortObserver>,
    /// Node ids whose ports are served (or being opened).
    serving: Mutex<BTreeSet<i32>>,
    /// This value, for the sessions of the ports it opens (they open ports too).
    me: Weak<Self>,
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
    /// over) at once.
    pub(crate) fn start(
        template: Arc<ListenerSpec>,
        brokers: Arc<BrokerMap>,
        frontend: Arc<Frontend<R, C>>,
        lifecycle: Lifecycle,
        observe: Option<BrokerPortObserver>,
        adopted: Vec<(i32, StdTcpListener)>,
    ) -> Arc<Self> {
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
        ports
    }

    /// Serves `node_id`'s port: `socket` when one was handed over, else a port bound now.
    fn open(&self, node_id: i32, socket: Option<StdTcpListener>) {
        let name = &self.template.name;
        let Some(addr) = self.brokers.broker_addr(node_id) else {
            error!(
                listener = %name,
                broker.node_id = node_id,
                "broker node id does not fit a port above broker_port_start; its clients cannot reach it"
            );
            return;
        };
        // Claimed first, bound after: the lock is never held across a bind or a spawn.
        if !self.serving.lock().insert(node_id) {
            return;
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
                    listener = %name,
                    broker.node_id = node_id,
                    addr = %addr,
                    error = %err,
                    "cannot open the broker's port; clients cannot reach this broker"
                );
                return;
            }
        };
        if let Some(observe) = &self.observe {
            observe(name, node_id, &listener);
        }
        info!(listener = %name, broker.node_id = node_id, addr = %addr, "serving broker port");
        let served = Arc::new(Served {
            phases: self.template.phases(),
            drain_timeout: self.lifecycle.drain_timeout,
            spec: self.template.clone(),
            broker: Some(node_id),
            broker_listeners: self.me.upgrade().map(|me| me as Arc<dyn BrokerListeners>),
        });
        let local = listener.local_addr().unwrap_or(addr);
        let frontend = self.frontend.clone();
        let lifecycle = self.lifecycle.clone();
        self.lifecycle
            .tracker
            .spawn(accept_loop(listener, local, served, frontend, lifecycle));
    }
}

impl<R: Router, C: Connect> BrokerListeners for BrokerPorts<R, C> {
    fn serve(&self, node_ids: &[i32]) {
        for &node_id in node_ids {
            self.open(node_id, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use parking_lot::Mutex;
    use proxy_core::close::CloseReason;
    use proxy_core::forward::ForwardLimits;
    use proxy_core::proxy_protocol::ProxyProtocolPolicy;
    use proxy_core::route::{Prerequisites, RouteId, StaticRouter};
    use proxy_core::upstream::{ConnectRequest, Connected};
    use proxy_kafka::broker_map::GatewayMode;

    use super::*;
    use crate::spec::{KafkaListener, ListenerProtocol};

    /// A connector no session in this test reaches.
    struct Unreachable;

    impl Connect for Unreachable {
        type Io = tokio::net::TcpStream;

        async fn connect(&self, _: ConnectRequest<'_>) -> Result<Connected<Self::Io>, CloseReason> {
            Err(CloseReason::NoRoute)
        }
    }

    /// A port `p` with `p + 1` and `p + 2` free on loopback.
    fn free_block() -> u16 {
        for _ in 0..50 {
            let base = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if base < u16::MAX - 3
                && (1..=2)
                    .all(|i| std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, base + i)).is_ok())
            {
                return base;
            }
        }
        panic!("no block of free ports on loopback");
    }

    #[tokio::test]
    async fn each_broker_port_is_opened_once_however_often_it_is_learnt() {
        let start = free_block();
        let brokers = Arc::new(BrokerMap::new(
            "kafka".into(),
            "127.0.0.1".into(),
            GatewayMode::PortPerBroker {
                broker_port_start: start,
                bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            },
        ));
        let spec = Arc::new(ListenerSpec {
            name: "kafka".into(),
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, start)),
            requires: Prerequisites::TCP,
            proxy_protocol: ProxyProtocolPolicy::default(),
            tls: None,
            limits: ForwardLimits::default(),
            admission: Arc::default(),
            protocol: ListenerProtocol::Kafka(KafkaListener {
                brokers: brokers.clone(),
                max_frame_size: 1024,
                stages: Vec::new(),
                metrics: Arc::default(),
                sasl: None,
                routes: vec![RouteId::new("main")],
            }),
        });
        let frontend = Arc::new(Frontend::new(StaticRouter::new(), Unreachable));
        let lifecycle = Lifecycle::default();
        let opened = Arc::new(Mutex::new(Vec::new()));
        let seen = opened.clone();
        let observe: BrokerPortObserver =
            Arc::new(move |name: &str, node_id, socket: &TcpListener| {
                seen.lock().push((
                    name.to_owned(),
                    node_id,
                    socket.local_addr().unwrap().port(),
                ));
            });
        let ports = BrokerPorts::start(
            spec,
            brokers,
            frontend,
            lifecycle.clone(),
            Some(observe),
            Vec::new(),
        );
        ports.serve(&[1, 2]);
        ports.serve(&[2, 1]);
        // A node id past the last port is refused, not wrapped around.
        ports.serve(&[i32::from(u16::MAX)]);
        assert_eq!(
            *opened.lock(),
            [
                ("kafka".to_owned(), 1, start + 1),
                ("kafka".to_owned(), 2, start + 2),
            ]
        );
        for port in [start + 1, start + 2] {
            tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                .await
                .unwrap();
        }
        lifecycle.stop_accepting.cancel();
        lifecycle.tracker.close();
        lifecycle.tracker.wait().await;
        assert!(
            tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, start + 1))
                .await
                .is_err(),
            "a broker port still accepts after the listener stopped"
        );
    }
}
