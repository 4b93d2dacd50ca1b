//! Per-API-key counters of one listener's Kafka traffic: requests, bytes each way, and the
//! latency from a request's arrival at the proxy to its response's departure to the client.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, in seconds (Prometheus `le`).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// API keys below this have a slot each; others share the last one.
const SLOTS: usize = 128;

/// One listener's counters, shared by its sessions' codecs.
#[derive(Debug)]
pub struct KafkaMetrics {
    apis: Box<[ApiCounters]>,
}

#[derive(Debug, Default)]
struct ApiCounters {
    requests: AtomicU64,
    request_bytes: AtomicU64,
    response_bytes: AtomicU64,
    /// Cumulative counts are computed when read; each slot counts its own bucket only.
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_sum_micros: AtomicU64,
    latency_count: AtomicU64,
}

/// What one API key's counters held when read.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiSnapshot {
    /// The API key (`None` for keys beyond the table, counted together).
    pub api_key: Option<i16>,
    /// Requests read from clients.
    pub requests: u64,
    /// Bytes of those requests, length prefixes included.
    pub request_bytes: u64,
    /// Bytes of responses read from the backend.
    pub response_bytes: u64,
    /// Cumulative latency counts per bucket of [`LATENCY_BUCKETS`], then `+Inf`.
    pub latency_cumulative: Vec<u64>,
    /// Sum of latencies, in seconds.
    pub latency_sum_seconds: f64,
    /// Responses delivered (the histogram's count).
    pub latency_count: u64,
}

impl Default for KafkaMetrics {
    fn default() -> Self {
        Self {
            apis: (0..SLOTS).map(|_| ApiCounters::default()).collect(),
        }
    }
}

impl KafkaMetrics {
    fn slot(&self, api_key: i16) -> &ApiCounters {
        let index = usize::try_from(api_key)
            .ok()
            .filter(|&i| i < SLOTS - 1)
            .unwrap_or(SLOTS - 1);
        &self.apis[index]
    }

    pub(crate) fn record_request(&self, api_key: i16, bytes: usize) {
        let slot = self.slot(api_key);
        slot.requests.fetch_add(1, Ordering::Relaxed);
        slot.request_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn record_response_bytes(&self, api_key: i16, bytes: usize) {
        self.slot(api_key)
            .response_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn record_latency(&self, api_key: i16, latency: Duration) {
        let slot = self.slot(api_key);
        let seconds = latency.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(LATENCY_BUCKETS.len());
        slot.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        slot.latency_sum_micros
            .fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
        slot.latency_count.fetch_add(1, Ordering::Relaxed);
    }

    /// The API keys that have seen a request, in key order.
    pub fn snapshot(&self) -> Vec<ApiSnapshot> {
        self.apis
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.requests.load(Ordering::Relaxed) > 0)
            .map(|(index, slot)| {
                let mut running = 0;
                let latency_cumulative = slot
                    .latency_buckets
                    .iter()
                    .map(|count| {
                        running += count.load(Ordering::Relaxed);
                        running
                    })
                    .collect();
                ApiSnapshot {
                    api_key: (index < SLOTS - 1).then_some(index as i16),
                    requests: slot.requests.load(Ordering::Relaxed),
                    request_bytes: slot.request_bytes.load(Ordering::Relaxed),
                    response_bytes: slot.response_bytes.load(Ordering::Relaxed),
                    latency_cumulative,
                    latency_sum_seconds: slot.latency_sum_micros.load(Ordering::Relaxed) as f64
                        / 1e6,
                    latency_count: slot.latency_count.load(Ordering::Relaxed),
                }
            })
            .collect()
    }
}
