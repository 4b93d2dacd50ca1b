//! Connection limits: the process-wide budget, each listener's open connections and limit,
//! what admission paused or refused, and the admin endpoint's own connections.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::Ordering;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use super::clock::Expiry;
use super::metrics::{count_with, family, gauge, gauge_with};
use super::state::AdminState;

/// The admin endpoint's connections: open, and closed by its timeouts and cap.
pub(super) fn encode_admin(state: &AdminState, out: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let counts = &state.admin_connections;
    gauge(
        out,
        "sluice_admin_connections_open",
        "Connections to the admin endpoint open now.",
        counts.open_count(),
    )?;
    let mut metric = family(
        out,
        "sluice_admin_connections_closed_total",
        "Admin connections the proxy closed, by reason: no complete request head within \
         [admin] header_read_timeout, idle past idle_timeout, or evicted at max_connections.",
        MetricType::Counter,
    )?;
    for expiry in Expiry::ALL {
        count_with(
            &mut metric,
            &[("reason", expiry.label())],
            counts.closed_count(expiry),
        )?;
    }
    Ok(())
}

pub(super) fn encode(state: &AdminState, out: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let budget = &state.budget;
    if let Some(max) = budget.limit() {
        gauge(
            out,
            "sluice_connections_max",
            "Connections all listeners may hold together ([limits] max_connections, or what the \
             descriptor limit holds).",
            max,
        )?;
    }
    gauge(
        out,
        "sluice_connections_open",
        "Client connections holding a slot of the process-wide limit.",
        budget.in_use(),
    )?;
    if state.admissions.is_empty() {
        return Ok(());
    }
    let mut open: BTreeMap<&str, usize> = BTreeMap::new();
    let sessions = state.sessions.snapshot();
    for session in &sessions {
        *open.entry(&session.listener).or_default() += 1;
    }
    let mut metric = family(
        out,
        "sluice_listener_sessions_open",
        "Sessions open now, by listener.",
        MetricType::Gauge,
    )?;
    for (listener, _) in &state.admissions {
        let count = open.get(listener.as_str()).copied().unwrap_or(0);
        gauge_with(&mut metric, &[("listener", listener)], count)?;
    }
    let mut metric = family(
        out,
        "sluice_listener_max_connections",
        "A listener's max_connections (listeners with one).",
        MetricType::Gauge,
    )?;
    for (listener, admission) in &state.admissions {
        if let Some(max) = admission.limits().max_connections {
            gauge_with(&mut metric, &[("listener", listener)], max)?;
        }
    }
    let mut metric = family(
        out,
        "sluice_listener_accept_paused_total",
        "Times a listener stopped accepting because it or the process held its maximum \
         connections (new connections waited in the backlog).",
        MetricType::Counter,
    )?;
    for (listener, admission) in &state.admissions {
        count_with(
            &mut metric,
            &[("listener", listener)],
            admission.counts().accept_paused.load(Ordering::Relaxed),
        )?;
    }
    let mut metric = family(
        out,
        "sluice_listener_refused_total",
        "Connections closed by a listener's per-source limits, by reason.",
        MetricType::Counter,
    )?;
    for (listener, admission) in &state.admissions {
        let counts = admission.counts();
        for (reason, count) in [
            (
                "source_connection_limit",
                &counts.refused_source_connections,
            ),
            ("source_rate_limit", &counts.refused_source_rate),
        ] {
            count_with(
                &mut metric,
                &[("listener", listener.as_str()), ("reason", reason)],
                count.load(Ordering::Relaxed),
            )?;
        }
    }
    Ok(())
}
