//! SASL mechanisms, protocol-neutral: PLAIN and SCRAM-SHA-256/512, both as the server that
//! verifies a client and as the client that authenticates to a cluster, with salted
//! credentials in a users file (replaceable while sessions run), the throttle that slows down clients that keep failing, the
//! cap on sessions still authenticating, and password checks off the runtime.
//! Sans I/O: a protocol crate (`proxy-kafka`) carries the messages.

mod pending;
mod plain;
mod reloadable;
mod scram;
mod throttle;
mod users;
mod verifier;

#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzz_checks;

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use self::pending::{PendingGuard, PendingLimit, PendingRefused};
pub use self::plain::{PlainMessage, parse_plain, plain_message};
pub use self::reloadable::ReloadableUsers;
pub use self::scram::{
    MAX_CLIENT_MESSAGE, MAX_ITERATIONS, MAX_NAME_OR_NONCE, MAX_STORED_ITERATIONS, MIN_ITERATIONS,
    ScramClient, ScramClientFinal, ScramCredential, ScramError, ScramHash, ScramServer,
    client_first_username, fresh_nonce,
};
pub use self::throttle::{FailureThrottle, client_prefix};
pub use self::users::{UserStore, UsersFileError, check_iterations, check_username};
pub use self::verifier::{PasswordCheck, PasswordVerifier, VerifierError};

/// A SASL mechanism Sluice speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mechanism {
    /// PLAIN: a password in the clear (inside TLS).
    Plain,
    /// SCRAM with SHA-256 or SHA-512.
    Scram(ScramHash),
}

impl Mechanism {
    /// Every mechanism, in the order they are offered.
    pub const ALL: [Mechanism; 3] = [
        Self::Scram(ScramHash::Sha512),
        Self::Scram(ScramHash::Sha256),
        Self::Plain,
    ];

    /// The name SASL uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::Scram(hash) => hash.mechanism(),
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A mechanism name Sluice does not speak.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SASL mechanism {0:?} (expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")]
pub struct UnknownMechanism(pub String);

impl FromStr for Mechanism {
    type Err = UnknownMechanism;

    /// Case-insensitive, as SASL mechanism names are.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownMechanism(name.to_owned()))
    }
}
