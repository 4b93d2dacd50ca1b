use std::sync::Arc;

use proxy_backend::BackendConnections;
use proxy_backend::health::{ClusterHealth, Requirement};
use proxy_core::route::RouteId;

use super::*;
use crate::admin::state::Phase;

fn state() -> Arc<AdminState> {
    let state = AdminState::new(
        vec![Arc::new(ClusterHealth::new(
            "we\"ird",
            Requirement::Any,
            ["10.0.0.1:9092".to_owned()],
        ))],
        Default::default(),
        Arc::default(),
        Default::default(),
    )
    .with_backend_connections(Arc::new(BackendConnections::new([
        RouteId::new("main"),
        RouteId::new("we\"ird"),
    ])));
    state.set_phase(Phase::Draining);
    Arc::new(state)
}

#[test]
fn the_exposition_has_a_type_for_every_sample_and_escapes_labels() {
    let text = render(&state(), Format::Prometheus).unwrap();
    for expected in [
        "sluice_lifecycle_phase{phase=\"draining\"} 1",
        "sluice_lifecycle_phase{phase=\"running\"} 0",
        "sluice_backend_reachable{cluster=\"we\\\"ird\"} 0",
        "sluice_backend_up{cluster=\"we\\\"ird\",backend=\"10.0.0.1:9092\"} 0",
        "sluice_ready 0",
        "sluice_sessions_total 0",
        "# TYPE sluice_sessions_total counter",
        "sluice_admin_connections_open 0",
        "sluice_admin_connections_closed_total{reason=\"header_timeout\"} 0",
        // Every configured cluster, before any connection.
        "sluice_backend_connections_total{cluster=\"main\"} 0",
        "sluice_backend_connections_total{cluster=\"we\\\"ird\"} 0",
        "sluice_upgrades_total{outcome=\"failed\"} 0",
        &format!(
            "sluice_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        ),
    ] {
        assert!(text.contains(expected), "no {expected} in\n{text}");
    }
    // Counters keep the one `_total` they are exposed with.
    assert!(!text.contains("_total_total"), "{text}");
    assert!(!text.contains("# EOF"), "{text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        let family = name
            .strip_suffix("_bucket")
            .or_else(|| name.strip_suffix("_sum"))
            .or_else(|| name.strip_suffix("_count"))
            .filter(|family| text.contains(&format!("# TYPE {family} histogram")))
            .unwrap_or(name);
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "no TYPE for {name}"
        );
    }
}

#[test]
fn the_process_is_described_by_its_standard_metrics() {
    let text = render(&state(), Format::Prometheus).unwrap();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
            .parse()
            .unwrap()
    };
    assert!(value("process_resident_memory_bytes") > 0.0);
    assert!(value("process_open_fds") > 0.0);
    assert!(value("process_max_fds") >= value("process_open_fds"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let start = value("process_start_time_seconds");
    // This test process started before now, and not days before.
    assert!(
        start <= now + 1.0 && start > now - 86_400.0,
        "{start} vs {now}"
    );
}

#[test]
fn openmetrics_is_served_when_the_scraper_prefers_it() {
    let state = state();
    // What Prometheus sends by default, and a plain request.
    let prometheus = "application/openmetrics-text;version=1.0.0;q=0.5,\
                      application/openmetrics-text;version=0.0.1;q=0.4,\
                      text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
    assert_eq!(
        Format::negotiate(Some("application/openmetrics-text")),
        Format::OpenMetrics
    );
    assert_eq!(Format::negotiate(None), Format::Prometheus);
    assert_eq!(Format::negotiate(Some("*/*")), Format::Prometheus);
    assert_eq!(
        Format::negotiate(Some("text/plain;version=0.0.4")),
        Format::Prometheus
    );
    assert_eq!(
        Format::negotiate(Some("text/plain;q=0.9, application/openmetrics-text;q=0.5")),
        Format::Prometheus
    );
    assert_eq!(
        Format::negotiate(Some("application/openmetrics-text;q=0")),
        Format::Prometheus
    );
    assert_eq!(
        Format::OpenMetrics.content_type(),
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert_eq!(
        Format::Prometheus.content_type(),
        "text/plain; version=0.0.4; charset=utf-8"
    );

    let text = render(&state, Format::OpenMetrics).unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    // OpenMetrics names a counter's family without `_total`, and its sample with it.
    assert!(text.contains("# TYPE sluice_sessions counter\n"), "{text}");
    assert!(text.contains("\nsluice_sessions_total 0\n"), "{text}");
    assert!(text.contains("# TYPE sluice_build info\n"), "{text}");
    assert!(
        text.contains("sluice_backend_reachable{cluster=\"we\\\"ird\"} 0"),
        "{text}"
    );
}
