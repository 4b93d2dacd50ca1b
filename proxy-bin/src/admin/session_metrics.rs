//! Sessions: open and accepted, closed by reason, bytes, what holds memory and what is paused,
//! in all and per listener; and the process's lifecycle phase.
//!
//! The unlabelled aggregates (`sluice_sessions_total`, `sluice_session_closes_total{reason}`)
//! stay as they were; the per-listener series are families of their own
//! (`sluice_listener_sessions_total{listener}`, `sluice_listener_session_closes_total{listener,
//! reason}`), so that summing a family never counts a session twice.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use proxy_core::PauseReason;
use proxy_core::context::Resource;

use super::metrics::{count_with, counter, family, gauge, gauge_with};
use super::state::{AdminState, Phase};

pub(super) fn encode(state: &AdminState, out: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let live = &state.live;
    gauge(
        out,
        "sluice_sessions_active",
        "Sessions open now.",
        live.live(Resource::Session),
    )?;
    counter(
        out,
        "sluice_sessions_total",
        "Sessions accepted since start.",
        live.sessions_total(),
    )?;
    let mut metric = family(
        out,
        "sluice_session_closes_total",
        "Sessions closed, by reason.",
        MetricType::Counter,
    )?;
    for (reason, count) in state.closes.snapshot() {
        count_with(&mut metric, &[("reason", reason)], count)?;
    }
    per_listener(state, out)?;
    let mut metric = family(
        out,
        "sluice_lifecycle_phase",
        "1 for the phase the process is in.",
        MetricType::Gauge,
    )?;
    let current = state.phase();
    for phase in Phase::ALL {
        gauge_with(
            &mut metric,
            &[("phase", phase.label())],
            u32::from(phase == current),
        )?;
    }
    gauge(
        out,
        "sluice_proxy_headers_live",
        "Parsed PROXY headers held by sessions.",
        live.live(Resource::ProxyHeader),
    )?;
    let snapshots: Vec<_> = state
        .sessions
        .snapshot()
        .iter()
        .map(|s| s.stats.snapshot())
        .collect();
    let buffered: usize = snapshots
        .iter()
        .map(|stats| stats.buffered_to_client + stats.buffered_to_backend)
        .sum();
    gauge(
        out,
        "sluice_buffered_bytes",
        "Bytes queued inside the proxy, all sessions.",
        buffered,
    )?;
    let mut metric = family(
        out,
        "sluice_sessions_paused",
        "Sessions with a side whose reads are paused now, by reason.",
        MetricType::Gauge,
    )?;
    for reason in PauseReason::ALL {
        let paused = snapshots
            .iter()
            .filter(|stats| {
                stats.client_gate.is_paused_for(reason) || stats.backend_gate.is_paused_for(reason)
            })
            .count();
        gauge_with(&mut metric, &[("reason", reason.label())], paused)?;
    }
    let mut metric = family(
        out,
        "sluice_read_paused_seconds_total",
        "Time sessions' sides spent with reads paused, by reason, summed over sessions and sides \
         (a pause is counted when it ends or changes).",
        MetricType::Counter,
    )?;
    for reason in PauseReason::ALL {
        let seconds = live.paused(reason).as_secs_f64();
        metric
            .encode_family(&[("reason", reason.label())])?
            .encode_counter::<prometheus_client::encoding::NoLabelSet, _, f64>(&seconds, None)?;
    }
    Ok(())
}

/// Sessions accepted, closed by reason, and bytes each way, per listener: every listener is
/// listed from 0.
fn per_listener(state: &AdminState, out: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let totals = state.sessions.totals();
    let listeners = state.listener_names();
    let total = |listener: &str| totals.get(listener).copied().unwrap_or_default();
    let mut metric = family(
        out,
        "sluice_listener_sessions_total",
        "Sessions accepted since start, by listener.",
        MetricType::Counter,
    )?;
    for listener in &listeners {
        count_with(
            &mut metric,
            &[("listener", listener)],
            total(listener).sessions,
        )?;
    }
    let mut metric = family(
        out,
        "sluice_listener_session_closes_total",
        "Sessions closed, by listener and reason.",
        MetricType::Counter,
    )?;
    for ((listener, reason), count) in state.closes.by_listener() {
        count_with(
            &mut metric,
            &[("listener", &*listener), ("reason", reason)],
            count,
        )?;
    }
    let mut metric = family(
        out,
        "sluice_bytes_total",
        "Bytes read from clients (direction from_client) and from backends (from_backend), by \
         listener; open sessions included.",
        MetricType::Counter,
    )?;
    for listener in &listeners {
        let total = total(listener);
        for (direction, bytes) in [
            ("from_client", total.bytes_from_client),
            ("from_backend", total.bytes_from_backend),
        ] {
            count_with(
                &mut metric,
                &[("listener", listener.as_str()), ("direction", direction)],
                bytes,
            )?;
        }
    }
    Ok(())
}
