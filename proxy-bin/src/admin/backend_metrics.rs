//! Backends: what the probes found (per cluster and per backend), the connections the
//! connector opened, and the attempts that failed (a dead first backend while sessions fail
//! over to the next one).

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use super::metrics::{count_with, family, gauge_with};
use super::state::AdminState;

pub(super) fn encode(state: &AdminState, out: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let mut metric = family(
        out,
        "sluice_backend_reachable",
        "Backends that answered the last probe.",
        MetricType::Gauge,
    )?;
    for health in &state.clusters {
        gauge_with(
            &mut metric,
            &[("cluster", health.cluster())],
            health.reachable(),
        )?;
    }
    let mut metric = family(
        out,
        "sluice_backend_up",
        "1 when the backend answered the last probe, per cluster and backend (as configured).",
        MetricType::Gauge,
    )?;
    for health in &state.clusters {
        for (backend, up) in health.backends() {
            gauge_with(
                &mut metric,
                &[("cluster", health.cluster()), ("backend", backend)],
                u32::from(up),
            )?;
        }
    }
    let mut metric = family(
        out,
        "sluice_backend_connections_total",
        "TCP connections opened to a cluster's backends (sessions and broker discovery).",
        MetricType::Counter,
    )?;
    for (cluster, count) in state.backend_connections.snapshot() {
        count_with(&mut metric, &[("cluster", cluster.as_str())], count)?;
    }
    let mut metric = family(
        out,
        "sluice_backend_connect_failures_total",
        "Connection attempts to a backend that failed (no address, refused, timed out), per \
         cluster and backend; the session may still have been served by the next backend.",
        MetricType::Counter,
    )?;
    for ((cluster, backend), count) in state.backend_connections.failures() {
        count_with(
            &mut metric,
            &[("cluster", cluster.as_str()), ("backend", backend.as_str())],
            count,
        )?;
    }
    Ok(())
}
