//! librdkafka clients of the proxy for the SASL tests: producers and consumers that remember
//! the errors librdkafka reports, and bounded produce, consume and error waits.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::KAFKA_STEP;

/// Remembers the errors librdkafka reports.
#[derive(Default, Clone)]
pub(crate) struct Errors(pub(crate) Arc<Mutex<Vec<String>>>);

impl ClientContext for Errors {
    fn error(&self, error: KafkaError, reason: &str) {
        self.0.lock().push(format!("{error}: {reason}"));
    }
}

impl rdkafka::consumer::ConsumerContext for Errors {}

fn client_config(bootstrap: &str, settings: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "30000");
    for (key, value) in settings {
        config.set(key, value);
    }
    config
}

/// A producer, and the errors librdkafka reports for it.
pub(crate) fn producer(
    bootstrap: &str,
    settings: &[(String, String)],
) -> (FutureProducer<Errors>, Errors) {
    let errors = Errors::default();
    let producer = client_config(bootstrap, settings)
        .create_with_context(errors.clone())
        .unwrap();
    (producer, errors)
}

pub(crate) fn consumer(
    bootstrap: &str,
    group: &str,
    settings: &[(String, String)],
) -> StreamConsumer<Errors> {
    client_config(bootstrap, settings)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .create_with_context(Errors::default())
        .unwrap()
}

pub(crate) async fn produce(
    producer: &FutureProducer<Errors>,
    topic: &str,
    prefix: &str,
    count: usize,
) {
    for i in 0..count {
        let key = format!("{prefix}{i}");
        producer
            .send(FutureRecord::to(topic).key(&key).payload(&key), KAFKA_STEP)
            .await
            .unwrap_or_else(|(err, _)| panic!("{key} not delivered: {err}"));
    }
}

/// Consumes until every key of `keys` was seen (payload equal to key), bounded.
pub(crate) async fn consume(
    consumer: &StreamConsumer<Errors>,
    topic: &str,
    keys: &BTreeSet<String>,
) {
    consumer.subscribe(&[topic]).unwrap();
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + KAFKA_STEP;
    while !keys.is_subset(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, consumer.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "consumed {} of {} from {topic}; client errors: {:?}",
                    seen.len(),
                    keys.len(),
                    consumer.context().0.lock()
                )
            })
            .unwrap();
        let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
        assert_eq!(message.payload(), Some(key.as_bytes()));
        seen.insert(key);
    }
}

pub(crate) fn keys(prefix: &str, count: usize) -> BTreeSet<String> {
    (0..count).map(|i| format!("{prefix}{i}")).collect()
}

/// Waits (bounded) until librdkafka reported an error containing `needle`.
pub(crate) fn wait_client_error(errors: &Errors, needle: &str) -> String {
    let deadline = Instant::now() + KAFKA_STEP;
    loop {
        if let Some(found) = errors.0.lock().iter().find(|e| e.contains(needle)) {
            return found.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no client error with {needle:?}: {:?}",
            errors.0.lock()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
