//! The frame budgets: bytes reserved for Kafka frames being assembled, each budget's limit,
//! and how often a session had to wait for room.
//!
//! The process's budget is the sample without a `listener` label, each Kafka listener's the
//! sample with its name (as before the move to `prometheus-client`).

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder};
use prometheus_client::metrics::MetricType;
use proxy_core::forward::FrameBudget;

use super::metrics::{count, family};
use super::state::AdminState;

pub(super) fn encode(state: &AdminState, out: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let Some(budgets) = &state.frame_budgets else {
        return Ok(());
    };
    let rows: Vec<(Option<&str>, &FrameBudget)> = std::iter::once((None, &budgets.process))
        .chain(
            budgets
                .listeners
                .iter()
                .map(|(name, budget)| (Some(name.as_str()), budget)),
        )
        .collect();
    let mut metric = family(
        out,
        "sluice_frame_budget_used_bytes",
        "Bytes reserved for frames larger than one read while they are assembled; without a \
         listener label, all listeners together ([limits] frame_budget).",
        MetricType::Gauge,
    )?;
    for (listener, budget) in &rows {
        sample(&mut metric, *listener, |m| m.encode_gauge(&budget.used()))?;
    }
    let mut metric = family(
        out,
        "sluice_frame_budget_limit_bytes",
        "The most bytes frames being assembled may hold (frame_budget).",
        MetricType::Gauge,
    )?;
    for (listener, budget) in &rows {
        sample(&mut metric, *listener, |m| m.encode_gauge(&budget.limit()))?;
    }
    let mut metric = family(
        out,
        "sluice_frame_budget_waits_total",
        "Times a session paused reading because its frame did not fit the budget.",
        MetricType::Counter,
    )?;
    for (listener, budget) in &rows {
        sample(&mut metric, *listener, |m| count(m, budget.waits()))?;
    }
    Ok(())
}

/// One sample of `metric`, labelled with `listener` when there is one.
fn sample(
    metric: &mut MetricEncoder<'_>,
    listener: Option<&str>,
    value: impl FnOnce(&mut MetricEncoder<'_>) -> fmt::Result,
) -> fmt::Result {
    match listener {
        None => value(metric),
        Some(name) => value(&mut metric.encode_family(&[("listener", name)])?),
    }
}
