//! Connecting a session to its cluster, with ordered failover across backend addresses, then
//! the outbound PROXY header, for a TLS cluster the handshake, and for a SASL cluster the
//! authentication with the cluster's own credentials.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proxy_core::Side;
use proxy_core::close::{CloseReason, ConnectFailure};
use proxy_core::context::AuthMechanism;
use proxy_core::io::is_out_of_descriptors;
use proxy_core::proxy_protocol;
use proxy_core::route::RouteId;
use proxy_core::state::{BackendEvent, BackendState};
use proxy_core::upstream::{BackendTarget, Connect, ConnectRequest, Connected, Requester};
use proxy_core::value::SessionId;
use proxy_kafka::client::authenticate;
use smallvec::{SmallVec, smallvec};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tracing::debug;

use crate::child::{ChildReaper, ChildSpec};
use crate::cluster::{BackendAddr, ClusterSpec};
use crate::connections::BackendConnections;
use crate::io::BackendIo;
use crate::tls::HandshakeError;

/// Connects sessions to the clusters they are routed to: TCP with ordered failover, or a child
/// process per session for `exec` clusters.
#[derive(Debug, Clone)]
pub struct Connector {
    clusters: HashMap<RouteId, Arc<ClusterSpec>>,
    /// Stops the children of `exec` clusters when their sessions end.
    reaper: ChildReaper,
    /// TCP connections established, per cluster; shared with the admin endpoint.
    connections: Arc<BackendConnections>,
}

impl Connector {
    /// A connector for `clusters`, each reached by its route name; children go to `reaper`.
    pub fn new(clusters: impl IntoIterator<Item = ClusterSpec>, reaper: ChildReaper) -> Self {
        let clusters: HashMap<_, _> = clusters
            .into_iter()
            .map(|c| (c.route.clone(), Arc::new(c)))
            .collect();
        let connections = BackendConnections::new(clusters.keys().cloned());
        for cluster in clusters.values() {
            connections.expect_backends(&cluster.route, &cluster.backends);
        }
        let connections = Arc::new(connections);
        Self {
            clusters,
            reaper,
            connections,
        }
    }

    /// The TCP connections this connector (and its clones) established, per cluster; every
    /// cluster it was built with is listed, from 0.
    pub fn connections(&self) -> &Arc<BackendConnections> {
        &self.connections
    }

    /// Spawns the session's child; a spawn that fails is a backend that is unavailable.
    fn spawn(
        &self,
        spec: &ChildSpec,
        session: Option<SessionId>,
    ) -> Result<Connected<BackendIo>, CloseReason> {
        let program: Box<str> = spec.argv.first().map_or("?", String::as_str).into();
        let (io, pid) = self.reaper.spawn(spec).map_err(|err| {
            debug!(program = %program, error = %err, "child backend did not start");
            let reason = CloseReason::BackendUnavailable {
                attempts: 1,
                last: ConnectFailure::Io(err.kind()),
            };
            fail(BackendState::Idle, session, reason)
        })?;
        let target = BackendTarget::Child { pid, program };
        let deadline = Instant::now();
        let state = BackendState::Idle
            .on(
                BackendEvent::Connect {
                    target: target.clone(),
                    deadline,
                },
                session,
            )?
            .on(BackendEvent::Established, session)?;
        Ok(Connected {
            io: BackendIo::Child(Box::new(io)),
            state,
            target,
        })
    }
}

impl Connect for Connector {
    type Io = BackendIo;

    async fn connect(
        &self,
        request: ConnectRequest<'_>,
    ) -> Result<Connected<BackendIo>, CloseReason> {
        let route = request.route;
        let session = request.requester.session();
        let cluster = self.clusters.get(route).ok_or(CloseReason::NoRoute)?;
        if let Some(spec) = &cluster.exec {
            return self.spawn(spec, session);
        }
        let mut state = BackendState::Idle;
        let mut attempts = 0u32;
        let mut last = ConnectFailure::Unresolved;
        let backends = match request.pinned {
            Some(backend) => std::slice::from_ref(backend),
            None => &cluster.backends[..],
        };
        for backend in backends {
            // The name a TLS backend's certificate must match comes from the configuration (the
            // override, or the host as written), never from the address it resolves to.
            let tls = match &cluster.tls {
                Some(tls) => match tls.server_name_for(&backend.host) {
                    Ok(name) => Some((tls, name)),
                    Err(err) => return Err(fail(state, session, tls_failure(&err))),
                },
                None => None,
            };
            let deadline = Instant::now() + cluster.connect_timeout;
            let addrs = match resolve(backend, deadline).await {
                Ok(addrs) => addrs,
                Err(failure) => {
                    // A pinned broker's host is the cluster's word: escaped (`?`).
                    debug!(
                        backend.host = ?backend.host,
                        backend.port = backend.port,
                        error = %failure,
                        "backend did not resolve"
                    );
                    self.connections.record_failure(route, backend);
                    attempts += 1;
                    last = failure;
                    continue;
                }
            };
            for addr in addrs {
                let deadline = Instant::now() + cluster.connect_timeout;
                let target = BackendTarget::Addr(addr);
                state = state.on(BackendEvent::Connect { target, deadline }, session)?;
                attempts += 1;
                let mut stream = match timeout_at(deadline, connect_tcp(addr)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(err)) => {
                        debug!(backend.addr = %addr, error = %err, "backend connect failed");
                        self.connections.record_failure(route, backend);
                        last = ConnectFailure::Io(err.kind());
                        continue;
                    }
                    Err(_) => {
                        debug!(backend.addr = %addr, "backend connect timed out");
                        self.connections.record_failure(route, backend);
                        last = ConnectFailure::TimedOut;
                        continue;
                    }
                };
                self.connections.record(route);
                // Sluice adds no delay of its own: small writes leave at once.
                if let Err(err) = stream.set_nodelay(true) {
                    debug!(backend.addr = %addr, error = %err, "could not set TCP_NODELAY");
                }
                // The PROXY header goes first, in the clear, ahead of any TLS ClientHello.
                if let Some(version) = cluster.send_proxy_protocol {
                    let header = match request.requester {
                        Requester::Session {
                            client,
                            destination,
                            ..
                        } => proxy_protocol::encode(version, client, destination),
                        // The proxy's own connection carries no client: a LOCAL header.
                        Requester::Proxy => proxy_protocol::encode_local(version),
                    };
                    let reason = match timeout_at(deadline, stream.write_all(&header)).await {
                        Ok(Ok(())) => None,
                        Ok(Err(err)) => Some(CloseReason::BackendIo(err.kind())),
                        Err(_) => Some(CloseReason::BackendIo(std::io::ErrorKind::TimedOut)),
                    };
                    if let Some(reason) = reason {
                        return Err(fail(state, session, reason));
                    }
                }
                let mut io = match tls.clone() {
                    None => BackendIo::Tcp(stream),
                    Some((tls, name)) => {
                        // A fresh deadline of `connect_timeout`: the handshake is its own phase
                        // (as name resolution is), so a slow connect does not eat into it. The
                        // worst case to `Ready` is thus twice `connect_timeout`.
                        let deadline = Instant::now() + cluster.connect_timeout;
                        state = state.on(BackendEvent::StartTls { deadline }, session)?;
                        // Boxed: the handshake's state is over a kilobyte, and plain
                        // connections would carry room for it.
                        match Box::pin(tls.handshake(name, stream, deadline)).await {
                            Ok(stream) => BackendIo::Tls(Box::new(stream)),
                            // No failover: a certificate the backend presents is not an
                            // unreachable backend, and the next address would likely present
                            // the same one.
                            Err(err) => {
                                debug!(backend.addr = %addr, error = %err, "backend TLS handshake failed");
                                return Err(fail(state, session, tls_failure(&err)));
                            }
                        }
                    }
                };
                if let Some(sasl) = &cluster.sasl {
                    // Its own deadline, as the handshake has: the worst case to `Ready` is
                    // thrice `connect_timeout`.
                    let deadline = Instant::now() + cluster.connect_timeout;
                    let mechanism = AuthMechanism::from(sasl.mechanism);
                    state = state.on(BackendEvent::StartAuth { mechanism }, session)?;
                    let (mechanism, username) = (sasl.mechanism, sasl.username.as_str());
                    debug!(backend.addr = %addr, %mechanism, username, "authenticating to the backend");
                    // Boxed, as the TLS handshake.
                    match Box::pin(authenticate(&mut io, sasl, deadline)).await {
                        Ok(_) => {
                            debug!(backend.addr = %addr, %mechanism, username, "authenticated to the backend");
                        }
                        // No failover, whatever went wrong: the credentials are the cluster's,
                        // so the next broker would refuse them too, and the backend machine has
                        // no way back from `Authenticating` to `Connecting` (as from
                        // `TlsHandshaking`).
                        Err(err) => {
                            debug!(backend.addr = %addr, %mechanism, username, error = %err, "authenticating to the backend failed");
                            return Err(fail(state, session, err.into()));
                        }
                    }
                }
                state = state.on(BackendEvent::Established, session)?;
                return Ok(Connected {
                    io,
                    state,
                    target: BackendTarget::Addr(addr),
                });
            }
        }
        Err(fail(
            state,
            session,
            CloseReason::BackendUnavailable { attempts, last },
        ))
    }
}

/// The session's close reason for a failed TLS handshake with its backend.
fn tls_failure(err: &HandshakeError) -> CloseReason {
    CloseReason::Tls {
        side: Side::Backend,
        detail: err.to_string().into(),
    }
}

/// Moves the backend machine to `Failed` and returns the reason for the session.
fn fail(state: BackendState, session: Option<SessionId>, reason: CloseReason) -> CloseReason {
    match state.on(BackendEvent::Fail(reason.clone()), session) {
        Ok(_) => reason,
        Err(invalid) => invalid.into(),
    }
}

/// Connects to `addr`. While the process is out of descriptors (EMFILE, ENFILE) it waits for
/// one to free up, as one does whenever a session ends, rather than failing the session; the
/// caller's connect deadline bounds the wait.
async fn connect_tcp(addr: SocketAddr) -> io::Result<TcpStream> {
    let mut pause = Duration::from_millis(5);
    loop {
        match TcpStream::connect(addr).await {
            Err(err) if is_out_of_descriptors(&err) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// The socket addresses of `backend`: the literal itself, or what its name resolves to. Held
/// inline up to two, so connecting to an address literal allocates nothing for it.
pub(crate) async fn resolve(
    backend: &BackendAddr,
    deadline: Instant,
) -> Result<SmallVec<[SocketAddr; 2]>, ConnectFailure> {
    if let Ok(ip) = backend.host.parse() {
        return Ok(smallvec![SocketAddr::new(ip, backend.port)]);
    }
    let lookup = tokio::net::lookup_host((backend.host.as_str(), backend.port));
    match timeout_at(deadline, lookup).await {
        Err(_) => Err(ConnectFailure::TimedOut),
        Ok(Err(_)) => Err(ConnectFailure::Unresolved),
        Ok(Ok(addrs)) => {
            let addrs: SmallVec<_> = addrs.collect();
            if addrs.is_empty() {
                Err(ConnectFailure::Unresolved)
            } else {
                Ok(addrs)
            }
        }
    }
}
