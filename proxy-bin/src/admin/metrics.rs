//! `/metrics` in the Prometheus text exposition format (version 0.0.4).
//!
//! Every value is read at scrape time from counters the library crates already keep (close
//! counts, live resources, the session registry, probe results), so there is no second copy
//! of the state to keep in step; the format itself is a few lines per metric.

use std::fmt::Write;

use proxy_core::PauseReason;
use proxy_core::context::Resource;

use super::state::{AdminState, Phase};

pub(super) fn render(state: &AdminState) -> String {
    let mut out = String::with_capacity(2048);
    let live = &state.live;
    gauge(
        &mut out,
        "sluice_sessions_active",
        "Sessions open now.",
        live.live(Resource::Session) as u64,
    );
    counter(
        &mut out,
        "sluice_sessions_total",
        "Sessions accepted since start.",
        live.sessions_total(),
    );
    header(
        &mut out,
        "sluice_session_closes_total",
        "Sessions closed, by reason.",
        "counter",
    );
    for (reason, count) in state.closes.snapshot() {
        let _ = writeln!(
            out,
            "sluice_session_closes_total{{reason=\"{}\"}} {count}",
            escape(reason)
        );
    }
    header(
        &mut out,
        "sluice_lifecycle_phase",
        "1 for the phase the process is in.",
        "gauge",
    );
    let current = state.phase();
    for phase in Phase::ALL {
        let value = u8::from(phase == current);
        let _ = writeln!(
            out,
            "sluice_lifecycle_phase{{phase=\"{}\"}} {value}",
            phase.label()
        );
    }
    gauge(
        &mut out,
        "sluice_proxy_headers_live",
        "Parsed PROXY headers held by sessions.",
        live.live(Resource::ProxyHeader) as u64,
    );
    let snapshots: Vec<_> = state
        .sessions
        .snapshot()
        .iter()
        .map(|s| s.stats.snapshot())
        .collect();
    let buffered: u64 = snapshots
        .iter()
        .map(|stats| (stats.buffered_to_client + stats.buffered_to_backend) as u64)
        .sum();
    gauge(
        &mut out,
        "sluice_buffered_bytes",
        "Bytes queued inside the proxy, all sessions.",
        buffered,
    );
    header(
        &mut out,
        "sluice_sessions_paused",
        "Sessions with a side whose reads are paused now, by reason.",
        "gauge",
    );
    for reason in PauseReason::ALL {
        let paused = snapshots
            .iter()
            .filter(|stats| {
                stats.client_gate.is_paused_for(reason) || stats.backend_gate.is_paused_for(reason)
            })
            .count();
        let _ = writeln!(
            out,
            "sluice_sessions_paused{{reason=\"{}\"}} {paused}",
            reason.label()
        );
    }
    header(
        &mut out,
        "sluice_backend_reachable",
        "Backends that answered the last probe.",
        "gauge",
    );
    for health in &state.clusters {
        let _ = writeln!(
            out,
            "sluice_backend_reachable{{cluster=\"{}\"}} {}",
            escape(health.cluster()),
            health.reachable()
        );
    }
    header(
        &mut out,
        "sluice_backend_connections_total",
        "TCP connections opened to a cluster's backends (sessions and broker discovery).",
        "counter",
    );
    for (cluster, count) in state.backend_connections.snapshot() {
        let _ = writeln!(
            out,
            "sluice_backend_connections_total{{cluster=\"{}\"}} {count}",
            escape(cluster.as_str())
        );
    }
    super::limits_metrics::render(state, &mut out);
    super::limits_metrics::render_admin(state, &mut out);
    super::kafka_metrics::render(state, &mut out);
    super::sasl_metrics::render(state, &mut out);
    super::frame_metrics::render(state, &mut out);
    let ready = u8::from(state.readiness().is_ok());
    gauge(
        &mut out,
        "sluice_ready",
        "1 when /readyz answers 200.",
        u64::from(ready),
    );
    out
}

pub(super) fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, help, "gauge");
    let _ = writeln!(out, "{name} {value}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, help, "counter");
    let _ = writeln!(out, "{name} {value}");
}

/// Label values escape backslash, double quote and newline.
pub(super) fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proxy_backend::BackendConnections;
    use proxy_backend::health::{ClusterHealth, Requirement};
    use proxy_core::route::RouteId;

    use super::*;

    #[test]
    fn the_exposition_has_a_type_for_every_sample_and_escapes_labels() {
        let state = AdminState::new(
            vec![Arc::new(ClusterHealth::new("we\"ird", Requirement::Any, 1))],
            Default::default(),
            Arc::default(),
            Default::default(),
        )
        .with_backend_connections(Arc::new(BackendConnections::new([
            RouteId::new("main"),
            RouteId::new("we\"ird"),
        ])));
        state.set_phase(Phase::Draining);
        let text = render(&state);
        assert!(
            text.contains("sluice_lifecycle_phase{phase=\"draining\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("sluice_lifecycle_phase{phase=\"running\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("sluice_backend_reachable{cluster=\"we\\\"ird\"} 0"),
            "{text}"
        );
        assert!(text.contains("sluice_ready 0"), "{text}");
        assert!(text.contains("sluice_admin_connections_open 0"), "{text}");
        assert!(
            text.contains("sluice_admin_connections_closed_total{reason=\"header_timeout\"} 0"),
            "{text}"
        );
        // Every configured cluster, before any connection.
        assert!(
            text.contains("sluice_backend_connections_total{cluster=\"main\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("sluice_backend_connections_total{cluster=\"we\\\"ird\"} 0"),
            "{text}"
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "no TYPE for {name}"
            );
        }
    }
}
