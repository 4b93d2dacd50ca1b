//! The session's authentication state; the data of each state lives in its variant.

use std::fmt;

/// How a client proved (or is proving) who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMechanism {
    /// SASL PLAIN.
    Plain,
    /// SASL SCRAM-SHA-256.
    ScramSha256,
    /// SASL SCRAM-SHA-512.
    ScramSha512,
    /// A client certificate verified during the TLS handshake.
    Mtls,
}

impl fmt::Display for AuthMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
            Self::Mtls => "mTLS",
        })
    }
}

impl From<crate::sasl::Mechanism> for AuthMechanism {
    fn from(mechanism: crate::sasl::Mechanism) -> Self {
        use crate::sasl::{Mechanism, ScramHash};
        match mechanism {
            Mechanism::Plain => Self::Plain,
            Mechanism::Scram(ScramHash::Sha256) => Self::ScramSha256,
            Mechanism::Scram(ScramHash::Sha512) => Self::ScramSha512,
        }
    }
}

/// Where the session stands on authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AuthState {
    /// Nothing has been attempted.
    #[default]
    Unauthenticated,
    /// An exchange has started and not finished.
    InProgress {
        /// The mechanism the client chose.
        mechanism: AuthMechanism,
    },
    /// The client proved its identity.
    Authenticated {
        /// Who the client is.
        principal: Box<str>,
        /// How it proved it.
        mechanism: AuthMechanism,
    },
    /// The client tried and failed.
    Failed {
        /// The mechanism that failed.
        mechanism: AuthMechanism,
    },
}

impl AuthState {
    /// The authenticated principal, if any.
    pub fn principal(&self) -> Option<&str> {
        match self {
            Self::Authenticated { principal, .. } => Some(principal),
            _ => None,
        }
    }
}
