//! What is known about a session when it closes: its summary, handed to the close observer,
//! and the one close line every session ends with.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proxy_core::close::{CloseReason, Fault};
use proxy_core::context::{SessionContext, SessionId};
use proxy_core::gate::Side;
use proxy_core::route::RouteId;
use proxy_core::upstream::BackendTarget;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

/// What is known about a session when it closes; logged as its close line.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    /// The session's identifier.
    pub id: SessionId,
    /// The listener that accepted it.
    pub listener: Arc<str>,
    /// The real client's address (from the PROXY header when one was accepted).
    pub client_addr: SocketAddr,
    /// The TCP peer: the client itself, or the load balancer in front of it.
    pub peer_addr: SocketAddr,
    /// The proxy's address the connection was accepted on.
    pub local_addr: SocketAddr,
    /// The route it was given, if it got that far.
    pub route: Option<RouteId>,
    /// The backend's TCP address, when a network backend served it.
    pub backend_addr: Option<SocketAddr>,
    /// What served it (an address or a child process), if anything did.
    pub backend: Option<BackendTarget>,
    /// The server name the client's ClientHello asked for.
    pub sni: Option<Box<str>>,
    /// The authenticated principal (from the client certificate, later SASL).
    pub principal: Option<Box<str>>,
    /// Bytes read from the client.
    pub bytes_from_client: u64,
    /// Bytes read from the backend.
    pub bytes_from_backend: u64,
    /// From accept to close.
    pub duration: Duration,
    /// Why it ended.
    pub reason: CloseReason,
}

pub(crate) fn summarize(
    cx: &SessionContext,
    listener: Arc<str>,
    reason: CloseReason,
) -> SessionSummary {
    SessionSummary {
        id: cx.id(),
        listener,
        client_addr: cx.client_addr(),
        peer_addr: cx.peer_addr(),
        local_addr: cx.local_addr(),
        route: cx.route().cloned(),
        backend_addr: cx.backend_addr(),
        backend: cx.backend().cloned(),
        sni: cx.sni().map(Box::from),
        principal: cx.auth().principal().map(Box::from),
        bytes_from_client: cx.stats().bytes_from(Side::Client),
        bytes_from_backend: cx.stats().bytes_from(Side::Backend),
        duration: cx.accepted_at().elapsed(),
        reason,
    }
}

/// Writes the close line of `$summary` at `$level` (a `tracing::Level` constant: the macros
/// take the level as a token, not a value).
macro_rules! close_line {
    ($level:expr, $summary:expr) => {{
        let summary: &SessionSummary = $summary;
        let route = summary.route.as_ref().map(|r| r.as_str());
        tracing::event!(
            $level,
            session.id = summary.id.get(),
            client.addr = %summary.client_addr,
            peer.addr = %summary.peer_addr,
            listener.name = %summary.listener,
            listener.addr = %summary.local_addr,
            route = route.unwrap_or("-"),
            backend.addr = %OrDash(summary.backend.as_ref()),
            tls.sni = summary.sni.as_deref().unwrap_or("-"),
            auth.principal = summary.principal.as_deref().unwrap_or("-"),
            bytes.from_client = summary.bytes_from_client,
            bytes.from_backend = summary.bytes_from_backend,
            duration_ms = summary.duration.as_millis() as u64,
            reason.detail = %summary.reason,
            reason.label = summary.reason.label(),
            fault = summary.reason.fault().map_or("none", Fault::label),
            "session closed"
        )
    }};
}

/// A value shown as itself, or `-` when absent; formatted only if the line is written.
struct OrDash<T>(Option<T>);

impl<T: std::fmt::Display> std::fmt::Display for OrDash<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(value) => value.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// The one line every session ends with. A close that is the client's doing or nobody's is
/// `info`; one the backend or the proxy caused (`fault` `upstream` or `internal`: a cluster
/// down, a broker failing) is `warn`, for at most [`WARN_CLOSES_PER_WINDOW`] lines per
/// [`WARN_WINDOW`], past which such lines are written at `info` so that a dead cluster does not
/// flood the log's warnings.
pub(crate) fn log_close(summary: &SessionSummary) {
    let abnormal = matches!(
        summary.reason.fault(),
        Some(Fault::Upstream | Fault::Internal)
    );
    if abnormal && WARN_CLOSES.allow() {
        close_line!(tracing::Level::WARN, summary);
    } else {
        close_line!(tracing::Level::INFO, summary);
    }
}

/// Abnormal close lines written at `warn` per window, at most.
const WARN_CLOSES_PER_WINDOW: u32 = 10;
/// The rate limit's window.
const WARN_WINDOW: Duration = Duration::from_secs(10);

static WARN_CLOSES: WarnLimit = WarnLimit::new();

/// A fixed-window count of `warn` close lines: cheap, lock-free, good enough for logs.
struct WarnLimit {
    /// The current window's start, in milliseconds since the first line (`u64::MAX`: none yet).
    window: AtomicU64,
    count: AtomicU32,
}

impl WarnLimit {
    const fn new() -> Self {
        Self {
            window: AtomicU64::new(u64::MAX),
            count: AtomicU32::new(0),
        }
    }

    fn allow(&self) -> bool {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        let now = EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64;
        let window = self.window.load(Ordering::Relaxed);
        let window_ms = WARN_WINDOW.as_millis() as u64;
        if window == u64::MAX || now.saturating_sub(window) >= window_ms {
            // A new window; whichever thread swaps it in resets the count.
            if self
                .window
                .compare_exchange(window, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                self.count.store(0, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed) < WARN_CLOSES_PER_WINDOW
    }
}
