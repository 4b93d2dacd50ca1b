//! File descriptors: the limit the process runs under, and the connection limit that fits in
//! it.
//!
//! At start the soft `RLIMIT_NOFILE` is raised to the hard limit (systemd and container
//! runtimes set a low soft limit for `select`-era programs; Sluice uses epoll). Each client
//! connection costs two descriptors (the client's and its backend's); a reserve is kept for
//! listening sockets, broker ports, discovery and admin connections, and the log. Without a
//! `[limits] max_connections`, the process-wide limit is what fits: new connections then wait
//! in the kernel's backlog instead of failing with EMFILE, and `/livez` keeps answering.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use tracing::{info, warn};

use crate::config::Config;

/// Descriptors kept for everything that is not a client session.
pub(crate) const RESERVED: u64 = 128;

/// Descriptors each client connection costs: its own and its backend's.
pub(crate) const PER_CONNECTION: u64 = 2;

/// The descriptor limit after [`raise`]: the hard limit, if the soft one could be raised to it.
pub(crate) fn raise() -> u64 {
    let limit = getrlimit(Resource::Nofile);
    let (Some(soft), hard) = (limit.current, limit.maximum) else {
        // Unlimited soft limit: nothing to raise.
        return u64::MAX;
    };
    let Some(hard) = hard else {
        return soft;
    };
    if soft >= hard {
        return soft;
    }
    match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        },
    ) {
        Ok(()) => {
            info!(from = soft, to = hard, "raised the file descriptor limit");
            hard
        }
        Err(err) => {
            warn!(error = %err, soft, hard, "cannot raise the file descriptor limit");
            soft
        }
    }
}

/// The descriptor limit the process runs under now (the soft limit).
pub(crate) fn current() -> u64 {
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The descriptor limit a raised process would have (the hard limit), without raising it:
/// what `sluice check` compares the configured limits with.
pub(crate) fn available() -> u64 {
    let limit = getrlimit(Resource::Nofile);
    limit.maximum.or(limit.current).unwrap_or(u64::MAX)
}

/// The process-wide connection limit that fits in `nofile` descriptors.
pub(crate) fn fitting_connections(nofile: u64) -> usize {
    let usable = nofile.saturating_sub(RESERVED) / PER_CONNECTION;
    usize::try_from(usable.max(1)).unwrap_or(usize::MAX)
}

/// The process-wide limit to enforce: the configured one, or what fits.
pub(crate) fn max_connections(config: &Config, nofile: u64) -> usize {
    config
        .limits
        .max_connections
        .unwrap_or_else(|| fitting_connections(nofile))
}

/// A warning when the configured limits let more connections in than `nofile` descriptors
/// can hold: past that, accepting fails with EMFILE and backs off instead of waiting at the
/// limit.
pub(crate) fn warning(config: &Config, nofile: u64) -> Option<String> {
    let listeners: Option<usize> = config
        .listeners
        .iter()
        .map(|l| l.connection_limits.max_connections)
        .sum();
    let (configured, from) = match (config.limits.max_connections, listeners) {
        (Some(global), Some(sum)) if sum < global => {
            (sum, "the listeners' max_connections add up to")
        }
        (Some(global), _) => (global, "limits.max_connections is"),
        (None, _) => return None,
    };
    let fits = fitting_connections(nofile);
    (configured > fits).then(|| {
        format!(
            "{from} {configured}, but the file descriptor limit ({nofile}) holds {fits} \
             connections ({PER_CONNECTION} descriptors each, {RESERVED} kept for listeners and \
             admin): raise the limit (LimitNOFILE=, ulimit -n) or lower max_connections"
        )
    })
}
