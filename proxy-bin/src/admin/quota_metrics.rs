//! Kafka `quota` stages: bytes and requests counted against their limits, the throttle times
//! they imposed (a histogram), and their entity tables, by listener, quota and what an entity
//! is (`per`); entities have labels of their own only when named in `metrics_entities`.

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use proxy_kafka::quota::{QuotaKind, QuotaSnapshot, THROTTLE_BUCKETS};

use super::metrics::{count_with, family, gauge_with, own_buckets};
use super::state::AdminState;

pub(super) fn encode(state: &AdminState, out: &mut DescriptorEncoder<'_>) -> fmt::Result {
    if state.quotas.is_empty() {
        return Ok(());
    }
    let snapshots: Vec<(&str, QuotaSnapshot)> = state
        .quotas
        .iter()
        .map(|(listener, metrics)| (listener.as_str(), metrics.snapshot()))
        .collect();
    let mut metric = family(
        out,
        "sluice_kafka_quota_bytes_total",
        "Bytes counted against quota stages' byte limits: Produce request bytes (quota=produce), \
         Fetch response bytes (quota=fetch).",
        MetricType::Counter,
    )?;
    for (listener, snapshot) in &snapshots {
        for entity in &snapshot.entities {
            for (quota, bytes) in [
                (QuotaKind::Produce, entity.produce_bytes),
                (QuotaKind::Fetch, entity.fetch_bytes),
            ] {
                count_with(
                    &mut metric,
                    &[
                        ("listener", *listener),
                        ("quota", quota.label()),
                        ("per", snapshot.per),
                        ("entity", entity.entity.as_str()),
                    ],
                    bytes,
                )?;
            }
        }
    }
    let mut metric = family(
        out,
        "sluice_kafka_quota_requests_total",
        "Requests counted by quota stages.",
        MetricType::Counter,
    )?;
    for (listener, snapshot) in &snapshots {
        for entity in &snapshot.entities {
            count_with(
                &mut metric,
                &[
                    ("listener", *listener),
                    ("per", snapshot.per),
                    ("entity", entity.entity.as_str()),
                ],
                entity.requests,
            )?;
        }
    }
    let mut metric = family(
        out,
        "sluice_kafka_quota_throttle_seconds",
        "Throttle times quota stages imposed (in throttle_time_ms and as a hold on the client's \
         reads), by the quota that imposed them.",
        MetricType::Histogram,
    )?;
    for (listener, snapshot) in &snapshots {
        for entity in &snapshot.entities {
            for throttle in &entity.throttles {
                let buckets = own_buckets(&THROTTLE_BUCKETS, &throttle.cumulative);
                metric
                    .encode_family(&[
                        ("listener", *listener),
                        ("quota", throttle.quota.label()),
                        ("per", snapshot.per),
                        ("entity", entity.entity.as_str()),
                    ])?
                    .encode_histogram::<NoLabelSet>(
                        throttle.sum_seconds,
                        throttle.count,
                        &buckets,
                        None,
                    )?;
            }
        }
    }
    let mut metric = family(
        out,
        "sluice_kafka_quota_entities",
        "Entities a quota stage tracks now (bounded by its max_entities).",
        MetricType::Gauge,
    )?;
    for (listener, snapshot) in &snapshots {
        gauge_with(
            &mut metric,
            &[("listener", *listener), ("per", snapshot.per)],
            snapshot.tracked,
        )?;
    }
    let mut metric = family(
        out,
        "sluice_kafka_quota_entities_refused_total",
        "New entities a full quota stage could not track: they share one overflow entity.",
        MetricType::Counter,
    )?;
    for (listener, snapshot) in &snapshots {
        count_with(
            &mut metric,
            &[("listener", *listener), ("per", snapshot.per)],
            snapshot.refused,
        )?;
    }
    Ok(())
}
