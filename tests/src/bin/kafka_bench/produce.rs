//! The produce measurement: librdkafka's producer sends a fixed number of messages
//! round-robin over the partitions and waits for every delivery report.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

use crate::Cli;
use crate::meter::{Meter, Moved};

/// Counts delivery reports; keeps the first failure's text.
#[derive(Debug, Default)]
struct Deliveries {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: OnceLock<String>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err((err, _)) => {
                let _ = self.first_error.set(err.to_string());
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// Produces `messages` messages round-robin over the partitions and waits for every delivery
/// report. Timed from the first send to the last report; the producer's metadata (and so its
/// bootstrap connection) is fetched before.
pub(crate) fn produce(
    cli: &Cli,
    bootstrap: &str,
    topic: &str,
    messages: u64,
    sluice: u32,
    step: Duration,
) -> anyhow::Result<Moved> {
    let deadline = Instant::now() + step;
    let producer: BaseProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", &cli.acks)
        .set("linger.ms", "5")
        .set("message.timeout.ms", step.as_millis().to_string())
        .create_with_context(Deliveries::default())?;
    producer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let payload = vec![0x5a_u8; cli.size];
    let meter = Meter::start(sluice)?;
    for i in 0..messages {
        let partition = (i % cli.partitions as u64) as i32;
        let mut record = BaseRecord::<(), [u8]>::to(topic)
            .payload(&payload[..])
            .partition(partition);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    ensure!(
                        Instant::now() < deadline,
                        "queued only {i} of {} messages in time",
                        messages
                    );
                    record = back;
                    producer.poll(Duration::from_millis(5));
                }
                Err((err, _)) => return Err(err.into()),
            }
        }
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(deadline.saturating_duration_since(Instant::now()))
        .context("not every message was delivered in time")?;
    let delivered = producer.context().delivered.load(Ordering::Relaxed);
    let moved = meter.stop(delivered, delivered * cli.size as u64)?;
    let failed = producer.context().failed.load(Ordering::Relaxed);
    let first_error = producer
        .context()
        .first_error
        .get()
        .map_or("?", String::as_str);
    ensure!(
        failed == 0,
        "{failed} message(s) failed, the first: {first_error}"
    );
    ensure!(
        delivered == messages,
        "{delivered} of {} messages delivered",
        messages
    );
    Ok(moved)
}
