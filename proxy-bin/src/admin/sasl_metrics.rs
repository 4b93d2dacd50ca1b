//! SASL outcomes on Kafka listeners that inspect or terminate SASL.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use super::metrics::{count_with, family};
use super::state::AdminState;

pub(super) fn encode(state: &AdminState, out: &mut DescriptorEncoder<'_>) -> fmt::Result {
    if state.sasl.is_empty() {
        return Ok(());
    }
    let mut metric = family(
        out,
        "sluice_sasl_authentications_total",
        "SASL authentications by listener, mechanism, phase (initial or reauthentication) and \
         outcome.",
        MetricType::Counter,
    )?;
    for (listener, metrics) in &state.sasl {
        for row in metrics.snapshot() {
            count_with(
                &mut metric,
                &[
                    ("listener", listener.as_str()),
                    ("mechanism", row.mechanism),
                    ("phase", row.phase),
                    ("outcome", row.outcome),
                ],
                row.count,
            )?;
        }
    }
    let mut metric = family(
        out,
        "sluice_sasl_failures_delayed_total",
        "Failed authentications whose answer and close were held back by the failure delay.",
        MetricType::Counter,
    )?;
    for (listener, metrics) in &state.sasl {
        count_with(&mut metric, &[("listener", listener)], metrics.delayed())?;
    }
    let mut metric = family(
        out,
        "sluice_sasl_refused_total",
        "Authentication attempts refused before any credential was checked, by listener and \
         reason (listener_unauthenticated_limit, source_unauthenticated_limit, \
         password_checks_busy).",
        MetricType::Counter,
    )?;
    for (listener, metrics) in &state.sasl {
        for (why, count) in metrics.refused() {
            count_with(
                &mut metric,
                &[("listener", listener.as_str()), ("reason", why.label())],
                count,
            )?;
        }
    }
    Ok(())
}
