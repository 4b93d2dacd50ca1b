//! SASL toward a Kafka cluster: Sluice authenticating with the cluster's own credentials.
//!
//! Place in the pipeline: after the backend's TCP connect, any outbound PROXY header and TLS,
//! the backend connector runs [`authenticate`] on the connection of a cluster with a
//! `[cluster.NAME.sasl]` table (`TlsHandshaking? → Authenticating → Ready`), before any byte of
//! the session's (or broker discovery's) own. The exchange is Kafka's: `SaslHandshake` v1
//! naming the mechanism, then `SaslAuthenticate` v1 rounds carrying the mechanism's messages
//! (one for PLAIN, two for SCRAM). The mechanisms themselves are `proxy_core::sasl`'s, sans
//! I/O.
//!
//! Limitation: a broker with `connections.max.reauth.ms` answers with a session lifetime
//! (KIP-368) and closes the connection once it passes without re-authentication. Sluice does
//! not re-authenticate backend connections mid-session yet: it returns the lifetime in
//! [`Authenticated`] and logs it, and such a session ends when the broker closes it.

use std::fmt;

use super::authenticate_error::SaslClientError;
use super::exchange;
use crate::{KafkaCodec, KafkaError, KafkaRequest, PROXY_CLIENT_ID};
use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    ApiKey, RequestKind, ResponseKind, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use proxy_core::sasl::{Mechanism, ScramClient, ScramHash, fresh_nonce, plain_message};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tracing::debug;

/// Version 1 of both APIs: SaslHandshake v1 means the mechanism's messages travel in
/// SaslAuthenticate requests (v0 sent them as bare frames); SaslAuthenticate v1 answers with
/// the session lifetime. Every broker since Kafka 1.1 speaks both.
const SASL_VERSION: i16 = 1;

/// The largest SASL response accepted: handshake mechanism lists and SCRAM messages are a few
/// hundred bytes, so a broker declaring more is not answering what was asked.
const MAX_RESPONSE_SIZE: usize = 64 * 1024;

/// How Sluice authenticates to one cluster: the `[cluster.NAME.sasl]` table, the password read
/// from its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSasl {
    /// The mechanism Sluice asks the broker for.
    pub mechanism: Mechanism,
    /// The cluster's user Sluice authenticates as (SCRAM escapes `,` and `=` itself).
    pub username: String,
    /// Its password.
    pub password: Password,
}

/// A password: never printed (`Debug` shows `***`) and without `Display`, so it cannot end up
/// in a log line or an error by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps `password`.
    pub fn new(password: String) -> Self {
        Self(password)
    }

    /// The password itself, for the mechanism that sends or derives from it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A successful authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authenticated {
    /// The session lifetime the broker granted, in milliseconds (KIP-368); 0 when unlimited.
    /// The broker closes the connection once it passes (see the module's limitation).
    pub session_lifetime_ms: i64,
}

/// Authenticates the connection `io` to a Kafka broker as `sasl` says, all of it before
/// `deadline`: SaslHandshake v1, then SaslAuthenticate v1 rounds. For SCRAM, the broker's
/// final signature is verified: a broker that cannot prove it knows the credential fails.
///
/// Nothing is read past the last response (a broker sends nothing unasked), so `io` is ready
/// for the session's own requests afterwards. Not cancel-safe: on an error or a dropped
/// future, the connection is in an unknown state and must be closed.
///
/// Re-authentication before [`Authenticated::session_lifetime_ms`] passes is not implemented
/// (see the module documentation).
pub async fn authenticate<Io>(
    io: &mut Io,
    sasl: &ClusterSasl,
    deadline: Instant,
) -> Result<Authenticated, SaslClientError>
where
    Io: AsyncRead + AsyncWrite + Unpin,
{
    let mut codec = KafkaCodec::new(MAX_RESPONSE_SIZE);
    handshake(io, &mut codec, sasl.mechanism, deadline).await?;
    let last = match sasl.mechanism {
        Mechanism::Plain => {
            let message = plain_message(&sasl.username, sasl.password.expose());
            round(io, &mut codec, sasl, message, deadline).await?
        }
        Mechanism::Scram(hash) => scram(io, &mut codec, sasl, hash, deadline).await?,
    };
    if last.session_lifetime_ms != 0 {
        debug!(
            mechanism = %sasl.mechanism,
            username = %sasl.username,
            session_lifetime_ms = last.session_lifetime_ms,
            "the cluster limits the backend connection's session lifetime; it is not re-authenticated"
        );
    }
    Ok(Authenticated {
        session_lifetime_ms: last.session_lifetime_ms,
    })
}

/// SaslHandshake: asks for `mechanism`.
async fn handshake<Io>(
    io: &mut Io,
    codec: &mut KafkaCodec,
    mechanism: Mechanism,
    deadline: Instant,
) -> Result<(), SaslClientError>
where
    Io: AsyncRead + AsyncWrite + Unpin,
{
    let request = KafkaRequest::originate(
        ApiKey::SaslHandshake,
        SASL_VERSION,
        PROXY_CLIENT_ID,
        RequestKind::SaslHandshake(
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from(mechanism.name())),
        ),
    );
    let response = exchange(io, codec, request, deadline)
        .await
        .map_err(SaslClientError::Exchange)?;
    let ResponseKind::SaslHandshake(response) =
        response.into_body().map_err(SaslClientError::Malformed)?
    else {
        return Err(unexpected_body(ApiKey::SaslHandshake));
    };
    match ResponseError::try_from_code(response.error_code) {
        None => Ok(()),
        Some(ResponseError::UnsupportedSaslMechanism) => {
            Err(SaslClientError::UnsupportedMechanism {
                mechanism,
                offered: response.mechanisms.iter().map(|m| m.to_string()).collect(),
            })
        }
        Some(error) => Err(SaslClientError::HandshakeRefused(error)),
    }
}

/// SCRAM's two rounds: client-first → server-first, client-final → server-final, and the
/// server's signature checked.
async fn scram<Io>(
    io: &mut Io,
    codec: &mut KafkaCodec,
    sasl: &ClusterSasl,
    hash: ScramHash,
    deadline: Instant,
) -> Result<SaslAuthenticateResponse, SaslClientError>
where
    Io: AsyncRead + AsyncWrite + Unpin,
{
    let nonce = fresh_nonce().ok_or(SaslClientError::Random)?;
    let (client, first) = ScramClient::start(hash, &sasl.username, sasl.password.expose(), &nonce);
    let server_first = round(io, codec, sasl, first.into_bytes(), deadline)
        .await?
        .auth_bytes;
    // PBKDF2 runs for as many iterations as the broker asks (up to a million): CPU work that
    // must not hold up the runtime thread other sessions are polled on.
    let (client, last) = tokio::task::spawn_blocking(move || client.respond(&server_first))
        .await
        .map_err(SaslClientError::KeyDerivation)??;
    let server_final = round(io, codec, sasl, last.into_bytes(), deadline).await?;
    client.verify(&server_final.auth_bytes)?;
    Ok(server_final)
}

/// One SaslAuthenticate round: `message` out, the broker's answer back, its error code
/// checked.
async fn round<Io>(
    io: &mut Io,
    codec: &mut KafkaCodec,
    sasl: &ClusterSasl,
    message: Vec<u8>,
    deadline: Instant,
) -> Result<SaslAuthenticateResponse, SaslClientError>
where
    Io: AsyncRead + AsyncWrite + Unpin,
{
    let request = KafkaRequest::originate(
        ApiKey::SaslAuthenticate,
        SASL_VERSION,
        PROXY_CLIENT_ID,
        RequestKind::SaslAuthenticate(
            SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message)),
        ),
    );
    let response = exchange(io, codec, request, deadline)
        .await
        .map_err(SaslClientError::Exchange)?;
    let ResponseKind::SaslAuthenticate(response) =
        response.into_body().map_err(SaslClientError::Malformed)?
    else {
        return Err(unexpected_body(ApiKey::SaslAuthenticate));
    };
    match ResponseError::try_from_code(response.error_code) {
        None => Ok(response),
        Some(error) => Err(SaslClientError::Rejected {
            username: sasl.username.clone(),
            mechanism: sasl.mechanism,
            error,
            message: response.error_message.map(|m| m.to_string()),
        }),
    }
}

/// The codec decodes a response by its request's API key, so this does not happen; it is an
/// error, not a panic, all the same.
fn unexpected_body(api: ApiKey) -> SaslClientError {
    SaslClientError::Malformed(KafkaError::Malformed(match api {
        ApiKey::SaslHandshake => "not a SaslHandshake response",
        _ => "not a SaslAuthenticate response",
    }))
}
