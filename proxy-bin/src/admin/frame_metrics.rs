//! The frame budgets: bytes reserved for Kafka frames being assembled, each budget's limit,
//! and how often a session had to wait for room.

use std::fmt::Write;

use proxy_core::forward::FrameBudget;

use super::metrics::{escape, header};
use super::state::AdminState;

pub(super) fn render(state: &AdminState, out: &mut String) {
    let Some(budgets) = &state.frame_budgets else {
        return;
    };
    let rows: Vec<(Option<&str>, &FrameBudget)> = std::iter::once((None, &budgets.process))
        .chain(
            budgets
                .listeners
                .iter()
                .map(|(name, budget)| (Some(name.as_str()), budget)),
        )
        .collect();
    header(
        out,
        "sluice_frame_budget_used_bytes",
        "Bytes reserved for frames larger than one read while they are assembled; without a \
         listener label, all listeners together ([limits] frame_budget).",
        "gauge",
    );
    for (listener, budget) in &rows {
        let _ = writeln!(
            out,
            "sluice_frame_budget_used_bytes{} {}",
            labels(*listener),
            budget.used()
        );
    }
    header(
        out,
        "sluice_frame_budget_limit_bytes",
        "The most bytes frames being assembled may hold (frame_budget).",
        "gauge",
    );
    for (listener, budget) in &rows {
        let _ = writeln!(
            out,
            "sluice_frame_budget_limit_bytes{} {}",
            labels(*listener),
            budget.limit()
        );
    }
    header(
        out,
        "sluice_frame_budget_waits_total",
        "Times a session paused reading because its frame did not fit the budget.",
        "counter",
    );
    for (listener, budget) in &rows {
        let _ = writeln!(
            out,
            "sluice_frame_budget_waits_total{} {}",
            labels(*listener),
            budget.waits()
        );
    }
}

fn labels(listener: Option<&str>) -> String {
    listener.map_or_else(String::new, |name| {
        format!("{{listener=\"{}\"}}", escape(name))
    })
}
