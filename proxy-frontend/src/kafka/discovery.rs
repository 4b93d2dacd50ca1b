//! Broker discovery: a client may connect to a broker's port (or name) before this process has
//! seen a Metadata response naming that broker (after a restart, say). The session then asks
//! the cluster itself, with a Metadata request of the proxy's own, and learns every broker.

use kafka_protocol::messages::{ApiKey, MetadataRequest, RequestKind};
use proxy_core::close::CloseReason;
use proxy_core::gate::Side;
use proxy_core::kafka::exchange::{ExchangeError, exchange};
use proxy_core::kafka::rewrite::rewrite_response;
use proxy_core::kafka::{KafkaCodec, KafkaRequest};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::KafkaGateway;

/// Metadata v4: old enough for any broker since Kafka 0.11, new enough to ask for no topics.
const METADATA_VERSION: i16 = 4;

/// The client id of the proxy's own requests.
pub(crate) const PROXY_CLIENT_ID: &str = "sluice";

/// Asks the broker at the other end of `io` for the cluster's brokers, and teaches them to
/// `gateway`.
pub(crate) async fn discover<Io>(
    io: &mut Io,
    gateway: &KafkaGateway,
    deadline: Instant,
) -> Result<(), CloseReason>
where
    Io: AsyncRead + AsyncWrite + Unpin,
{
    let request = KafkaRequest::originate(
        ApiKey::Metadata,
        METADATA_VERSION,
        PROXY_CLIENT_ID,
        RequestKind::Metadata(MetadataRequest::default().with_topics(Some(Vec::new()))),
    );
    let mut codec = KafkaCodec::default();
    let mut response =
        exchange(io, &mut codec, request, deadline)
            .await
            .map_err(|err| match err {
                ExchangeError::Io(err) => CloseReason::BackendIo(err.kind()),
                ExchangeError::Closed => CloseReason::BackendClosed,
                other => CloseReason::Protocol {
                    side: Side::Backend,
                    detail: format!("broker discovery: {other}").into(),
                },
            })?;
    rewrite_response(&mut response, gateway).map_err(|err| CloseReason::Protocol {
        side: Side::Backend,
        detail: format!("broker discovery: {err}").into(),
    })?;
    Ok(())
}
