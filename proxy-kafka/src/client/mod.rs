//! The proxy's own Kafka client: requests Sluice sends to a cluster on its own behalf, over a
//! connection no client uses — learning the cluster's API versions and brokers (discovery) and
//! authenticating with the cluster's credentials. The frontend (discovery, negotiation) and
//! the backend (authentication) both use this one client.
//!
//! Every failure maps to the session's [`CloseReason`] here, in one place: the connection
//! failing is the backend's I/O error, an unreadable answer its protocol error.

mod api_versions;
mod authenticate;
mod authenticate_error;
mod discovery;
mod exchange;
mod metadata;
mod produce;

#[cfg(test)]
mod authenticate_tests;
#[cfg(any(test, feature = "test-util"))]
pub mod fake_broker;

use std::io;

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use proxy_core::close::{CloseReason, InternalError};
use proxy_core::gate::Side;

pub use self::api_versions::ask_versions;
pub use self::authenticate::{Authenticated, ClusterSasl, Password, authenticate};
pub use self::authenticate_error::SaslClientError;
pub use self::discovery::{Discovered, discover};
pub use self::exchange::{ExchangeError, exchange, write_response};
pub use self::metadata::ask_brokers;
pub use self::produce::{ask_leader, produce};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use crate::{KafkaCodec, KafkaError, KafkaRequest, PROXY_CLIENT_ID};

/// Why a request of the proxy's own failed.
///
/// A session that needed the answer ends with the matching [`CloseReason`]:
///
/// ```
/// use std::io;
/// use proxy_core::{CloseReason, Fault};
/// use proxy_kafka::client::{ClientError, ExchangeError};
/// use proxy_kafka::kafka_protocol::messages::ApiKey;
///
/// let timed_out = ClientError::Exchange {
///     api: ApiKey::Metadata,
///     source: ExchangeError::TimedOut,
/// };
/// assert_eq!(CloseReason::from(timed_out), CloseReason::BackendIo(io::ErrorKind::TimedOut));
/// // A broker's error code is the backend's protocol error: its fault, not the client's.
/// let refused = CloseReason::from(ClientError::Refused { api: ApiKey::Metadata, error_code: 29 });
/// assert_eq!(refused.fault(), Some(Fault::Upstream));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Sending the request or reading its response failed.
    #[error("{api:?}: {source}")]
    Exchange {
        /// The API asked.
        api: ApiKey,
        /// What failed.
        #[source]
        source: ExchangeError,
    },
    /// The response's body could not be read.
    #[error("{api:?} response: {source}")]
    Malformed {
        /// The API asked.
        api: ApiKey,
        /// What was wrong.
        #[source]
        source: KafkaError,
    },
    /// The broker answered with an error code.
    #[error("{api:?} answered with error {error_code}")]
    Refused {
        /// The API asked.
        api: ApiKey,
        /// Kafka's error code.
        error_code: i16,
    },
}

impl From<ExchangeError> for CloseReason {
    /// The connection failing or closing is the backend's I/O error; bytes that are not the
    /// answer are its protocol error; a request the proxy could not encode is the proxy's own.
    fn from(err: ExchangeError) -> Self {
        match err {
            ExchangeError::Io(err) => CloseReason::BackendIo(err.kind()),
            ExchangeError::Closed => CloseReason::BackendIo(io::ErrorKind::UnexpectedEof),
            ExchangeError::TimedOut => CloseReason::BackendIo(io::ErrorKind::TimedOut),
            ExchangeError::Encode(err) => CloseReason::Internal(InternalError::Encode(err)),
            err @ ExchangeError::Decode(_) => backend_protocol(&err),
        }
    }
}

impl From<ClientError> for CloseReason {
    fn from(err: ClientError) -> Self {
        match err {
            ClientError::Exchange { source, .. } => source.into(),
            err => backend_protocol(&err),
        }
    }
}

/// Sends `body` as an `api` request of `version` (with the proxy's client id and a correlation
/// id of its own) on a codec of its own, and returns the response's body.
async fn ask<Io>(
    io: &mut Io,
    api: ApiKey,
    version: i16,
    body: RequestKind,
    deadline: Instant,
) -> Result<ResponseKind, ClientError>
where
    Io: AsyncRead + AsyncWrite + Unpin,
{
    let request = KafkaRequest::originate(api, version, PROXY_CLIENT_ID, body);
    let response = exchange(io, &mut KafkaCodec::default(), request, deadline)
        .await
        .map_err(|source| ClientError::Exchange { api, source })?;
    response
        .into_body()
        .map_err(|source| ClientError::Malformed { api, source })
}

/// The backend's protocol error, for the close line.
pub(crate) fn backend_protocol(err: &dyn std::error::Error) -> CloseReason {
    CloseReason::Protocol {
        side: Side::Backend,
        detail: err.to_string().into(),
    }
}
