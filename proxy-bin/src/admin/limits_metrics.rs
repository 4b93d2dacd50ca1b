//! Connection limits: the process-wide budget, each listener's open connections and limit,
//! what admission paused or refused, and the admin endpoint's own connections.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::clock::Expiry;
use super::metrics::{escape, header};
use super::state::AdminState;

/// The admin endpoint's connections: open, and closed by its timeouts and cap.
pub(super) fn render_admin(state: &AdminState, out: &mut String) {
    let counts = &state.admin_connections;
    header(
        out,
        "sluice_admin_connections_open",
        "Connections to the admin endpoint open now.",
        "gauge",
    );
    let _ = writeln!(out, "sluice_admin_connections_open {}", counts.open_count());
    header(
        out,
        "sluice_admin_connections_closed_total",
        "Admin connections the proxy closed, by reason: no complete request head within \
         [admin] header_read_timeout, idle past idle_timeout, or evicted at max_connections.",
        "counter",
    );
    for expiry in Expiry::ALL {
        let _ = writeln!(
            out,
            "sluice_admin_connections_closed_total{{reason=\"{}\"}} {}",
            expiry.label(),
            counts.closed_count(expiry)
        );
    }
}

pub(super) fn render(state: &AdminState, out: &mut String) {
    let budget = &state.budget;
    if let Some(max) = budget.limit() {
        header(
            out,
            "sluice_connections_max",
            "Connections all listeners may hold together ([limits] max_connections, or what the \
             descriptor limit holds).",
            "gauge",
        );
        let _ = writeln!(out, "sluice_connections_max {max}");
    }
    header(
        out,
        "sluice_connections_open",
        "Client connections holding a slot of the process-wide limit.",
        "gauge",
    );
    let _ = writeln!(out, "sluice_connections_open {}", budget.in_use());
    if state.admissions.is_empty() {
        return;
    }
    let mut open: BTreeMap<&str, u64> = BTreeMap::new();
    let sessions = state.sessions.snapshot();
    for session in &sessions {
        *open.entry(&session.listener).or_default() += 1;
    }
    header(
        out,
        "sluice_listener_sessions_open",
        "Sessions open now, by listener.",
        "gauge",
    );
    for (listener, _) in &state.admissions {
        let count = open.get(listener.as_str()).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "sluice_listener_sessions_open{{listener=\"{}\"}} {count}",
            escape(listener)
        );
    }
    header(
        out,
        "sluice_listener_max_connections",
        "A listener's max_connections (listeners with one).",
        "gauge",
    );
    for (listener, admission) in &state.admissions {
        if let Some(max) = admission.limits().max_connections {
            let _ = writeln!(
                out,
                "sluice_listener_max_connections{{listener=\"{}\"}} {max}",
                escape(listener)
            );
        }
    }
    header(
        out,
        "sluice_listener_accept_paused_total",
        "Times a listener stopped accepting because it or the process held its maximum \
         connections (new connections waited in the backlog).",
        "counter",
    );
    for (listener, admission) in &state.admissions {
        let _ = writeln!(
            out,
            "sluice_listener_accept_paused_total{{listener=\"{}\"}} {}",
            escape(listener),
            admission.counts().accept_paused.load(Ordering::Relaxed)
        );
    }
    header(
        out,
        "sluice_listener_refused_total",
        "Connections closed by a listener's per-source limits, by reason.",
        "counter",
    );
    for (listener, admission) in &state.admissions {
        let counts = admission.counts();
        for (reason, count) in [
            (
                "source_connection_limit",
                &counts.refused_source_connections,
            ),
            ("source_rate_limit", &counts.refused_source_rate),
        ] {
            let _ = writeln!(
                out,
                "sluice_listener_refused_total{{listener=\"{}\",reason=\"{reason}\"}} {}",
                escape(listener),
                count.load(Ordering::Relaxed)
            );
        }
    }
}
