//! Why authenticating to a cluster failed.

use proxy_core::sasl::{Mechanism, ScramError};
use std::io;

use kafka_protocol::ResponseError;
use proxy_core::close::{CloseReason, InternalError};

use super::{ExchangeError, backend_protocol};
use crate::KafkaError;

/// Why [`authenticate`](super::authenticate()) failed. The text never holds the password; it
/// does hold the broker's own error message and mechanism names, which operators need to see,
/// with control characters escaped (`\r\n` stays two characters): the text reaches the log,
/// and a broker's words must not forge a line there.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SaslClientError {
    /// The connection failed, closed or timed out before a response came.
    #[error("SASL exchange with the broker failed: {0}")]
    Exchange(#[source] ExchangeError),
    /// A response whose body could not be read as the SASL response it answers.
    #[error("unreadable SASL response from the broker: {0}")]
    Malformed(#[source] KafkaError),
    /// The broker does not enable the configured mechanism.
    #[error("the broker does not offer {mechanism} (it offers: {})", offered_list(.offered))]
    UnsupportedMechanism {
        /// The configured mechanism.
        mechanism: Mechanism,
        /// The mechanisms the broker's SaslHandshake response lists.
        offered: Vec<String>,
    },
    /// The broker refused the SaslHandshake for another reason (a connection that already
    /// authenticated, say).
    #[error("the broker refused the SASL handshake: {0}")]
    HandshakeRefused(ResponseError),
    /// The broker rejected a SaslAuthenticate round: wrong credentials, as a rule.
    #[error("the broker rejected the credentials of {username:?} ({mechanism}): {error}{}",
        .message.as_deref().map(|m| format!(": {}", m.escape_debug())).unwrap_or_default())]
    Rejected {
        /// The configured user name.
        username: String,
        /// The configured mechanism.
        mechanism: Mechanism,
        /// The broker's error code.
        error: ResponseError,
        /// The broker's `error_message`, when it sent one.
        message: Option<String>,
    },
    /// The broker's SCRAM messages were malformed, or it could not prove it knows the
    /// credential (its final signature did not match).
    #[error("SCRAM with the broker failed: {0}")]
    Scram(#[from] ScramError),
    /// The system's random number generator failed (the SCRAM nonce).
    #[error("no random bytes for the SCRAM nonce")]
    Random,
    /// The blocking task deriving the SCRAM keys did not finish (the runtime is shutting down).
    #[error("deriving the SCRAM keys did not finish: {0}")]
    KeyDerivation(#[source] tokio::task::JoinError),
}

fn offered_list(offered: &[String]) -> String {
    if offered.is_empty() {
        "none".to_owned()
    } else {
        let escaped: Vec<String> = offered
            .iter()
            .map(|m| m.escape_debug().to_string())
            .collect();
        escaped.join(", ")
    }
}

impl From<SaslClientError> for CloseReason {
    /// The connection failing (a broker going away mid-exchange, the deadline) is a backend
    /// I/O error like any other; an unreadable response is the backend's protocol error; no
    /// randomness or an unfinished key derivation is Sluice's own fault; everything else
    /// (rejected credentials, an unsupported mechanism, a broker that cannot prove it knows the
    /// credential) is `backend_auth_failed`.
    fn from(err: SaslClientError) -> Self {
        match err {
            SaslClientError::Exchange(ExchangeError::Closed) => {
                CloseReason::BackendIo(io::ErrorKind::UnexpectedEof)
            }
            SaslClientError::Exchange(err) => err.into(),
            err @ SaslClientError::Malformed(_) => backend_protocol(&err),
            SaslClientError::Random => CloseReason::Internal(InternalError::NoRandomness),
            SaslClientError::KeyDerivation(err) => {
                CloseReason::Internal(InternalError::BlockingTask(err.to_string().into()))
            }
            err => CloseReason::BackendAuthFailed {
                detail: err.to_string().into(),
            },
        }
    }
}
