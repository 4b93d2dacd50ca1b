//! Kafka through the real binary: librdkafka clients (the `rdkafka` crate) producing and
//! consuming through Sluice in front of librdkafka's mock cluster of 3 brokers, and raw frames
//! that break the protocol. Every wait is bounded.
//!
//! This file holds what the tests share: a Sluice with a port-per-broker listener, clients of
//! it, and bounded waits for deliveries and close lines.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "helpers of this test file fail the test when the environment misbehaves"
)]

mod frames;
mod roundtrip;
mod streaming;
mod upgrade;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::StreamConsumer;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sluice_tests::kafka_wire::{free_port_block, mock_addrs};
use sluice_tests::process::{Running, SluiceBinary, http_get};

const SLUICE: SluiceBinary = SluiceBinary::new(env!("CARGO_BIN_EXE_sluice"));

/// How long any one Kafka step may take.
const KAFKA_STEP: Duration = Duration::from_secs(60);

/// A Sluice with one port-per-broker Kafka listener in front of `mock`.
struct KafkaProxy {
    sluice: Running,
    bootstrap: u16,
    broker_port_start: u16,
}

impl KafkaProxy {
    fn start(mock: &MockCluster<'_, impl rdkafka::ClientContext>, name: &str, extra: &str) -> Self {
        Self::start_with(mock, name, extra, &[])
    }

    fn start_with(
        mock: &MockCluster<'_, impl rdkafka::ClientContext>,
        name: &str,
        extra: &str,
        args: &[&str],
    ) -> Self {
        let bootstrap = free_port_block(3);
        let broker_port_start = bootstrap + 1;
        let backends: Vec<String> = mock_addrs(mock)
            .iter()
            .map(|addr| format!("\"{addr}\""))
            .collect();
        let config = format!(
            r#"
[admin]
bind = "127.0.0.1:0"

[[listener]]
name = "kafka"
bind = "127.0.0.1:{bootstrap}"
protocol = "kafka"
cluster = "main"
gateway = "port-per-broker"
advertised_host = "127.0.0.1"
broker_port_start = {broker_port_start}
{extra}

[cluster.main]
backends = [{backends}]
"#,
            backends = backends.join(", ")
        );
        let sluice = SLUICE.run_with(&config, name, args, "info");
        sluice.wait_for("sluice started");
        Self {
            sluice,
            bootstrap,
            broker_port_start,
        }
    }

    fn bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.bootstrap)
    }

    /// Every port clients may use: the bootstrap and each broker's.
    fn ports(&self) -> BTreeSet<u16> {
        (0..=3)
            .map(|id| self.broker_port_start + id)
            .chain([self.bootstrap])
            .collect()
    }

    fn metrics(&self) -> String {
        http_get(self.sluice.admin_addr(), "/metrics").1
    }
}

fn producer(proxy: &KafkaProxy, extra: &[(&str, &str)]) -> FutureProducer {
    producer_via(&proxy.bootstrap_servers(), extra)
}

fn producer_via(bootstrap_servers: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap_servers)
        .set("message.timeout.ms", "30000");
    for (key, value) in extra {
        config.set(*key, *value);
    }
    config.create().unwrap()
}

fn consumer(proxy: &KafkaProxy, group: &str, extra: &[(&str, &str)]) -> StreamConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", proxy.bootstrap_servers())
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000");
    for (key, value) in extra {
        config.set(*key, *value);
    }
    config.create().unwrap()
}

/// The close line of the next session that ends with `label`.
fn close_with(proxy: &KafkaProxy, label: &str) -> serde_json::Value {
    for _ in 0..20 {
        let line = proxy.sluice.wait_for("session closed");
        if line["reason.label"] == label {
            return line;
        }
    }
    panic!("no session closed with {label}");
}

/// Sends `count` keyed messages and waits for every delivery report.
async fn produce_all(producer: &FutureProducer, topic: &str, prefix: &str, count: usize) {
    let mut deliveries = Vec::with_capacity(count);
    for i in 0..count {
        let key = format!("{prefix}{i}");
        let record = FutureRecord::to(topic).key(&key).payload(&key);
        deliveries.push(
            producer
                .send_result(record)
                .map_err(|(err, _)| err)
                .unwrap(),
        );
    }
    let deadline = Instant::now() + KAFKA_STEP;
    for delivery in deliveries {
        let left = deadline.saturating_duration_since(Instant::now());
        let result = tokio::time::timeout(left, delivery)
            .await
            .unwrap_or_else(|_| panic!("deliveries did not finish in time"))
            .unwrap();
        assert!(result.is_ok(), "a message was not delivered: {result:?}");
    }
}
