//! The consume measurement: librdkafka's consumer reads back everything the topic's
//! partitions hold, from the low to the high watermark, in `--consume-passes` passes.

use std::time::{Duration, Instant};

use anyhow::ensure;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::Cli;
use crate::meter::{Meter, Moved};

/// Reads every message the topic holds, `--consume-passes` times, each time with a new consumer
/// assigned every partition from the beginning (no consumer group). Each pass is timed from the
/// assignment to the last message; the consumer's metadata is fetched before.
pub(crate) fn consume(
    cli: &Cli,
    bootstrap: &str,
    topic: &str,
    sluice: u32,
    step: Duration,
) -> anyhow::Result<Moved> {
    let deadline = Instant::now() + step;
    let mut total = Moved::default();
    for _ in 0..cli.consume_passes {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            // Required by librdkafka even for an assignment; the group is never joined.
            .set("group.id", "kafka-bench")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // librdkafka's defaults stall a fast consumer: a partition whose local queue is
            // over its threshold is not fetched again for `fetch.queue.backoff.ms` (1 s), and a
            // fetch left with only partitions at their end waits `fetch.wait.max.ms` (500 ms)
            // at the mock. Direct runs hit this now and then (a pass stalled for 1 s), runs
            // through Sluice rarely: the benchmark would measure the backoff, not the path.
            .set("fetch.queue.backoff.ms", "10")
            .set("fetch.wait.max.ms", "10")
            .create()?;
        consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let mut partitions = TopicPartitionList::new();
        let mut expected = 0_u64;
        for partition in 0..cli.partitions {
            let (low, high) =
                consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
            expected += u64::try_from(high - low)?;
            partitions.add_partition_offset(topic, partition, Offset::Beginning)?;
        }
        let meter = Meter::start(sluice)?;
        consumer.assign(&partitions)?;
        let (mut messages, mut bytes) = (0_u64, 0_u64);
        while messages < expected {
            ensure!(
                Instant::now() < deadline,
                "consumed only {messages} of {expected} messages in time"
            );
            match consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(message)) => {
                    messages += 1;
                    bytes += message.payload_len() as u64;
                }
                Some(Err(err)) => return Err(err.into()),
            }
        }
        total.add(meter.stop(messages, bytes)?);
        ensure!(
            bytes == messages * cli.size as u64,
            "consumed {bytes} bytes in {messages} messages of {} B",
            cli.size
        );
    }
    Ok(total)
}
