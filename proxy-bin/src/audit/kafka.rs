//! The audit stream's Kafka sink: each batch of lines produced as one record batch to a topic
//! partition's leader, through Sluice's own client and the `[cluster.NAME]` table's settings
//! (its backends, TLS and SASL). It runs on the writer thread, on a runtime of its own, so a
//! slow or absent cluster never touches the data path: a batch that cannot be delivered is
//! dropped and counted, and attempts pause for a growing backoff (1 s to 10 s) until the
//! cluster answers again.

use std::time::{Duration, Instant};

use bytes::Bytes;
use proxy_backend::{BackendIo, Connector};
use proxy_core::route::RouteId;
use proxy_core::upstream::{Connect, ConnectRequest, Requester};
use proxy_core::value::BackendAddr;
use tokio::runtime::Runtime;

/// How long one delivery (connect, find the leader, produce) may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The sink's connection and its backoff.
pub(super) struct KafkaSink {
    runtime: Runtime,
    connector: Connector,
    route: RouteId,
    topic: String,
    partition: i32,
    /// The connection to the partition's leader, while it works.
    leader: Option<BackendIo>,
    /// No attempt before this, after a failure.
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl KafkaSink {
    pub(super) fn new(
        connector: Connector,
        cluster: &str,
        topic: &str,
        partition: i32,
    ) -> std::io::Result<Self> {
        Ok(Self {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            connector,
            route: RouteId::new(cluster),
            topic: topic.to_owned(),
            partition,
            leader: None,
            retry_at: None,
            backoff: FIRST_BACKOFF,
        })
    }

    /// Delivers `lines` as one batch; `Err` with why not (the batch is then lost).
    pub(super) fn send(&mut self, lines: &[String]) -> Result<(), String> {
        if self.retry_at.is_some_and(|at| Instant::now() < at) {
            return Err("the audit cluster failed recently; retrying after a backoff".into());
        }
        let values: Vec<Bytes> = lines
            .iter()
            .map(|line| Bytes::copy_from_slice(line.as_bytes()))
            .collect();
        let leader = self.leader.take();
        let reused = leader.is_some();
        let mut delivered = self.runtime.block_on(deliver(
            &self.connector,
            &self.route,
            &self.topic,
            self.partition,
            leader,
            &values,
        ));
        if delivered.is_err() && reused {
            // The kept connection may have gone stale (the leader moved, the broker restarted):
            // once more on a new one before the batch is given up.
            delivered = self.runtime.block_on(deliver(
                &self.connector,
                &self.route,
                &self.topic,
                self.partition,
                None,
                &values,
            ));
        }
        match delivered {
            Ok(leader) => {
                self.leader = Some(leader);
                self.retry_at = None;
                self.backoff = FIRST_BACKOFF;
                Ok(())
            }
            Err(reason) => {
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                Err(reason)
            }
        }
    }
}

/// Produces `values` through `leader`, or through a new connection to the partition's leader
/// found via a bootstrap connection; returns the connection for the next batch.
async fn deliver(
    connector: &Connector,
    route: &RouteId,
    topic: &str,
    partition: i32,
    leader: Option<BackendIo>,
    values: &[Bytes],
) -> Result<BackendIo, String> {
    let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
    let attempt = async {
        let mut leader = match leader {
            Some(leader) => leader,
            None => {
                let mut bootstrap = connector
                    .connect(ConnectRequest::for_proxy(route))
                    .await
                    .map_err(|reason| format!("cannot reach cluster {route}: {reason}"))?
                    .io;
                let broker =
                    proxy_kafka::client::ask_leader(&mut bootstrap, topic, partition, deadline)
                        .await
                        .map_err(|err| {
                            format!("cannot find the leader of {topic}-{partition}: {err}")
                        })?;
                let pinned = BackendAddr {
                    host: broker.host,
                    port: broker.port,
                };
                connector
                    .connect(ConnectRequest {
                        route,
                        pinned: Some(&pinned),
                        requester: Requester::Proxy,
                    })
                    .await
                    .map_err(|reason| format!("cannot reach the leader {pinned}: {reason}"))?
                    .io
            }
        };
        proxy_kafka::client::produce(&mut leader, topic, partition, values, deadline)
            .await
            .map_err(|err| format!("cannot produce to {topic}-{partition}: {err}"))?;
        Ok(leader)
    };
    tokio::time::timeout_at(deadline, attempt)
        .await
        .map_err(|_| format!("no delivery within {DELIVERY_TIMEOUT:?}"))?
}
