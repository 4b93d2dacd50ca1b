//! What reloads and upgrades came to: certificates per listener, users files, and upgrades
//! (SIGUSR2 and SIGHUP alike).
//!
//! An upgrade that succeeds is counted by the process that hands over, whose `/metrics` is
//! scraped only while it drains; its successor starts from 0.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use super::metrics::{count_with, family};
use super::outcomes::Outcome;
use super::state::AdminState;

pub(super) fn encode(state: &AdminState, out: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let mut metric = family(
        out,
        "sluice_upgrades_total",
        "Upgrades and reloads (SIGUSR2, SIGHUP; in place or through a successor), by outcome: succeeded \
         (handed over), failed (the successor did not become ready; still serving), refused \
         (another was under way).",
        MetricType::Counter,
    )?;
    for outcome in Outcome::ALL {
        count_with(
            &mut metric,
            &[("outcome", outcome.label())],
            state.upgrades.get(outcome),
        )?;
    }
    if !state.tls.is_empty() {
        let mut metric = family(
            out,
            "sluice_tls_reloads_total",
            "Certificate reloads after their files changed, by listener and outcome (a failed \
             reload keeps the previous certificates; counted once per distinct error).",
            MetricType::Counter,
        )?;
        for tls in &state.tls {
            for outcome in [Outcome::Succeeded, Outcome::Failed] {
                count_with(
                    &mut metric,
                    &[
                        ("listener", tls.listener.as_str()),
                        ("outcome", outcome.label()),
                    ],
                    tls.reloads.get(outcome),
                )?;
            }
        }
    }
    if !state.users_files.is_empty() {
        let mut metric = family(
            out,
            "sluice_users_reloads_total",
            "Users-file reloads after the file changed, by file and outcome (a failed reload \
             keeps the previous users).",
            MetricType::Counter,
        )?;
        for (file, reloads) in &state.users_files {
            let file = file.display().to_string();
            for outcome in [Outcome::Succeeded, Outcome::Failed] {
                count_with(
                    &mut metric,
                    &[("file", file.as_str()), ("outcome", outcome.label())],
                    reloads.get(outcome),
                )?;
            }
        }
    }
    Ok(())
}
