//! The server side of SCRAM: verifying a client against a stored credential.

use base64::Engine as _;

use std::num::NonZeroU32;

use super::{
    BASE64, MAX_CLIENT_MESSAGE, MAX_NAME_OR_NONCE, MIN_ITERATIONS, ScramCredential, ScramError,
    ScramHash, attribute, attributes, constant_time_eq, decode_name, split_gs2, xor,
};

/// A server that has sent its first message and waits for the client's final one.
#[derive(Debug)]
pub struct ScramServer {
    username: String,
    /// A decoy for an unknown user: the exchange runs to the end and fails there.
    credential: ScramCredential,
    hash: ScramHash,
    client_first_bare: String,
    server_first: String,
    /// The client's nonce, which begins `nonce`: librdkafka before 2.6.1 sends it twice.
    client_nonce: String,
    /// The nonce of the exchange: the client's, then the server's.
    nonce: String,
}

impl ScramServer {
    /// Reads the client's first message and answers it. `lookup` finds the user's stored
    /// credential, or a decoy for a user that does not exist ([`ScramCredential::decoy`]; a
    /// lookup that returns `None` gets one at [`MIN_ITERATIONS`]); `server_nonce` must be fresh
    /// and random (printable, no comma).
    pub fn start(
        hash: ScramHash,
        client_first: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
        server_nonce: &str,
    ) -> Result<(Self, String), ScramError> {
        if client_first.len() > MAX_CLIENT_MESSAGE {
            return Err(ScramError::Malformed("message too long"));
        }
        let text =
            std::str::from_utf8(client_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (gs2, bare) = split_gs2(text)?;
        if gs2.starts_with('p') {
            return Err(ScramError::ChannelBinding);
        }
        let attrs = attributes(bare)?;
        // RFC 5802, 5.1: a mandatory extension the server does not know fails the exchange.
        if attribute(&attrs, 'm').is_some() {
            return Err(ScramError::Malformed(
                "mandatory extension (m=) not supported",
            ));
        }
        let name = attribute(&attrs, 'n').ok_or(ScramError::Malformed("no user name"))?;
        let client_nonce = attribute(&attrs, 'r').ok_or(ScramError::Malformed("no nonce"))?;
        if client_nonce.is_empty() {
            return Err(ScramError::Malformed("empty nonce"));
        }
        if name.len() > MAX_NAME_OR_NONCE || client_nonce.len() > MAX_NAME_OR_NONCE {
            return Err(ScramError::Malformed("user name or nonce too long"));
        }
        let username = decode_name(name)?;
        let credential = lookup(&username)
            .filter(|c| c.hash == hash)
            .unwrap_or_else(|| {
                let iterations = NonZeroU32::new(MIN_ITERATIONS).unwrap_or(NonZeroU32::MIN);
                ScramCredential::decoy(hash, &username, iterations)
            });
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        let server = Self {
            username,
            credential,
            hash,
            client_first_bare: bare.to_owned(),
            server_first: server_first.clone(),
            client_nonce: client_nonce.to_owned(),
            nonce,
        };
        Ok((server, server_first))
    }

    /// The user name the client gave.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Whether the nonce of the client's final message is the one the server sent, as RFC 5802
    /// asks, or the client's own nonce followed by it, as librdkafka before 2.6.1 sends it (it
    /// prepended its nonce to the server's, which already begins with it: librdkafka#4895;
    /// Kafka's brokers accept it, since 3.8.1 by checking only that the nonce ends with the
    /// server's). The proof covers the message as sent, doubled nonce included, and nothing
    /// else is let through.
    fn nonce_matches(&self, echoed: &str) -> bool {
        echoed == self.nonce
            || echoed.strip_prefix(self.client_nonce.as_str()) == Some(self.nonce.as_str())
    }

    /// Checks the client's proof; on success, the server's final message.
    pub fn finish(self, client_final: &[u8]) -> Result<String, ScramError> {
        if client_final.len() > MAX_CLIENT_MESSAGE {
            return Err(ScramError::Malformed("message too long"));
        }
        let text =
            std::str::from_utf8(client_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("no proof"))?;
        let attrs = attributes(without_proof)?;
        if !attribute(&attrs, 'r').is_some_and(|echoed| self.nonce_matches(echoed)) {
            return Err(ScramError::Malformed("nonce does not match"));
        }
        let binding = attribute(&attrs, 'c').ok_or(ScramError::Malformed("no channel binding"))?;
        let binding = BASE64
            .decode(binding)
            .map_err(|_| ScramError::Malformed("channel binding is not base64"))?;
        if !(binding.starts_with(b"n,") || binding.starts_with(b"y,")) {
            return Err(ScramError::ChannelBinding);
        }
        let proof = BASE64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        let credential = self.credential;
        if proof.len() != self.hash.len() {
            return Err(ScramError::Failed);
        }
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let client_signature = self
            .hash
            .mac(&credential.stored_key, auth_message.as_bytes());
        let client_key = xor(&proof, &client_signature);
        if !constant_time_eq(&self.hash.hash(&client_key), &credential.stored_key) {
            return Err(ScramError::Failed);
        }
        let server_signature = self
            .hash
            .mac(&credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", BASE64.encode(server_signature)))
    }
}
