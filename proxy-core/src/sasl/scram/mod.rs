//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), both sides, sans I/O: the messages
//! in, the messages out. Credentials are stored salted (`StoredKey`, `ServerKey`), never as
//! passwords. Hashing is ring's (already built for rustls).

mod client;
mod server;

use std::fmt;
use std::num::NonZeroU32;
use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::{digest, hmac, pbkdf2};

pub use self::client::{ScramClient, ScramClientFinal};
pub use self::server::ScramServer;

/// The hash a SCRAM mechanism is built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramHash {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

/// Fewer iterations than Kafka's own minimum are refused, on either side.
pub const MIN_ITERATIONS: u32 = 4096;
/// A server asking for more iterations than this is refused (each costs the client CPU).
pub const MAX_ITERATIONS: u32 = 1_000_000;
/// The most iterations a stored credential may have: Kafka's own ceiling for SCRAM
/// credentials. Every PLAIN login costs one derivation at the user's count, so a higher count
/// would let each wrong guess cost the proxy that much more CPU.
pub const MAX_STORED_ITERATIONS: u32 = 16_384;

/// The longest client message a SCRAM server reads (RFC 5802 messages from real clients are
/// under 200 bytes; Kafka's token extension adds a few): longer ones are refused before any
/// part of them is copied.
pub const MAX_CLIENT_MESSAGE: usize = 1024;
/// The longest user name (as sent, escaped) and client nonce a SCRAM server accepts.
pub const MAX_NAME_OR_NONCE: usize = 255;

impl ScramHash {
    /// The mechanism's name, as SASL spells it.
    pub fn mechanism(self) -> &'static str {
        match self {
            Self::Sha256 => "SCRAM-SHA-256",
            Self::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Self::Sha256 => hmac::HMAC_SHA256,
            Self::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            Self::Sha256 => &digest::SHA256,
            Self::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            Self::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            Self::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn len(self) -> usize {
        self.digest().output_len()
    }

    fn mac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac(), key), data)
            .as_ref()
            .to_vec()
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest(), data).as_ref().to_vec()
    }

    fn salted_password(self, password: &str, salt: &[u8], iterations: NonZeroU32) -> Vec<u8> {
        let mut out = vec![0; self.len()];
        pbkdf2::derive(
            self.pbkdf2(),
            iterations,
            salt,
            password.as_bytes(),
            &mut out,
        );
        out
    }
}

/// What a server stores for one user and one SCRAM mechanism.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// The hash.
    pub hash: ScramHash,
    /// The salt.
    pub salt: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: NonZeroU32,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keys are password-equivalent for this server: never logged.
        f.debug_struct("ScramCredential")
            .field("hash", &self.hash)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// Derives the stored credential from a password.
    pub fn derive(hash: ScramHash, password: &str, salt: &[u8], iterations: NonZeroU32) -> Self {
        let salted = hash.salted_password(password, salt, iterations);
        let client_key = hash.mac(&salted, b"Client Key");
        Self {
            hash,
            salt: salt.to_vec(),
            iterations,
            stored_key: hash.hash(&client_key),
            server_key: hash.mac(&salted, b"Server Key"),
        }
    }

    /// A credential for `password` with a fresh random 16-byte salt.
    pub fn generate(
        hash: ScramHash,
        password: &str,
        iterations: NonZeroU32,
    ) -> Result<Self, ring::error::Unspecified> {
        let mut salt = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)?;
        Ok(Self::derive(hash, password, &salt, iterations))
    }

    /// The credential a SCRAM server presents for `username` when no such user exists: a salt
    /// and keys derived from the name under a secret of this process, so the challenge is the
    /// same on every attempt, looks like a real user's (16 random-looking bytes, `iterations`),
    /// and tells nothing to someone without the secret. No password matches it: its stored key
    /// is not derived from one.
    pub fn decoy(hash: ScramHash, username: &str, iterations: NonZeroU32) -> Self {
        let derive = |purpose: &[u8], len: usize| {
            let mut input = Vec::with_capacity(purpose.len() + 16 + username.len());
            input.extend_from_slice(purpose);
            input.push(0);
            input.extend_from_slice(hash.mechanism().as_bytes());
            input.push(0);
            input.extend_from_slice(username.as_bytes());
            let mut out = ScramHash::Sha512.mac(&*DECOY_KEY, &input);
            out.truncate(len);
            out
        };
        Self {
            hash,
            salt: derive(b"salt", 16),
            iterations,
            stored_key: derive(b"stored key", hash.len()),
            server_key: derive(b"server key", hash.len()),
        }
    }

    /// Whether `password` is this credential's (PLAIN checked against SCRAM's stored keys).
    pub fn verify_password(&self, password: &str) -> bool {
        let salted = self
            .hash
            .salted_password(password, &self.salt, self.iterations);
        let client_key = self.hash.mac(&salted, b"Client Key");
        constant_time_eq(&self.hash.hash(&client_key), &self.stored_key)
    }
}

/// The secret behind decoy credentials: random, per process. Should the system's random source
/// fail (it does not on Linux once booted), a fixed key keeps decoys working but predictable.
static DECOY_KEY: LazyLock<[u8; 32]> = LazyLock::new(|| {
    let mut key = [0u8; 32];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key).is_err() {
        tracing::error!("no random source: unknown SCRAM users get predictable challenges");
    }
    key
});

/// Why a SCRAM exchange failed; the text is safe to send to the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// A message that does not follow RFC 5802.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// Channel binding was asked for; Kafka does not use it.
    #[error("channel binding is not supported")]
    ChannelBinding,
    /// Unknown user or wrong password (not told apart, so users cannot be probed).
    #[error("authentication failed")]
    Failed,
    /// The server's nonce does not extend ours, or its signature is wrong.
    #[error("the server could not prove it knows the password")]
    ServerNotVerified,
    /// The server asked for an iteration count out of bounds.
    #[error("iteration count {0} out of bounds ({MIN_ITERATIONS}..={MAX_ITERATIONS})")]
    Iterations(u32),
}

/// The `key=value` attributes of a SCRAM message, in order.
fn attributes(message: &str) -> Result<Vec<(char, &str)>, ScramError> {
    message
        .split(',')
        .map(|part| {
            let mut chars = part.chars();
            match (chars.next(), chars.next()) {
                (Some(key), Some('=')) if key.is_ascii_alphabetic() => Ok((key, &part[2..])),
                _ => Err(ScramError::Malformed("attribute without a key")),
            }
        })
        .collect()
}

fn attribute<'a>(attrs: &[(char, &'a str)], key: char) -> Option<&'a str> {
    attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// A SASL name with `=2C` and `=3D` decoded.
fn decode_name(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in a name")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A SASL name with `,` and `=` escaped.
fn encode_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Random bytes in a SCRAM nonce (32 characters of base64 on the wire).
const NONCE_BYTES: usize = 24;

/// A fresh SCRAM nonce, client's or server's: random bytes in base64 (printable, never a
/// comma); `None` when the system's random source fails.
pub fn fresh_nonce() -> Option<String> {
    let mut bytes = [0u8; NONCE_BYTES];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).ok()?;
    Some(BASE64.encode(bytes))
}

/// The user name in a client's first SCRAM message, for a proxy that only watches the exchange.
pub fn client_first_username(client_first: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(client_first).ok()?;
    let (_, bare) = split_gs2(text).ok()?;
    let attrs = attributes(bare).ok()?;
    decode_name(attribute(&attrs, 'n')?).ok()
}

/// Splits `gs2-header` (`n,,` / `y,,` / `p=...,`, with an optional `a=authzid`) from the bare
/// message.
fn split_gs2(text: &str) -> Result<(&str, &str), ScramError> {
    let mut parts = text.splitn(3, ',');
    let flag = parts.next().ok_or(ScramError::Malformed("empty message"))?;
    let authzid = parts.next().ok_or(ScramError::Malformed("no GS2 header"))?;
    let bare = parts.next().ok_or(ScramError::Malformed("no GS2 header"))?;
    if !(flag == "n" || flag == "y" || flag.starts_with("p=")) {
        return Err(ScramError::Malformed("bad GS2 flag"));
    }
    if !(authzid.is_empty() || authzid.starts_with("a=")) {
        return Err(ScramError::Malformed("bad authorization id"));
    }
    Ok((&text[..flag.len() + authzid.len() + 2], bare))
}
