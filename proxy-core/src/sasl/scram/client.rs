//! The client side of SCRAM: proving a password to a server, and checking the server's proof.

use std::fmt;
use std::num::NonZeroU32;

use base64::Engine as _;

use super::{
    BASE64, MAX_ITERATIONS, MIN_ITERATIONS, ScramError, ScramHash, attribute, attributes,
    constant_time_eq, encode_name, xor,
};

/// A client that has sent its first message.
pub struct ScramClient {
    hash: ScramHash,
    password: String,
    client_first_bare: String,
    client_nonce: String,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password is never logged.
        f.debug_struct("ScramClient")
            .field("hash", &self.hash)
            .field("client_first_bare", &self.client_first_bare)
            .finish_non_exhaustive()
    }
}

/// A client that has sent its final message and waits for the server's signature.
#[derive(Debug)]
pub struct ScramClientFinal {
    expected_server_signature: Vec<u8>,
}

impl ScramClient {
    /// Starts an exchange as `username`; `nonce` must be fresh and random.
    pub fn start(hash: ScramHash, username: &str, password: &str, nonce: &str) -> (Self, String) {
        let bare = format!("n={},r={nonce}", encode_name(username));
        let first = format!("n,,{bare}");
        let client = Self {
            hash,
            password: password.to_owned(),
            client_first_bare: bare,
            client_nonce: nonce.to_owned(),
        };
        (client, first)
    }

    /// Answers the server's first message with the proof.
    pub fn respond(self, server_first: &[u8]) -> Result<(ScramClientFinal, String), ScramError> {
        let text =
            std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let attrs = attributes(text)?;
        let nonce = attribute(&attrs, 'r').ok_or(ScramError::Malformed("no nonce"))?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(ScramError::ServerNotVerified);
        }
        let salt = BASE64
            .decode(attribute(&attrs, 's').ok_or(ScramError::Malformed("no salt"))?)
            .map_err(|_| ScramError::Malformed("salt is not base64"))?;
        let iterations: u32 = attribute(&attrs, 'i')
            .ok_or(ScramError::Malformed("no iteration count"))?
            .parse()
            .map_err(|_| ScramError::Malformed("iteration count is not a number"))?;
        let iterations = NonZeroU32::new(iterations)
            .filter(|i| (MIN_ITERATIONS..=MAX_ITERATIONS).contains(&i.get()))
            .ok_or(ScramError::Iterations(iterations))?;
        let salted = self.hash.salted_password(&self.password, &salt, iterations);
        let client_key = self.hash.mac(&salted, b"Client Key");
        let stored_key = self.hash.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let signature = self.hash.mac(&stored_key, auth_message.as_bytes());
        let proof = xor(&client_key, &signature);
        let server_key = self.hash.mac(&salted, b"Server Key");
        let expected_server_signature = self.hash.mac(&server_key, auth_message.as_bytes());
        Ok((
            ScramClientFinal {
                expected_server_signature,
            },
            format!("{without_proof},p={}", BASE64.encode(proof)),
        ))
    }
}

impl ScramClientFinal {
    /// Checks the server's final message.
    pub fn verify(self, server_final: &[u8]) -> Result<(), ScramError> {
        let text =
            std::str::from_utf8(server_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let attrs = attributes(text)?;
        if attribute(&attrs, 'e').is_some() {
            return Err(ScramError::Failed);
        }
        let signature = BASE64
            .decode(attribute(&attrs, 'v').ok_or(ScramError::Malformed("no verifier"))?)
            .map_err(|_| ScramError::Malformed("verifier is not base64"))?;
        if constant_time_eq(&signature, &self.expected_server_signature) {
            Ok(())
        } else {
            Err(ScramError::ServerNotVerified)
        }
    }
}
