//! The session context: the one owner of everything known about a client connection.
//!
//! Created when a connection is accepted, filled by each phase (PROXY header, TLS, SASL,
//! routing), read by the router and by stages, and dropped when the session ends. Large
//! resources are held in typed slots with explicit `release_*` methods, each counted in the
//! instance's [`LiveResources`] so leaks are observable.

mod auth;
mod live;
mod stats;
mod tls;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::Instant;

pub use self::auth::{AuthMechanism, AuthState};
pub use self::live::{LiveResources, Resource};
pub use self::stats::{SessionStats, StatsSnapshot};
pub use self::tls::{PeerCertificates, TlsFacts};
use crate::audit::{AuditDetail, AuditEvent, AuditKind, AuditSink, AuthOutcome, SessionFacts};
pub use crate::proxy_protocol::{ProxiedAddrs, ProxyHeader, SslFacts, Tlv};
pub use crate::value::SessionId;
use crate::value::{BackendTarget, Prerequisites, RouteId};

/// What the session has released, so the close line can say so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    /// The parsed PROXY header was dropped before the session ended.
    pub proxy_header: bool,
    /// The client certificate chain was dropped before the session ended.
    pub peer_certificates: bool,
}

/// Everything known about one client connection.
///
/// A driver makes one per accepted connection and lends it (`&mut`) to the state machines, the
/// router, the stage chain and [`forward`](crate::forward::forward); phases fill it in as they
/// learn things, and stages read it through [`StageContext`](crate::stage::StageContext).
///
/// ```
/// use std::sync::Arc;
/// use proxy_core::context::{LiveResources, Resource};
/// use proxy_core::route::{Prerequisites, RouteId};
/// use proxy_core::{SessionContext, Side};
///
/// let live = Arc::new(LiveResources::default());
/// let peer = "192.0.2.7:50000".parse()?;
/// let local = "10.0.0.1:9092".parse()?;
/// let mut cx = SessionContext::new("kafka".into(), peer, local, Prerequisites::TCP, live.clone());
///
/// // Without a PROXY header, the client is the TCP peer and the destination our own address.
/// assert_eq!(cx.client_addr(), peer);
/// assert_eq!(cx.destination_addr(), local);
/// cx.set_route(RouteId::new("main"));
/// assert_eq!(cx.route().map(RouteId::as_str), Some("main"));
/// cx.stats().add_read(Side::Client, 42);
/// assert_eq!(cx.stats().snapshot().bytes_from_client, 42);
///
/// // Every live context is counted by its `LiveResources`, so a leak shows.
/// assert_eq!(live.live(Resource::Session), 1);
/// drop(cx);
/// assert_eq!(live.live(Resource::Session), 0);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Debug)]
pub struct SessionContext {
    id: SessionId,
    /// The listener's name, shared with every session it accepted.
    listener: Arc<str>,
    accepted_at: Instant,
    /// The TCP peer: the client itself, or a load balancer in front of it.
    peer: SocketAddr,
    /// Our own address on the accepted connection: the destination the client dialled.
    local: SocketAddr,
    /// Compact facts from a PROXY header, kept after the header itself is released.
    /// Boxed: most sessions come without a PROXY header.
    proxied: Option<Box<ProxiedAddrs>>,
    /// The header's authority TLV, kept after release because routing may have used it.
    proxied_authority: Option<Box<str>>,
    // Boxed, as `tls`: held inline, every session would carry room for them, and most
    // sessions have neither (or, the header, only until forwarding releases it).
    proxy_header: Option<Box<ProxyHeader>>,
    tls: Option<Box<TlsFacts>>,
    /// The server name the client asked for in its ClientHello, whether TLS is terminated here
    /// or passed through.
    sni: Option<Box<str>>,
    /// Boxed: only mTLS sessions have one, and only until the principal is derived.
    peer_certificates: Option<Box<PeerCertificates>>,
    auth: AuthState,
    /// What the listener demands before the session may forward.
    requires: Prerequisites,
    route: Option<RouteId>,
    /// What the backend connection goes to, once it is made.
    backend: Option<BackendTarget>,
    released: Released,
    /// Until when a stage holds the client's reads (a quota's throttle); see
    /// [`Self::hold_client_reads_until`].
    client_hold: Option<Instant>,
    /// Where the session's audit events go, if anywhere.
    audit: Option<Arc<dyn AuditSink>>,
    /// The tenant a multi-tenant stage gave the session.
    tenant: Option<Box<str>>,
    stats: Arc<SessionStats>,
    live: Arc<LiveResources>,
}

// === impl SessionContext ===

impl SessionContext {
    /// A context for a connection from `peer` accepted on `local` by `listener`.
    pub fn new(
        listener: Arc<str>,
        peer: SocketAddr,
        local: SocketAddr,
        requires: Prerequisites,
        live: Arc<LiveResources>,
    ) -> Self {
        live.acquire(Resource::Session);
        Self {
            id: SessionId::next(),
            listener,
            accepted_at: Instant::now(),
            peer,
            local,
            proxied: None,
            proxied_authority: None,
            proxy_header: None,
            tls: None,
            sni: None,
            peer_certificates: None,
            auth: AuthState::default(),
            requires,
            route: None,
            backend: None,
            released: Released::default(),
            client_hold: None,
            audit: None,
            tenant: None,
            stats: Arc::default(),
            live,
        }
    }

    /// The session's identifier.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The name of the listener that accepted the session.
    pub fn listener(&self) -> &str {
        &self.listener
    }

    /// When the connection was accepted.
    pub fn accepted_at(&self) -> Instant {
        self.accepted_at
    }

    /// The TCP peer address (a load balancer, when one is in front).
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The address the client connected to: from the PROXY header when one was received,
    /// otherwise our own side of the accepted connection.
    pub fn destination_addr(&self) -> SocketAddr {
        self.proxied.as_ref().map_or(self.local, |p| p.destination)
    }

    /// The proxy's own address the TCP connection was accepted on (a Kafka broker's port, say).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The real client's address: from the PROXY header when one was received, otherwise the
    /// TCP peer.
    pub fn client_addr(&self) -> SocketAddr {
        self.proxied.as_ref().map_or(self.peer, |p| p.source)
    }

    /// Stores a parsed PROXY header and the addresses it carried.
    pub fn set_proxy_header(&mut self, header: ProxyHeader) {
        if let Some(addrs) = header.addrs() {
            self.proxied = Some(Box::new(addrs));
        }
        self.proxied_authority = header.authority().map(Box::from);
        if self.proxy_header.replace(Box::new(header)).is_none() {
            self.live.acquire(Resource::ProxyHeader);
        }
    }

    /// The PROXY header, until it is released.
    pub fn proxy_header(&self) -> Option<&ProxyHeader> {
        self.proxy_header.as_deref()
    }

    /// The authority (host name) a load balancer's PROXY header named, even after release.
    pub fn proxied_authority(&self) -> Option<&str> {
        self.proxied_authority.as_deref()
    }

    /// Drops the parsed PROXY header, keeping only the addresses and authority it carried.
    pub fn release_proxy_header(&mut self) {
        if self.proxy_header.take().is_some() {
            self.live.release(Resource::ProxyHeader);
            self.released.proxy_header = true;
        }
    }

    /// Records a completed TLS handshake.
    pub fn set_tls(&mut self, facts: TlsFacts) {
        self.tls = Some(Box::new(facts));
    }

    /// Facts from the TLS handshake, if the session is TLS.
    pub fn tls(&self) -> Option<&TlsFacts> {
        self.tls.as_deref()
    }

    /// The server name from the client's ClientHello.
    pub fn sni(&self) -> Option<&str> {
        self.sni.as_deref()
    }

    /// Records the server name from the client's ClientHello.
    pub fn set_sni(&mut self, sni: Option<Box<str>>) {
        self.sni = sni;
    }

    /// Stores the client's certificate chain until the principal has been derived.
    pub fn set_peer_certificates(&mut self, chain: PeerCertificates) {
        if self.peer_certificates.replace(Box::new(chain)).is_none() {
            self.live.acquire(Resource::PeerCertificates);
        }
    }

    /// The client's certificate chain, until it is released.
    pub fn peer_certificates(&self) -> Option<&PeerCertificates> {
        self.peer_certificates.as_deref()
    }

    /// Drops the client's certificate chain.
    pub fn release_peer_certificates(&mut self) {
        if self.peer_certificates.take().is_some() {
            self.live.release(Resource::PeerCertificates);
            self.released.peer_certificates = true;
        }
    }

    /// The authentication state.
    pub fn auth(&self) -> &AuthState {
        &self.auth
    }

    /// Replaces the authentication state.
    pub fn set_auth(&mut self, auth: AuthState) {
        // An authentication that ended is an audit event (a re-authentication too).
        let ended = match &auth {
            AuthState::Authenticated {
                principal,
                mechanism,
            } => Some((*mechanism, Some(principal.clone()), AuthOutcome::Success)),
            AuthState::Failed { mechanism } => Some((*mechanism, None, AuthOutcome::Failure)),
            AuthState::Unauthenticated | AuthState::InProgress { .. } => None,
        };
        self.auth = auth;
        if let Some((mechanism, principal, outcome)) = ended {
            self.audit(
                || AuditDetail::Authentication {
                    mechanism: mechanism.to_string().into_boxed_str(),
                    principal,
                    outcome,
                    reason: (outcome == AuthOutcome::Failure).then(|| {
                        format!("the client did not prove its identity with {mechanism}")
                            .into_boxed_str()
                    }),
                },
                AuditKind::Authentication,
            );
        }
    }

    /// What the listener requires before the session may forward.
    pub fn requires(&self) -> Prerequisites {
        self.requires
    }

    /// The chosen route, once routed.
    pub fn route(&self) -> Option<&RouteId> {
        self.route.as_ref()
    }

    /// Records the chosen route.
    pub fn set_route(&mut self, route: RouteId) {
        self.route = Some(route);
    }

    /// What the session's backend connection goes to.
    pub fn backend(&self) -> Option<&BackendTarget> {
        self.backend.as_ref()
    }

    /// The backend's TCP address, for a network backend.
    pub fn backend_addr(&self) -> Option<SocketAddr> {
        self.backend.as_ref().and_then(BackendTarget::addr)
    }

    /// Records what the backend connection goes to.
    pub fn set_backend(&mut self, target: BackendTarget) {
        self.backend = Some(target);
    }

    /// What has been released so far.
    pub fn released(&self) -> Released {
        self.released
    }

    /// The session's live counters.
    pub fn stats(&self) -> &Arc<SessionStats> {
        &self.stats
    }

    /// The instance-wide live resource gauges this session reports to.
    pub fn live_resources(&self) -> &Arc<LiveResources> {
        &self.live
    }

    /// Stops reading from the client until `until` (or later, if a hold already reaches
    /// further), with [`PauseReason::Quota`](crate::PauseReason::Quota) on its read gate: what a
    /// Kafka broker does to a connection it throttles. Answers already on their way to the
    /// client keep flowing; the [`forward`](crate::forward::forward) driver reopens the gate at
    /// the deadline without any other event.
    pub fn hold_client_reads_until(&mut self, until: Instant) {
        if self.client_hold.is_none_or(|held| held < until) {
            self.client_hold = Some(until);
        }
    }

    /// Sends the session's audit events to `sink` (see [`SessionContext::audit`]).
    pub fn set_audit(&mut self, sink: Arc<dyn AuditSink>) {
        self.audit = Some(sink);
    }

    /// The session's audit sink, if it has one.
    pub fn audit_sink(&self) -> Option<&Arc<dyn AuditSink>> {
        self.audit.as_ref()
    }

    /// Reports `detail` to the session's audit sink, if it has one that wants `kind`; the
    /// session's facts are taken now, and `detail` is built only when wanted.
    pub fn audit(&self, detail: impl FnOnce() -> AuditDetail, kind: AuditKind) {
        let Some(sink) = &self.audit else {
            return;
        };
        if !sink.wants(kind) {
            return;
        }
        sink.record(AuditEvent {
            time: std::time::SystemTime::now(),
            session: self.audit_facts(),
            detail: detail(),
        });
    }

    /// The session's facts, as an audit event carries them.
    pub fn audit_facts(&self) -> SessionFacts {
        SessionFacts {
            id: self.id.get(),
            listener: Box::from(&*self.listener),
            client_addr: self.client_addr(),
            peer_addr: self.peer,
            sni: self.sni.clone(),
            tls_version: self.tls.as_ref().and_then(|tls| tls.version.clone()),
            principal: self.auth.principal().map(Box::from),
            route: self.route.as_ref().map(|route| Box::from(route.as_str())),
            tenant: self.tenant.clone(),
        }
    }

    /// Records the tenant a multi-tenant stage gave the session (audit events carry it).
    pub fn set_tenant(&mut self, tenant: Option<Box<str>>) {
        self.tenant = tenant;
    }

    /// The session's tenant, if a stage gave it one.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// Takes the hold set since the last call, for the driver that owns the read gate (it may
    /// have passed already).
    pub fn take_client_hold(&mut self) -> Option<Instant> {
        self.client_hold.take()
    }
}

impl Drop for SessionContext {
    fn drop(&mut self) {
        self.release_proxy_header();
        self.release_peer_certificates();
        self.live.release(Resource::Session);
    }
}
