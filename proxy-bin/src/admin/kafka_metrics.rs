//! Kafka listeners' per-API-key metrics: requests, bytes each way, and the latency from a
//! request's arrival to its response's departure (a Prometheus histogram).

use std::fmt::Write;

use proxy_kafka::{LATENCY_BUCKETS, api_label};

use super::metrics::{escape, header};
use super::state::AdminState;

pub(super) fn render(state: &AdminState, out: &mut String) {
    if state.kafka.is_empty() {
        return;
    }
    let snapshots: Vec<_> = state
        .kafka
        .iter()
        .map(|(listener, metrics)| (escape(listener), metrics.snapshot()))
        .collect();
    let label = |api_key: Option<i16>| api_key.map_or_else(|| "other".to_owned(), api_label);
    type Pick = fn(&proxy_kafka::ApiSnapshot) -> u64;
    let counters: [(&str, &str, Pick); 3] = [
        (
            "sluice_kafka_requests_total",
            "Kafka requests read from clients, by API.",
            |s| s.requests,
        ),
        (
            "sluice_kafka_request_bytes_total",
            "Bytes of Kafka requests read from clients, by API.",
            |s| s.request_bytes,
        ),
        (
            "sluice_kafka_response_bytes_total",
            "Bytes of Kafka responses read from brokers, by API.",
            |s| s.response_bytes,
        ),
    ];
    for (name, help, pick) in counters {
        header(out, name, help, "counter");
        for (listener, apis) in &snapshots {
            for api in apis {
                let _ = writeln!(
                    out,
                    "{name}{{listener=\"{listener}\",api=\"{}\"}} {}",
                    label(api.api_key),
                    pick(api)
                );
            }
        }
    }
    let name = "sluice_kafka_request_duration_seconds";
    header(
        out,
        name,
        "From a Kafka request's arrival at the proxy to its response's departure to the client.",
        "histogram",
    );
    for (listener, apis) in &snapshots {
        for api in apis {
            let api_name = label(api.api_key);
            let bounds = LATENCY_BUCKETS
                .iter()
                .map(|le| le.to_string())
                .chain(["+Inf".to_owned()]);
            for (le, count) in bounds.zip(&api.latency_cumulative) {
                let _ = writeln!(
                    out,
                    "{name}_bucket{{listener=\"{listener}\",api=\"{api_name}\",le=\"{le}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "{name}_sum{{listener=\"{listener}\",api=\"{api_name}\"}} {}\n\
                 {name}_count{{listener=\"{listener}\",api=\"{api_name}\"}} {}",
                api.latency_sum_seconds, api.latency_count
            );
        }
    }
}
