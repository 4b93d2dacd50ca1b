//! Asking a cluster for its API versions: a client asks ApiVersions first thing and keeps the
//! answer, so a proxy that answers clients before it has a backend (SASL termination) must
//! learn each cluster's versions itself.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestKind, ResponseKind};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::{ClientError, ask};

/// ApiVersions v0: every broker answers it, and its answer is the list itself.
const API_VERSIONS_VERSION: i16 = 0;

/// Asks the broker at the other end of `io` for its API versions.
pub async fn ask_versions<Io>(
    io: &mut Io,
    deadline: Instant,
) -> Result<Vec<ApiVersion>, ClientError>
where
    Io: AsyncRead + AsyncWrite + Unpin,
{
    let api = ApiKey::ApiVersions;
    let body = RequestKind::ApiVersions(ApiVersionsRequest::default());
    match ask(io, api, API_VERSIONS_VERSION, body, deadline).await? {
        ResponseKind::ApiVersions(body) if body.error_code == 0 => Ok(body.api_keys),
        ResponseKind::ApiVersions(body) => Err(ClientError::Refused {
            api,
            error_code: body.error_code,
        }),
        // The codec reads a response as the API of the request it answers.
        _ => Err(ClientError::Malformed {
            api,
            source: crate::KafkaError::Malformed("not an ApiVersions response"),
        }),
    }
}
