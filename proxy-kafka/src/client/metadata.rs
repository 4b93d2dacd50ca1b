//! Asking a cluster for its brokers: a client may connect to a broker's port (or name) before
//! this process has seen a Metadata response naming that broker (after a restart, say).

use kafka_protocol::messages::{ApiKey, MetadataRequest, RequestKind, ResponseKind};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::{ClientError, ask};
use crate::rewrite::UpstreamBroker;

/// Metadata v4: old enough for any broker since Kafka 0.11, new enough to ask for no topics.
const METADATA_VERSION: i16 = 4;

/// Asks the broker at the other end of `io` for the cluster's brokers, as the cluster
/// advertises them.
pub async fn ask_brokers<Io>(
    io: &mut Io,
    deadline: Instant,
) -> Result<Vec<UpstreamBroker>, ClientError>
where
    Io: AsyncRead + AsyncWrite + Unpin,
{
    let api = ApiKey::Metadata;
    let body = RequestKind::Metadata(MetadataRequest::default().with_topics(Some(Vec::new())));
    let ResponseKind::Metadata(body) = ask(io, api, METADATA_VERSION, body, deadline).await? else {
        return Err(ClientError::Malformed {
            api,
            source: crate::KafkaError::Malformed("not a Metadata response"),
        });
    };
    Ok(body
        .brokers
        .into_iter()
        .filter_map(|broker| {
            Some(UpstreamBroker {
                node_id: broker.node_id.0,
                host: broker.host.to_string(),
                port: u16::try_from(broker.port).ok()?,
            })
        })
        .collect())
}
