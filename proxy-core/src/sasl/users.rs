//! The users file: salted SCRAM credentials per user and mechanism, as `sluice user add`
//! writes them. PLAIN logins are checked against the same stored keys, so no password is ever
//! kept.
//!
//! ```toml
//! [users.alice.SCRAM-SHA-512]
//! salt = "c2FsdHNhbHRzYWx0c2FsdA=="
//! iterations = 4096
//! stored_key = "..."
//! server_key = "..."
//! ```

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{MIN_ITERATIONS, Mechanism, ScramCredential, ScramHash};

/// A users file that could not be read; names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct UsersFileError {
    /// Where, e.g. `users.alice.SCRAM-SHA-512.salt`.
    pub path: String,
    /// What was wrong.
    pub message: String,
}

fn error(path: impl Into<String>, message: impl Into<String>) -> UsersFileError {
    UsersFileError {
        path: path.into(),
        message: message.into(),
    }
}

/// Every user's stored credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserStore {
    users: BTreeMap<String, BTreeMap<ScramHash, ScramCredential>>,
}

impl UserStore {
    /// Parses a users file.
    pub fn parse(text: &str) -> Result<Self, UsersFileError> {
        let table: toml::Table = text
            .parse()
            .map_err(|err: toml::de::Error| error("users file", err.message().to_owned()))?;
        let mut store = Self::default();
        for (key, value) in table {
            if key != "users" {
                return Err(error(
                    key,
                    "unknown key (expected [users.NAME.MECHANISM] tables)",
                ));
            }
            let users = value
                .as_table()
                .ok_or_else(|| error("users", "expected a table"))?;
            for (name, mechanisms) in users {
                let at = format!("users.{name}");
                check_username(name).map_err(|message| error(&at, message))?;
                let mechanisms = mechanisms
                    .as_table()
                    .ok_or_else(|| error(&at, "expected a table of mechanisms"))?;
                for (mechanism, fields) in mechanisms {
                    let at = format!("{at}.{mechanism}");
                    let hash = match mechanism.parse::<Mechanism>() {
                        Ok(Mechanism::Scram(hash)) => hash,
                        _ => {
                            return Err(error(
                                &at,
                                "expected SCRAM-SHA-256 or SCRAM-SHA-512 (PLAIN logins are \
                                 checked against these)",
                            ));
                        }
                    };
                    let credential = credential(&at, hash, fields)?;
                    store.add(name, credential);
                }
            }
        }
        Ok(store)
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        let mut out = String::from(
            "# Written by `sluice user add`: salted SCRAM credentials, never passwords.\n",
        );
        for (name, credentials) in &self.users {
            for credential in credentials.values() {
                out.push_str(&format!(
                    "\n[users.{}.{}]\nsalt = \"{}\"\niterations = {}\nstored_key = \"{}\"\nserver_key = \"{}\"\n",
                    toml_key(name),
                    credential.hash.mechanism(),
                    BASE64.encode(&credential.salt),
                    credential.iterations,
                    BASE64.encode(&credential.stored_key),
                    BASE64.encode(&credential.server_key),
                ));
            }
        }
        out
    }

    /// Adds or replaces `username`'s credential for its hash.
    pub fn add(&mut self, username: &str, credential: ScramCredential) {
        self.users
            .entry(username.to_owned())
            .or_default()
            .insert(credential.hash, credential);
    }

    /// `username`'s credential for `hash`.
    pub fn credential(&self, username: &str, hash: ScramHash) -> Option<&ScramCredential> {
        self.users.get(username)?.get(&hash)
    }

    /// The number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True without users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `password` is `username`'s (a PLAIN login), checked against a stored SCRAM
    /// credential. An unknown user costs the same derivation, so timing does not tell.
    pub fn verify_plain(&self, username: &str, password: &str) -> bool {
        let stored = self
            .users
            .get(username)
            .and_then(|by_hash| by_hash.values().next_back());
        match stored {
            Some(credential) => credential.verify_password(password),
            None => {
                let iterations = NonZeroU32::new(MIN_ITERATIONS).unwrap_or(NonZeroU32::MIN);
                let decoy = ScramCredential::derive(ScramHash::Sha512, "", b"decoy", iterations);
                let _ = decoy.verify_password(password);
                false
            }
        }
    }
}

/// Whether `name` can be a user in a users file (and in SCRAM).
pub fn check_username(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("a user name must not be empty");
    }
    if name.chars().any(char::is_control) {
        return Err("a user name must not contain control characters");
    }
    Ok(())
}

/// A TOML key for `name`: bare when it can be, quoted otherwise.
fn toml_key(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        name.to_owned()
    } else {
        toml::Value::String(name.to_owned()).to_string()
    }
}

fn credential(
    at: &str,
    hash: ScramHash,
    fields: &toml::Value,
) -> Result<ScramCredential, UsersFileError> {
    let fields = fields
        .as_table()
        .ok_or_else(|| error(at, "expected a table"))?;
    if let Some(unknown) = fields.keys().find(|k| {
        !matches!(
            k.as_str(),
            "salt" | "iterations" | "stored_key" | "server_key"
        )
    }) {
        return Err(error(format!("{at}.{unknown}"), "unknown key"));
    }
    let bytes = |key: &str, len: Option<usize>| -> Result<Vec<u8>, UsersFileError> {
        let at = format!("{at}.{key}");
        let text = fields
            .get(key)
            .ok_or_else(|| error(&at, "missing required key"))?
            .as_str()
            .ok_or_else(|| error(&at, "expected a base64 string"))?;
        let decoded = BASE64
            .decode(text)
            .map_err(|_| error(&at, "not valid base64"))?;
        match len {
            Some(len) if decoded.len() != len => Err(error(
                &at,
                format!("expected {len} bytes for {}", hash.mechanism()),
            )),
            _ if decoded.is_empty() => Err(error(&at, "must not be empty")),
            _ => Ok(decoded),
        }
    };
    let key_len = match hash {
        ScramHash::Sha256 => 32,
        ScramHash::Sha512 => 64,
    };
    let iterations_at = format!("{at}.iterations");
    let iterations = fields
        .get("iterations")
        .ok_or_else(|| error(&iterations_at, "missing required key"))?
        .as_integer()
        .ok_or_else(|| error(&iterations_at, "expected an integer"))?;
    let iterations = u32::try_from(iterations)
        .ok()
        .filter(|&i| i >= MIN_ITERATIONS)
        .and_then(NonZeroU32::new)
        .ok_or_else(|| {
            error(
                &iterations_at,
                format!("{iterations} is below the minimum of {MIN_ITERATIONS}"),
            )
        })?;
    Ok(ScramCredential {
        hash,
        salt: bytes("salt", None)?,
        iterations,
        stored_key: bytes("stored_key", Some(key_len))?,
        server_key: bytes("server_key", Some(key_len))?,
    })
}
