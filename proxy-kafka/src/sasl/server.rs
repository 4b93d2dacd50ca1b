//! The SASL server side of Kafka's exchange, sans I/O: SaslHandshake (v1) names a mechanism,
//! then SaslAuthenticate carries its tokens — one round for PLAIN, two for SCRAM. Used by the
//! negotiation that runs before a session has a backend, and again mid-session when a client
//! re-authenticates (KIP-368).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{
    RequestKind, ResponseKind, SaslAuthenticateResponse, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::{KafkaError, KafkaRequest};
use proxy_core::sasl::{
    Mechanism, PasswordCheck, ReloadableUsers, ScramServer, VerifierError, fresh_nonce, parse_plain,
};

/// Kafka's `UNSUPPORTED_SASL_MECHANISM`.
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
/// Kafka's `ILLEGAL_SASL_STATE`.
pub const ILLEGAL_SASL_STATE: i16 = 34;
/// Kafka's `UNSUPPORTED_VERSION`.
pub const UNSUPPORTED_VERSION: i16 = 35;
/// Kafka's `SASL_AUTHENTICATION_FAILED`.
pub const SASL_AUTHENTICATION_FAILED: i16 = 58;

/// The one message a failed authentication gets: it does not tell an unknown user from a wrong
/// password.
const INVALID_CREDENTIALS: &str = "Authentication failed: Invalid username or password";

/// What a terminating listener authenticates clients against.
#[derive(Debug)]
pub struct SaslServerConfig {
    /// The mechanisms offered, in the order the handshake lists them.
    pub mechanisms: Vec<Mechanism>,
    /// Salted credentials, replaced when the users file changes: each authentication checks
    /// against the users current when its token arrives.
    pub users: Arc<ReloadableUsers>,
    /// Told to clients in SaslAuthenticate (v1+); they must re-authenticate before it passes.
    /// `None`: sessions never expire.
    pub session_lifetime: Option<Duration>,
}

/// What the server does after one SASL request.
#[derive(Debug)]
pub enum SaslStep {
    /// Answer, and wait for the client's next token.
    Continue(ResponseKind),
    /// Run this PLAIN password check off the runtime ([`proxy_core::sasl::PasswordVerifier`]),
    /// then hand its outcome to [`SaslServer::on_password_checked`].
    CheckPassword(PasswordCheck),
    /// Answer: the client proved it is `principal`.
    Authenticated {
        /// The answer to send.
        response: ResponseKind,
        /// Who the client is.
        principal: String,
        /// How it proved it.
        mechanism: Mechanism,
    },
    /// Answer, then close the connection (as a broker does).
    Failed {
        /// The error answer to send.
        response: ResponseKind,
        /// The mechanism in use, if one was chosen.
        mechanism: Option<Mechanism>,
        /// Whether the client presented credentials that were checked and wrong (counted and
        /// slowed down), as opposed to a protocol mistake.
        credentials_rejected: bool,
        /// The user the client claimed to be, when it got that far.
        username: Option<String>,
    },
}

#[derive(Debug)]
/// What the server waits for next.
enum Awaiting {
    Handshake,
    Token(Mechanism),
    ScramFinal(Box<ScramServer>, Mechanism),
    /// A PLAIN login's password is being checked.
    PasswordChecked(String),
}

/// One client's SASL exchange, from handshake to outcome; reusable for re-authentication.
#[derive(Debug)]
pub struct SaslServer {
    config: Arc<SaslServerConfig>,
    state: Awaiting,
}

impl SaslServer {
    /// A server waiting for the client's SaslHandshake.
    pub fn new(config: Arc<SaslServerConfig>) -> Self {
        Self {
            config,
            state: Awaiting::Handshake,
        }
    }

    /// The configuration it authenticates against.
    pub fn config(&self) -> &Arc<SaslServerConfig> {
        &self.config
    }

    /// The mechanism of the exchange in progress, if one is.
    pub fn mechanism(&self) -> Option<Mechanism> {
        match self.state {
            Awaiting::Handshake => None,
            Awaiting::Token(mechanism) | Awaiting::ScramFinal(_, mechanism) => Some(mechanism),
            Awaiting::PasswordChecked(_) => Some(Mechanism::Plain),
        }
    }

    /// True between a handshake and the exchange's outcome.
    pub fn in_progress(&self) -> bool {
        !matches!(self.state, Awaiting::Handshake)
    }

    /// Handles a SaslHandshake or SaslAuthenticate request; any other request is an error of
    /// the caller's.
    pub fn on_request(&mut self, request: &mut KafkaRequest) -> Result<SaslStep, KafkaError> {
        let version = request.api_version();
        match request.body()? {
            RequestKind::SaslHandshake(body) => {
                let mechanism = body.mechanism.to_string();
                Ok(self.handshake(&mechanism, version))
            }
            RequestKind::SaslAuthenticate(body) => {
                let token = body.auth_bytes.clone();
                Ok(self.authenticate(&token))
            }
            _ => Err(KafkaError::Malformed("not a SASL request")),
        }
    }

    fn handshake(&mut self, name: &str, version: i16) -> SaslStep {
        let response = |error_code| handshake_response(error_code, &self.config.mechanisms);
        let chosen = name
            .parse::<Mechanism>()
            .ok()
            .filter(|m| self.config.mechanisms.contains(m));
        // v0 sends the tokens that follow as bare frames, not SaslAuthenticate requests; every
        // client since Kafka 1.0 uses v1.
        if version < 1 || self.in_progress() {
            let code = if version < 1 {
                UNSUPPORTED_VERSION
            } else {
                ILLEGAL_SASL_STATE
            };
            return SaslStep::Failed {
                response: response(code),
                mechanism: chosen,
                credentials_rejected: false,
                username: None,
            };
        }
        match chosen {
            Some(mechanism) => {
                self.state = Awaiting::Token(mechanism);
                SaslStep::Continue(response(0))
            }
            None => SaslStep::Failed {
                response: response(UNSUPPORTED_SASL_MECHANISM),
                mechanism: None,
                credentials_rejected: false,
                username: None,
            },
        }
    }

    fn authenticate(&mut self, token: &[u8]) -> SaslStep {
        match std::mem::replace(&mut self.state, Awaiting::Handshake) {
            Awaiting::Handshake | Awaiting::PasswordChecked(_) => failure(
                ILLEGAL_SASL_STATE,
                "SaslAuthenticate before SaslHandshake",
                None,
                false,
                None,
            ),
            Awaiting::Token(mechanism @ Mechanism::Plain) => match parse_plain(token) {
                Some(plain) => {
                    self.state = Awaiting::PasswordChecked(plain.username.to_owned());
                    SaslStep::CheckPassword(PasswordCheck::new(
                        self.config.users.current(),
                        plain.username,
                        plain.password,
                    ))
                }
                None => failure(
                    SASL_AUTHENTICATION_FAILED,
                    "Authentication failed: malformed PLAIN message",
                    Some(mechanism),
                    false,
                    None,
                ),
            },
            Awaiting::Token(mechanism @ Mechanism::Scram(hash)) => {
                let Some(nonce) = fresh_nonce() else {
                    return failure(
                        SASL_AUTHENTICATION_FAILED,
                        "Authentication failed: the server has no random source",
                        Some(mechanism),
                        false,
                        None,
                    );
                };
                let users = self.config.users.current();
                let started = ScramServer::start(
                    hash,
                    token,
                    |name| Some(users.credential_or_decoy(name, hash)),
                    &nonce,
                );
                match started {
                    Ok((server, server_first)) => {
                        self.state = Awaiting::ScramFinal(Box::new(server), mechanism);
                        SaslStep::Continue(ResponseKind::SaslAuthenticate(
                            SaslAuthenticateResponse::default()
                                .with_auth_bytes(Bytes::from(server_first.into_bytes())),
                        ))
                    }
                    Err(err) => failure(
                        SASL_AUTHENTICATION_FAILED,
                        &format!("Authentication failed: {err}"),
                        Some(mechanism),
                        false,
                        None,
                    ),
                }
            }
            Awaiting::ScramFinal(server, mechanism) => {
                let username = server.username().to_owned();
                match server.finish(token) {
                    Ok(server_final) => {
                        self.success(username, mechanism, Bytes::from(server_final.into_bytes()))
                    }
                    Err(proxy_core::sasl::ScramError::Failed) => failure(
                        SASL_AUTHENTICATION_FAILED,
                        INVALID_CREDENTIALS,
                        Some(mechanism),
                        true,
                        Some(username),
                    ),
                    Err(err) => failure(
                        SASL_AUTHENTICATION_FAILED,
                        &format!("Authentication failed: {err}"),
                        Some(mechanism),
                        false,
                        Some(username),
                    ),
                }
            }
        }
    }

    /// The outcome of the password check a [`SaslStep::CheckPassword`] asked for.
    pub fn on_password_checked(&mut self, checked: Result<bool, VerifierError>) -> SaslStep {
        let Awaiting::PasswordChecked(username) =
            std::mem::replace(&mut self.state, Awaiting::Handshake)
        else {
            return failure(
                ILLEGAL_SASL_STATE,
                "no password check in progress",
                None,
                false,
                None,
            );
        };
        match checked {
            Ok(true) => self.success(username, Mechanism::Plain, Bytes::new()),
            Ok(false) => failure(
                SASL_AUTHENTICATION_FAILED,
                INVALID_CREDENTIALS,
                Some(Mechanism::Plain),
                true,
                Some(username),
            ),
            // Not the client's fault: not counted against it; it may retry.
            Err(err) => failure(
                SASL_AUTHENTICATION_FAILED,
                &format!("Authentication failed: {err}; retry later"),
                Some(Mechanism::Plain),
                false,
                Some(username),
            ),
        }
    }

    fn success(&mut self, principal: String, mechanism: Mechanism, token: Bytes) -> SaslStep {
        self.state = Awaiting::Handshake;
        let lifetime_ms = self
            .config
            .session_lifetime
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        SaslStep::Authenticated {
            response: ResponseKind::SaslAuthenticate(
                SaslAuthenticateResponse::default()
                    .with_auth_bytes(token)
                    .with_session_lifetime_ms(lifetime_ms),
            ),
            principal,
            mechanism,
        }
    }
}

/// A SaslHandshake answer with `error_code`, listing `mechanisms`.
pub fn handshake_response(error_code: i16, mechanisms: &[Mechanism]) -> ResponseKind {
    ResponseKind::SaslHandshake(
        SaslHandshakeResponse::default()
            .with_error_code(error_code)
            .with_mechanisms(
                mechanisms
                    .iter()
                    .map(|m| StrBytes::from_static_str(m.name()))
                    .collect(),
            ),
    )
}

/// A SaslAuthenticate error answer with `message`.
pub fn authenticate_error(error_code: i16, message: &str) -> ResponseKind {
    ResponseKind::SaslAuthenticate(
        SaslAuthenticateResponse::default()
            .with_error_code(error_code)
            .with_error_message(Some(StrBytes::from_string(message.to_owned()))),
    )
}

fn failure(
    error_code: i16,
    message: &str,
    mechanism: Option<Mechanism>,
    credentials_rejected: bool,
    username: Option<String>,
) -> SaslStep {
    SaslStep::Failed {
        response: authenticate_error(error_code, message),
        mechanism,
        credentials_rejected,
        username,
    }
}
