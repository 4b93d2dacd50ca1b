//! What every listener of one proxy instance shares: the router, the backend connector, the
//! live-resource gauges, the session registry, and how shutdown reaches sessions.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use proxy_core::audit::AuditSink;
use proxy_core::context::LiveResources;
use proxy_core::route::Router;
use proxy_core::upstream::Connect;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admission::ConnectionBudget;
use crate::closes::CloseCounts;
use crate::sessions::Sessions;
use crate::summary::SessionSummary;

/// Called with every session's summary when it closes (audit, tests, metrics).
pub type CloseObserver = Arc<dyn Fn(&SessionSummary) + Send + Sync>;

/// The shared half of every listener of a proxy instance.
pub struct Frontend<R, C> {
    pub(crate) router: R,
    pub(crate) connector: C,
    pub(crate) live: Arc<LiveResources>,
    pub(crate) sessions: Sessions,
    pub(crate) closes: CloseCounts,
    pub(crate) on_close: Option<CloseObserver>,
    /// The process-wide connection budget every listener draws from.
    pub(crate) budget: ConnectionBudget,
    /// Where sessions report their audit events, if anywhere.
    pub(crate) audit: Option<Arc<dyn AuditSink>>,
}

impl<R, C> fmt::Debug for Frontend<R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frontend")
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl<R: Router, C: Connect> Frontend<R, C> {
    /// A frontend routing with `router` and reaching backends through `connector`.
    pub fn new(router: R, connector: C) -> Self {
        Self {
            router,
            connector,
            live: Arc::default(),
            sessions: Sessions::default(),
            closes: CloseCounts::default(),
            on_close: None,
            budget: ConnectionBudget::unlimited(),
            audit: None,
        }
    }

    /// Limits the connections every listener of this frontend holds together.
    pub fn with_connection_budget(mut self, budget: ConnectionBudget) -> Self {
        self.budget = budget;
        self
    }

    /// The process-wide connection budget.
    pub fn connection_budget(&self) -> &ConnectionBudget {
        &self.budget
    }

    /// Reports every session's audit events (connection open and close, authentication, and
    /// what its stages report) to `sink`.
    pub fn with_audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// Calls `observer` with the summary of every session that closes.
    pub fn with_close_observer(mut self, observer: CloseObserver) -> Self {
        self.on_close = Some(observer);
        self
    }

    /// The gauges of resources live sessions hold.
    pub fn live_resources(&self) -> &Arc<LiveResources> {
        &self.live
    }

    /// The sessions currently open.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// How many sessions have closed, by reason label (`proxy_header_untrusted`, ...).
    pub fn closes(&self) -> &CloseCounts {
        &self.closes
    }
}

/// How shutdown reaches listeners and sessions. The binary owns the root token; these are its
/// children.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    /// Cancelled when listeners must stop accepting; sessions then drain: each enters
    /// `Draining` with a deadline `drain_timeout` away, at which it closes itself.
    pub stop_accepting: CancellationToken,
    /// Cancelled to close every session still open at once: an owner that keeps its own drain
    /// deadline (the binary, which counts what it force-closes) cancels it at that deadline,
    /// and `drain_timeout` is then a backstop behind it.
    pub force_close: CancellationToken,
    /// Tracks every session task, so shutdown can wait for them.
    pub tracker: TaskTracker,
    /// How long a draining session may finish its in-flight work.
    pub drain_timeout: Duration,
}

/// The drain timeout of a [`Lifecycle::default`]: the binary's own default.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            stop_accepting: CancellationToken::new(),
            force_close: CancellationToken::new(),
            tracker: TaskTracker::new(),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}
