//! TLS-terminating listeners: failed client handshakes, and when each served certificate
//! expires.
//!
//! A client handshake that fails or times out closes its session as `tls_handshake_failed`,
//! and nothing else does: the failures per listener are those closes, listed from 0 for every
//! listener that terminates TLS.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use super::metrics::{count_with, family, gauge_with};
use super::state::AdminState;

/// The close reason of a failed client handshake.
const HANDSHAKE_FAILED: &str = "tls_handshake_failed";

pub(super) fn encode(state: &AdminState, out: &mut DescriptorEncoder<'_>) -> fmt::Result {
    if state.tls.is_empty() {
        return Ok(());
    }
    let closes = state.closes.by_listener();
    let mut metric = family(
        out,
        "sluice_tls_handshake_failures_total",
        "Client TLS handshakes that failed or timed out, by listener (sessions closed as \
         tls_handshake_failed).",
        MetricType::Counter,
    )?;
    for tls in &state.tls {
        let failed = closes
            .iter()
            .find(|((listener, reason), _)| {
                **listener == *tls.listener && *reason == HANDSHAKE_FAILED
            })
            .map_or(0, |(_, count)| *count);
        count_with(&mut metric, &[("listener", &tls.listener)], failed)?;
    }
    let mut metric = family(
        out,
        "sluice_tls_certificate_expiry_seconds",
        "When a served certificate expires (its not-after, seconds since the Unix epoch), by \
         listener, the server names it is served for (default: no SNI match) and its file.",
        MetricType::Gauge,
    )?;
    for tls in &state.tls {
        for expiry in tls.config.expiry() {
            let Some(not_after) = expiry.not_after else {
                continue;
            };
            let names = if expiry.server_names.is_empty() {
                "default".to_owned()
            } else {
                expiry.server_names.join(",")
            };
            let file = expiry.cert.display().to_string();
            gauge_with(
                &mut metric,
                &[
                    ("listener", tls.listener.as_str()),
                    ("server_names", names.as_str()),
                    ("file", file.as_str()),
                ],
                i64::try_from(not_after).unwrap_or(i64::MAX),
            )?;
        }
    }
    Ok(())
}
