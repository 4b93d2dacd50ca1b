//! A fake Kafka broker that speaks just SASL (SaslHandshake and SaslAuthenticate, v1), for the
//! tests of the SASL client: requests are read with `KafkaCodec`, credentials are checked
//! with `proxy_core::sasl`'s server side, and responses are encoded with `kafka-protocol`
//! directly (an encoder independent of the one under test). Answers as a broker does: a
//! failed round gets SASL_AUTHENTICATION_FAILED (58) and the connection closed.
//!
//! Available to other crates' tests with the `test-util` feature.
#![expect(
    clippy::unwrap_used,
    reason = "a test peer: a broken test environment fails the test"
)]

use std::num::NonZeroU32;

use crate::{KafkaCodec, KafkaRequest};
use bytes::{BufMut, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    RequestKind, ResponseHeader, ResponseKind, SaslAuthenticateResponse, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use proxy_core::codec::Codec;
use proxy_core::sasl::{
    Mechanism, ScramCredential, ScramHash, ScramServer, UserStore, parse_plain,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// Kafka's message for a failed SCRAM or PLAIN login.
pub const REJECTED: &str = "Authentication failed: Invalid username or password";

/// How the broker behaves.
#[derive(Debug)]
pub struct FakeBroker {
    /// The mechanisms it enables, in the order it lists them.
    pub offered: Vec<Mechanism>,
    /// Its users, with SCRAM credentials for both hashes (PLAIN checks against them).
    pub users: UserStore,
    /// Replaces its SCRAM server-final signature with one that cannot verify: a broker that
    /// does not know the credential.
    pub forge_server_signature: bool,
    /// Sent in the last SaslAuthenticate response.
    pub session_lifetime_ms: i64,
}

/// What the broker saw on one connection.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// The mechanism the client asked for.
    pub asked: Option<String>,
    /// The user that authenticated, if one did.
    pub authenticated: Option<String>,
}

impl FakeBroker {
    /// A broker enabling every mechanism, knowing `user` with `password`.
    pub fn new(user: &str, password: &str) -> Self {
        let mut users = UserStore::default();
        let iterations = NonZeroU32::new(4096).unwrap();
        for hash in [ScramHash::Sha256, ScramHash::Sha512] {
            users.add(
                user,
                ScramCredential::derive(hash, password, b"fake-broker-salt", iterations),
            );
        }
        Self {
            offered: Mechanism::ALL.to_vec(),
            users,
            forge_server_signature: false,
            session_lifetime_ms: 0,
        }
    }

    /// Serves one connection on a fresh loopback port; the task's result is what it saw.
    pub async fn listen(self) -> (u16, tokio::task::JoinHandle<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            self.serve(stream).await
        });
        (port, task)
    }

    /// Answers SASL requests on `io` until the exchange ends (success, failure or EOF).
    pub async fn serve<Io: AsyncRead + AsyncWrite + Unpin>(&self, mut io: Io) -> Seen {
        let mut codec = KafkaCodec::default();
        let mut buf = BytesMut::new();
        let mut seen = Seen::default();
        let mut mechanism = None;
        let mut scram: Option<ScramServer> = None;
        loop {
            let mut request = loop {
                if let Some(request) = codec.decode_request(&mut buf).unwrap() {
                    break request;
                }
                if io.read_buf(&mut buf).await.unwrap() == 0 {
                    return seen;
                }
            };
            match request.body().unwrap().clone() {
                RequestKind::SaslHandshake(handshake) => {
                    let asked = handshake.mechanism.to_string();
                    seen.asked = Some(asked.clone());
                    let names = self
                        .offered
                        .iter()
                        .map(|m| StrBytes::from(m.name()))
                        .collect();
                    let mut response = SaslHandshakeResponse::default().with_mechanisms(names);
                    mechanism = asked
                        .parse::<Mechanism>()
                        .ok()
                        .filter(|m| self.offered.contains(m));
                    if mechanism.is_none() {
                        response.error_code = ResponseError::UnsupportedSaslMechanism.code();
                    }
                    respond(&mut io, &request, response.into()).await;
                    if mechanism.is_none() {
                        return seen;
                    }
                }
                RequestKind::SaslAuthenticate(round) => {
                    let message = &round.auth_bytes[..];
                    let answer = match (mechanism, scram.take()) {
                        (Some(Mechanism::Plain), _) => match parse_plain(message) {
                            Some(login)
                                if self.users.verify_plain(login.username, login.password) =>
                            {
                                seen.authenticated = Some(login.username.to_owned());
                                Ok(Vec::new())
                            }
                            _ => Err(()),
                        },
                        (Some(Mechanism::Scram(hash)), None) => {
                            let lookup = |user: &str| self.users.credential(user, hash).cloned();
                            match ScramServer::start(hash, message, lookup, "fakebrokernonce") {
                                Ok((server, first)) => {
                                    scram = Some(server);
                                    Ok(first.into_bytes())
                                }
                                Err(_) => Err(()),
                            }
                        }
                        (Some(Mechanism::Scram(_)), Some(server)) => {
                            let user = server.username().to_owned();
                            match server.finish(message) {
                                Ok(_) if self.forge_server_signature => {
                                    seen.authenticated = Some(user);
                                    Ok(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_vec())
                                }
                                Ok(last) => {
                                    seen.authenticated = Some(user);
                                    Ok(last.into_bytes())
                                }
                                Err(_) => Err(()),
                            }
                        }
                        (None, _) => Err(()),
                    };
                    let done = scram.is_none();
                    let response = match &answer {
                        Ok(bytes) => SaslAuthenticateResponse::default()
                            .with_auth_bytes(bytes.clone().into())
                            .with_session_lifetime_ms(if done {
                                self.session_lifetime_ms
                            } else {
                                0
                            }),
                        Err(()) => SaslAuthenticateResponse::default()
                            .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                            .with_error_message(Some(StrBytes::from(REJECTED))),
                    };
                    respond(&mut io, &request, response.into()).await;
                    if answer.is_err() || done {
                        return seen;
                    }
                }
                _ => return seen,
            }
        }
    }
}

/// Writes `body` as the response to `request`.
async fn respond<Io: AsyncWrite + Unpin>(io: &mut Io, request: &KafkaRequest, body: ResponseKind) {
    let api = request.api().unwrap();
    let version = request.api_version();
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(request.correlation_id())
        .encode(&mut frame, api.response_header_version(version))
        .unwrap();
    body.encode(&mut frame, version).unwrap();
    let len = i32::try_from(frame.len() - 4).unwrap();
    frame[..4].copy_from_slice(&len.to_be_bytes());
    io.write_all(&frame).await.unwrap();
}
