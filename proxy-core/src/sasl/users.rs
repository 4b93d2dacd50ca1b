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

use super::{MAX_STORED_ITERATIONS, MIN_ITERATIONS, Mechanism, ScramCredential, ScramHash};

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

    /// Removes `username`'s credential for `hash`, or all of them for `None`; the user goes
    /// once they have none. The mechanisms removed, in order (none when nothing matched).
    pub fn remove(&mut self, username: &str, hash: Option<ScramHash>) -> Vec<ScramHash> {
        let Some(credentials) = self.users.get_mut(username) else {
            return Vec::new();
        };
        let removed = match hash {
            None => std::mem::take(credentials).into_keys().collect(),
            Some(hash) => credentials
                .remove(&hash)
                .map(|credential| vec![credential.hash])
                .unwrap_or_default(),
        };
        if credentials.is_empty() {
            self.users.remove(username);
        }
        removed
    }

    /// Every user's name, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// The mechanisms `username` has a credential for, in order (none for an unknown user).
    pub fn mechanisms(&self, username: &str) -> Vec<ScramHash> {
        self.users
            .get(username)
            .map(|credentials| credentials.keys().copied().collect())
            .unwrap_or_default()
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

    /// `username`'s credential for `hash`, or, for a user who does not exist or has no
    /// credential for `hash`, a decoy ([`ScramCredential::decoy`]) with the iteration count most
    /// users of `hash` have: the SCRAM challenge does not tell which users exist.
    pub fn credential_or_decoy(&self, username: &str, hash: ScramHash) -> ScramCredential {
        match self.credential(username, hash) {
            Some(credential) => credential.clone(),
            None => ScramCredential::decoy(hash, username, self.typical_iterations(hash)),
        }
    }

    /// Whether `password` is `username`'s (a PLAIN login), checked against a stored SCRAM
    /// credential: one derivation at the user's iteration count. An unknown user costs one
    /// derivation at the count most users have, so timing does not tell them apart.
    pub fn verify_plain(&self, username: &str, password: &str) -> bool {
        let stored = self
            .users
            .get(username)
            .and_then(|by_hash| by_hash.values().next_back());
        match stored {
            Some(credential) => credential.verify_password(password),
            None => {
                // The hash a known user's PLAIN login is checked with: their strongest.
                let hash = if self.has_any(ScramHash::Sha512) {
                    ScramHash::Sha512
                } else {
                    ScramHash::Sha256
                };
                let decoy = ScramCredential::decoy(hash, username, self.typical_iterations(hash));
                let _ = decoy.verify_password(password);
                false
            }
        }
    }

    /// The iteration count most `hash` credentials have (the lower on a tie), or
    /// [`MIN_ITERATIONS`] when none do.
    fn typical_iterations(&self, hash: ScramHash) -> NonZeroU32 {
        let mut counts: BTreeMap<NonZeroU32, usize> = BTreeMap::new();
        for credential in self.users.values().filter_map(|by_hash| by_hash.get(&hash)) {
            *counts.entry(credential.iterations).or_default() += 1;
        }
        let most = counts.values().copied().max().unwrap_or(0);
        counts
            .into_iter()
            .find(|&(_, count)| count == most)
            .map(|(iterations, _)| iterations)
            .unwrap_or_else(|| NonZeroU32::new(MIN_ITERATIONS).unwrap_or(NonZeroU32::MIN))
    }

    fn has_any(&self, hash: ScramHash) -> bool {
        self.users
            .values()
            .any(|by_hash| by_hash.contains_key(&hash))
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

/// An iteration count a stored credential may have: from [`MIN_ITERATIONS`] (Kafka's minimum)
/// to [`MAX_STORED_ITERATIONS`] (Kafka's maximum).
pub fn check_iterations(iterations: i64) -> Result<NonZeroU32, String> {
    u32::try_from(iterations)
        .ok()
        .filter(|i| (MIN_ITERATIONS..=MAX_STORED_ITERATIONS).contains(i))
        .and_then(NonZeroU32::new)
        .ok_or_else(|| {
            format!(
                "{iterations} iterations: expected {MIN_ITERATIONS} to {MAX_STORED_ITERATIONS} \
                 (Kafka's bounds; each PLAIN login costs one derivation of that many)"
            )
        })
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
    let iterations =
        check_iterations(iterations).map_err(|message| error(&iterations_at, message))?;
    Ok(ScramCredential {
        hash,
        salt: bytes("salt", None)?,
        iterations,
        stored_key: bytes("stored_key", Some(key_len))?,
        server_key: bytes("server_key", Some(key_len))?,
    })
}
