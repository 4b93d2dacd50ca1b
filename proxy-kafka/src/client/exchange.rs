//! One request the proxy sends on its own over a connection no client uses, and its response;
//! and the proxy's own answers to a client that has no backend yet.

use bytes::BytesMut;
use proxy_core::codec::{Codec, CodecError};
use proxy_core::io::WriteQueue;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::time::{Instant, timeout_at};

use crate::{KafkaCodec, KafkaRequest, KafkaResponse};

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The connection failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection before answering.
    #[error("connection closed before the response")]
    Closed,
    /// The deadline passed.
    #[error("no response in time")]
    TimedOut,
    /// The message to send could not be encoded (a bug of the proxy's, not the peer's).
    #[error("cannot encode the message: {0}")]
    Encode(#[source] CodecError),
    /// The bytes that came back were not a Kafka response to the request.
    #[error("{0}")]
    Decode(#[source] CodecError),
}

/// Sends `request` (which gets a correlation id of the proxy's) and reads its response.
pub async fn exchange<Io>(
    io: &mut Io,
    codec: &mut KafkaCodec,
    request: KafkaRequest,
    deadline: Instant,
) -> Result<KafkaResponse, ExchangeError>
where
    Io: AsyncRead + AsyncWrite + Unpin,
{
    let mut queue = WriteQueue::default();
    codec
        .encode_request(request, &mut queue)
        .map_err(ExchangeError::Encode)?;
    let send = async {
        queue.write_all_to(io).await?;
        let mut buf = BytesMut::with_capacity(4096);
        loop {
            if let Some(response) = codec
                .decode_response(&mut buf)
                .map_err(ExchangeError::Decode)?
            {
                return Ok(response);
            }
            if io.read_buf(&mut buf).await? == 0 {
                return Err(ExchangeError::Closed);
            }
        }
    };
    timeout_at(deadline, send)
        .await
        .map_err(|_| ExchangeError::TimedOut)?
}

/// Writes `response` to a client the proxy talks to itself (before the session has a backend:
/// SASL negotiation).
pub async fn write_response<Io>(
    io: &mut Io,
    codec: &mut KafkaCodec,
    response: KafkaResponse,
) -> Result<(), ExchangeError>
where
    Io: AsyncWrite + Unpin,
{
    let mut queue = WriteQueue::default();
    codec
        .encode_response(response, &mut queue)
        .map_err(ExchangeError::Encode)?;
    queue.write_all_to(io).await?;
    Ok(())
}
