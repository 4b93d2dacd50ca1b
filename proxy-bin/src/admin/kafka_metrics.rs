//! Kafka listeners' per-API-key metrics: requests, bytes each way, and the latency from a
//! request's arrival to its response's departure (a Prometheus histogram); and the brokers
//! each listener knows of each cluster it routes to.

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use proxy_kafka::{ApiSnapshot, LATENCY_BUCKETS, api_label};

use super::metrics::{count_with, family, gauge_with, own_buckets};
use super::state::AdminState;

pub(super) fn encode(state: &AdminState, out: &mut DescriptorEncoder<'_>) -> fmt::Result {
    brokers(state, out)?;
    if state.kafka.is_empty() {
        return Ok(());
    }
    let snapshots: Vec<_> = state
        .kafka
        .iter()
        .map(|(listener, metrics)| (listener.as_str(), metrics.snapshot()))
        .collect();
    let label = |api_key: Option<i16>| api_key.map_or_else(|| "other".to_owned(), api_label);
    type Pick = fn(&ApiSnapshot) -> u64;
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
        let mut metric = family(out, name, help, MetricType::Counter)?;
        for (listener, apis) in &snapshots {
            for api in apis {
                let api_name = label(api.api_key);
                count_with(
                    &mut metric,
                    &[("listener", *listener), ("api", api_name.as_str())],
                    pick(api),
                )?;
            }
        }
    }
    let mut metric = family(
        out,
        "sluice_kafka_request_duration_seconds",
        "From a Kafka request's arrival at the proxy to its response's departure to the client.",
        MetricType::Histogram,
    )?;
    for (listener, apis) in &snapshots {
        for api in apis {
            let api_name = label(api.api_key);
            let buckets = own_buckets(&LATENCY_BUCKETS, &api.latency_cumulative);
            metric
                .encode_family(&[("listener", *listener), ("api", api_name.as_str())])?
                .encode_histogram::<NoLabelSet>(
                    api.latency_sum_seconds,
                    api.latency_count,
                    &buckets,
                    None,
                )?;
        }
    }
    Ok(())
}

/// The brokers each Kafka listener knows of each cluster it routes to (0 before discovery).
fn brokers(state: &AdminState, out: &mut DescriptorEncoder<'_>) -> fmt::Result {
    if state.kafka_discovery().is_empty() {
        return Ok(());
    }
    let mut metric = family(
        out,
        "sluice_kafka_brokers",
        "Brokers a Kafka listener knows of a cluster it routes to, as the cluster's latest \
         Metadata reported them.",
        MetricType::Gauge,
    )?;
    for discovery in state.kafka_discovery() {
        for route in &discovery.routes {
            gauge_with(
                &mut metric,
                &[
                    ("listener", &*discovery.listener),
                    ("cluster", route.as_str()),
                ],
                discovery.brokers.reported_brokers(route),
            )?;
        }
    }
    Ok(())
}
