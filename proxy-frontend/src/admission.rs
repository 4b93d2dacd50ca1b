//! Admission: how many connections a listener and the whole process hold at once, and how many
//! one source may hold and open per second (HAProxy's `maxconn` and `src_conn_cur`/
//! `src_conn_rate` limits).
//!
//! The connection limits are enforced before `accept`: at the limit a listener stops accepting,
//! and new connections wait in the kernel's backlog until a session ends, rather than being
//! accepted and dropped. The source limits need the client's address, which a PROXY header
//! may give, so they are checked once the header has been read, and a connection over them is
//! closed with a refusal.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use proxy_core::close::{CloseReason, Refusal};
use proxy_core::sasl::client_prefix;
use proxy_core::value::Fault;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// How many source entries are kept before idle ones (no connection open, rate bucket
/// refilled) are swept; entries with a connection open are never swept, and there are at most
/// `max_connections` of those. After a sweep the next waits until the table has doubled what
/// it kept, or for [`SOURCE_SWEEP_INTERVAL`]: many sources with connections open cost a sweep
/// now and then, not one per connection.
pub(crate) const SOURCE_TABLE_SWEEP: usize = 16 * 1024;

/// The least time between two sweeps of a table that has not doubled since the last.
const SOURCE_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// A listener's connection limits, from configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections the listener holds at once (its broker ports included).
    pub max_connections: Option<usize>,
    /// Connections one source address holds at once on this listener.
    pub max_connections_per_source: Option<u32>,
    /// New connections one source address may open per second on this listener.
    pub connection_rate_per_source: Option<SourceRate>,
}

/// A token bucket: `per_second` new connections a second, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceRate {
    /// The sustained rate.
    pub per_second: u32,
    /// How many may arrive at once after a quiet spell.
    pub burst: u32,
}

/// What admission did, for metrics.
#[derive(Debug, Default)]
pub struct AdmissionCounts {
    /// Times accepting paused because the listener or the process was at its limit.
    pub accept_paused: AtomicU64,
    /// Connections closed because their source held its maximum.
    pub refused_source_connections: AtomicU64,
    /// Connections closed because their source opened them too fast.
    pub refused_source_rate: AtomicU64,
}

/// The process-wide connection budget every listener draws from (`[limits] max_connections`).
#[derive(Clone, Default)]
pub struct ConnectionBudget {
    slots: Option<Arc<Semaphore>>,
    max: usize,
}

impl fmt::Debug for ConnectionBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionBudget")
            .field("max", &self.limit())
            .field("in_use", &self.in_use())
            .finish()
    }
}

impl ConnectionBudget {
    /// At most `max` connections across every listener.
    pub fn new(max: usize) -> Self {
        Self {
            slots: Some(Arc::new(Semaphore::new(max))),
            max,
        }
    }

    /// No process-wide limit.
    pub fn unlimited() -> Self {
        Self::default()
    }

    /// The limit, if there is one.
    pub fn limit(&self) -> Option<usize> {
        self.slots.as_ref().map(|_| self.max)
    }

    /// Connections holding a slot now.
    pub fn in_use(&self) -> usize {
        self.slots
            .as_ref()
            .map_or(0, |slots| self.max - slots.available_permits())
    }
}

/// One listener's admission state, shared by its bootstrap and broker ports.
pub struct Admission {
    limits: ConnectionLimits,
    slots: Option<Arc<Semaphore>>,
    sources: Mutex<SourceTable>,
    counts: Arc<AdmissionCounts>,
}

/// The sources a listener tracks, and when to sweep them next.
#[derive(Debug)]
struct SourceTable {
    entries: HashMap<IpAddr, SourceEntry>,
    /// The size at which the next sweep runs whenever it is due.
    sweep_at: usize,
    /// When the last sweep ran.
    swept: Option<Instant>,
    /// Sweeps so far (for tests).
    sweeps: u64,
}

impl Default for SourceTable {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            sweep_at: SOURCE_TABLE_SWEEP,
            swept: None,
            sweeps: 0,
        }
    }
}

impl SourceTable {
    /// Sweeps idle entries once the table has reached its size and a sweep is due.
    fn sweep_if_due(&mut self, rate: Option<SourceRate>, now: Instant) {
        let len = self.entries.len();
        let interval_passed = self
            .swept
            .is_none_or(|swept| now.saturating_duration_since(swept) >= SOURCE_SWEEP_INTERVAL);
        if len >= self.sweep_at || (len >= SOURCE_TABLE_SWEEP && interval_passed) {
            sweep(&mut self.entries, rate, now);
            self.sweep_at = (2 * self.entries.len()).max(SOURCE_TABLE_SWEEP);
            self.swept = Some(now);
            self.sweeps += 1;
        }
    }
}

impl fmt::Debug for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admission")
            .field("limits", &self.limits)
            .field("open", &self.open())
            .finish_non_exhaustive()
    }
}

impl Default for Admission {
    fn default() -> Self {
        Self::new(ConnectionLimits::default())
    }
}

/// What one source holds: open connections and its rate bucket.
#[derive(Debug)]
struct SourceEntry {
    open: u32,
    tokens: f64,
    refilled: Instant,
}

/// The slots a session holds while it is open: the listener's, the process's and its source's.
pub(crate) struct Admitted {
    _listener: Option<OwnedSemaphorePermit>,
    _process: Option<OwnedSemaphorePermit>,
}

/// A source's share of a listener, released when the session ends.
pub(crate) struct SourceGuard {
    admission: Arc<Admission>,
    source: IpAddr,
}

impl Drop for SourceGuard {
    fn drop(&mut self) {
        let mut sources = self.admission.sources.lock();
        if let Some(entry) = sources.entries.get_mut(&self.source) {
            entry.open = entry.open.saturating_sub(1);
        }
    }
}

// === impl Admission ===

impl Admission {
    /// Admission under `limits`.
    pub fn new(limits: ConnectionLimits) -> Self {
        Self {
            slots: limits
                .max_connections
                .map(|max| Arc::new(Semaphore::new(max))),
            limits,
            sources: Mutex::default(),
            counts: Arc::default(),
        }
    }

    /// The limits this admission enforces.
    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// What admission did so far.
    pub fn counts(&self) -> &Arc<AdmissionCounts> {
        &self.counts
    }

    /// Connections holding one of the listener's slots now (0 without a listener limit).
    pub fn open(&self) -> usize {
        match (&self.slots, self.limits.max_connections) {
            (Some(slots), Some(max)) => max - slots.available_permits(),
            _ => 0,
        }
    }

    /// Waits until the listener and the process each have a slot for one more connection.
    /// Cancel safe: nothing is held until it returns.
    pub(crate) async fn slot(&self, process: &ConnectionBudget) -> Admitted {
        let listener = acquire(self.slots.as_ref(), &self.counts).await;
        let process = acquire(process.slots.as_ref(), &self.counts).await;
        Admitted {
            _listener: listener,
            _process: process,
        }
    }

    /// Admits one more connection from `source`, or refuses it.
    pub(crate) fn admit_source(
        self: &Arc<Self>,
        source: IpAddr,
        now: Instant,
    ) -> Result<Option<SourceGuard>, CloseReason> {
        let (max, rate) = (
            self.limits.max_connections_per_source,
            self.limits.connection_rate_per_source,
        );
        if max.is_none() && rate.is_none() {
            return Ok(None);
        }
        // An IPv6 client is its /64, as for the SASL limits: one host commonly holds a whole
        // /64, and a limit per address would give it 2^64 fresh starts.
        let source = client_prefix(source);
        let mut sources = self.sources.lock();
        sources.sweep_if_due(rate, now);
        let entry = sources
            .entries
            .entry(source)
            .or_insert_with(|| SourceEntry {
                open: 0,
                tokens: rate.map_or(0.0, |rate| f64::from(rate.burst)),
                refilled: now,
            });
        if let Some(max) = max
            && entry.open >= max
        {
            self.counts
                .refused_source_connections
                .fetch_add(1, Ordering::Relaxed);
            return Err(refused(
                "source_connection_limit",
                format!(
                    "{} already holds {max} connections, the listener's max_connections_per_source",
                    SourceName(source)
                ),
            ));
        }
        if let Some(rate) = rate {
            refill(entry, rate, now);
            if entry.tokens < 1.0 {
                self.counts
                    .refused_source_rate
                    .fetch_add(1, Ordering::Relaxed);
                return Err(refused(
                    "source_rate_limit",
                    format!(
                        "{} opened connections faster than {} per second (burst {}), the \
                         listener's connection_rate_per_source",
                        SourceName(source),
                        rate.per_second,
                        rate.burst
                    ),
                ));
            }
            entry.tokens -= 1.0;
        }
        entry.open += 1;
        Ok(Some(SourceGuard {
            admission: self.clone(),
            source,
        }))
    }

    /// Source entries tracked now (for tests and metrics).
    pub fn tracked_sources(&self) -> usize {
        self.sources.lock().entries.len()
    }

    /// Sweeps of the source table so far.
    #[cfg(test)]
    pub(crate) fn source_sweeps(&self) -> u64 {
        self.sources.lock().sweeps
    }
}

/// Takes one slot of `slots`, counting a pause when none is free.
async fn acquire(
    slots: Option<&Arc<Semaphore>>,
    counts: &AdmissionCounts,
) -> Option<OwnedSemaphorePermit> {
    let slots = slots?;
    if let Ok(permit) = slots.clone().try_acquire_owned() {
        return Some(permit);
    }
    counts.accept_paused.fetch_add(1, Ordering::Relaxed);
    // Never closed, so this only waits.
    slots.clone().acquire_owned().await.ok()
}

fn refill(entry: &mut SourceEntry, rate: SourceRate, now: Instant) {
    let elapsed = now.saturating_duration_since(entry.refilled);
    entry.tokens = (entry.tokens + elapsed.as_secs_f64() * f64::from(rate.per_second))
        .min(f64::from(rate.burst));
    entry.refilled = now;
}

/// Drops entries that hold no connection and whose bucket is full again: they carry nothing a
/// fresh entry would not.
fn sweep(sources: &mut HashMap<IpAddr, SourceEntry>, rate: Option<SourceRate>, now: Instant) {
    sources.retain(|_, entry| {
        if entry.open > 0 {
            return true;
        }
        let Some(rate) = rate else {
            return false;
        };
        let refill_time =
            Duration::from_secs_f64(f64::from(rate.burst) / f64::from(rate.per_second.max(1)));
        now.saturating_duration_since(entry.refilled) < refill_time
    });
}

/// A source as refusals name it: an IPv4 address, or an IPv6 /64.
struct SourceName(IpAddr);

impl fmt::Display for SourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

fn refused(label: &'static str, detail: String) -> CloseReason {
    CloseReason::Refused(Box::new(Refusal {
        label,
        fault: Fault::Downstream,
        detail: detail.into(),
    }))
}
