//! The process's generation: 1 for a process started by hand or by a service manager, one more
//! than its predecessor's for a process started by an upgrade or reload. It tells apart the log
//! lines of two generations writing to one stream, and keeps session ids unique across them.

use std::sync::OnceLock;

use proxy_core::SessionId;

/// Set by a process for the successor it starts.
pub(crate) const GENERATION_ENV: &str = "SLUICE_GENERATION";

/// Session ids of generation `g` start at `(g - 1) × SESSION_IDS_PER_GENERATION + 1`: a
/// generation would need a billion sessions to reach the next one's.
const SESSION_IDS_PER_GENERATION: u64 = 1_000_000_000;

/// This process's generation, read once from [`GENERATION_ENV`].
pub(crate) fn current() -> u64 {
    static CURRENT: OnceLock<u64> = OnceLock::new();
    *CURRENT.get_or_init(|| {
        std::env::var(GENERATION_ENV)
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
            .filter(|&g| g >= 1)
            .unwrap_or(1)
    })
}

/// What a successor started by this process is told.
pub(crate) fn next() -> u64 {
    current().saturating_add(1)
}

/// Starts this generation's session ids past every earlier generation's.
pub(crate) fn start_session_ids() {
    let first = (current() - 1)
        .saturating_mul(SESSION_IDS_PER_GENERATION)
        .saturating_add(1);
    SessionId::start_at(first);
}
