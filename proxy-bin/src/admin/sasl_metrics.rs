//! SASL outcomes on Kafka listeners that inspect or terminate SASL.

use std::fmt::Write;

use super::metrics::{escape, header};
use super::state::AdminState;

pub(super) fn render(state: &AdminState, out: &mut String) {
    if state.sasl.is_empty() {
        return;
    }
    let name = "sluice_sasl_authentications_total";
    header(
        out,
        name,
        "SASL authentications by listener, mechanism, phase (initial or reauthentication) and \
         outcome.",
        "counter",
    );
    for (listener, metrics) in &state.sasl {
        let listener = escape(listener);
        for row in metrics.snapshot() {
            let _ = writeln!(
                out,
                "{name}{{listener=\"{listener}\",mechanism=\"{}\",phase=\"{}\",outcome=\"{}\"}} {}",
                row.mechanism, row.phase, row.outcome, row.count
            );
        }
    }
    let name = "sluice_sasl_failures_delayed_total";
    header(
        out,
        name,
        "Failed authentications whose answer and close were held back by the failure delay.",
        "counter",
    );
    for (listener, metrics) in &state.sasl {
        let _ = writeln!(
            out,
            "{name}{{listener=\"{}\"}} {}",
            escape(listener),
            metrics.delayed()
        );
    }
    let name = "sluice_sasl_refused_total";
    header(
        out,
        name,
        "Authentication attempts refused before any credential was checked, by listener and \
         reason (listener_unauthenticated_limit, source_unauthenticated_limit, \
         password_checks_busy).",
        "counter",
    );
    for (listener, metrics) in &state.sasl {
        let listener = escape(listener);
        for (why, count) in metrics.refused() {
            let _ = writeln!(
                out,
                "{name}{{listener=\"{listener}\",reason=\"{}\"}} {count}",
                why.label()
            );
        }
    }
}
