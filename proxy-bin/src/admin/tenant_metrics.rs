//! Kafka `tenant` stages: requests and bytes per tenant, labelled by tenant only for the tenants
//! a stage lists in `tenants` (the rest are `other`), so cardinality is bounded by config.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use proxy_kafka::tenant::TenantCount;

use super::metrics::{count_with, family};
use super::state::AdminState;

/// A metric family: its name, its help, and the count it shows.
type Family = (&'static str, &'static str, fn(&TenantCount) -> u64);

pub(super) fn encode(state: &AdminState, out: &mut DescriptorEncoder<'_>) -> fmt::Result {
    if state.tenants.is_empty() {
        return Ok(());
    }
    let snapshots: Vec<_> = state
        .tenants
        .iter()
        .map(|(listener, metrics)| (listener.as_str(), metrics.snapshot()))
        .collect();
    let families: [Family; 3] = [
        (
            "sluice_kafka_tenant_requests_total",
            "Requests of each tenant's sessions (tenants not listed in the stage's `tenants` \
             count as other).",
            |count| count.requests,
        ),
        (
            "sluice_kafka_tenant_bytes_in_total",
            "Bytes of each tenant's requests.",
            |count| count.bytes_in,
        ),
        (
            "sluice_kafka_tenant_bytes_out_total",
            "Bytes of the answers each tenant's sessions got.",
            |count| count.bytes_out,
        ),
    ];
    for (name, help, value) in families {
        let mut metric = family(out, name, help, MetricType::Counter)?;
        for (listener, counts) in &snapshots {
            for count in counts {
                count_with(
                    &mut metric,
                    &[("listener", *listener), ("tenant", count.tenant.as_str())],
                    value(count),
                )?;
            }
        }
    }
    Ok(())
}
