//! Kafka listeners' authorization: decisions by listener, resource type, operation and outcome
//! (never a principal or a resource name), and what reloads of the rules files came to.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use super::metrics::{count_with, family};
use super::outcomes::Outcome;
use super::state::AdminState;

pub(super) fn encode(state: &AdminState, out: &mut DescriptorEncoder<'_>) -> fmt::Result {
    if state.authorization.is_empty() {
        return Ok(());
    }
    let mut metric = family(
        out,
        "sluice_kafka_authorization_decisions_total",
        "Authorization decisions of Kafka listeners' ACL rules, one per resource a request \
         names, by resource type, operation and outcome (allowed, denied). Filtering answers \
         for what a client may see is not counted.",
        MetricType::Counter,
    )?;
    for (listener, metrics) in &state.authorization {
        for count in metrics.snapshot() {
            count_with(
                &mut metric,
                &[
                    ("listener", listener.as_str()),
                    ("resource", count.resource.label()),
                    ("operation", count.operation.label()),
                    ("outcome", if count.allowed { "allowed" } else { "denied" }),
                ],
                count.count,
            )?;
        }
    }
    let mut metric = family(
        out,
        "sluice_kafka_authorization_reloads_total",
        "ACL rules-file reloads (on change and on SIGHUP), by file and outcome (a failed reload \
         keeps the previous rules).",
        MetricType::Counter,
    )?;
    for (file, reloads) in &state.rules_files {
        let file = file.display().to_string();
        for outcome in [Outcome::Succeeded, Outcome::Failed] {
            count_with(
                &mut metric,
                &[("file", file.as_str()), ("outcome", outcome.label())],
                reloads.get(outcome),
            )?;
        }
    }
    Ok(())
}
