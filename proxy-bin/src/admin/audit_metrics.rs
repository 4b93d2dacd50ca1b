//! The `[audit]` sink: events queued by kind, events dropped because the queue was full, and
//! writes that failed.

use std::fmt;
use std::sync::atomic::Ordering;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use proxy_core::audit::AuditKind;

use super::metrics::{count_with, counter, family};
use super::state::AdminState;

pub(super) fn encode(state: &AdminState, out: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let Some(audit) = &state.audit else {
        return Ok(());
    };
    let mut metric = family(
        out,
        "sluice_audit_events_total",
        "Audit events queued for the sink, by kind.",
        MetricType::Counter,
    )?;
    for (kind, count) in AuditKind::ALL.iter().zip(&audit.events) {
        count_with(
            &mut metric,
            &[("event", kind.label())],
            count.load(Ordering::Relaxed),
        )?;
    }
    counter(
        out,
        "sluice_audit_dropped_total",
        "Audit events dropped because the sink's queue was full (reported as one audit_dropped \
         event once it catches up).",
        audit.dropped.load(Ordering::Relaxed),
    )?;
    counter(
        out,
        "sluice_audit_write_errors_total",
        "Writes to the audit sink that failed.",
        audit.write_errors.load(Ordering::Relaxed),
    )
}
