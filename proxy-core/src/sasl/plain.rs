//! SASL PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd`.

/// A PLAIN message's parts.
#[derive(PartialEq, Eq)]
pub struct PlainMessage<'a> {
    /// The identity to act as (empty: the same as `username`).
    pub authzid: &'a str,
    /// Who authenticates.
    pub username: &'a str,
    /// The password.
    pub password: &'a str,
}

impl std::fmt::Debug for PlainMessage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainMessage")
            .field("authzid", &self.authzid)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Parses a PLAIN message; `None` unless it has exactly three UTF-8 parts, a non-empty user
/// name and password, and an authzid that is empty or the user name itself.
pub fn parse_plain(message: &[u8]) -> Option<PlainMessage<'_>> {
    let text = std::str::from_utf8(message).ok()?;
    let mut parts = text.split('\0');
    let (authzid, username, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || username.is_empty() || password.is_empty() {
        return None;
    }
    if !authzid.is_empty() && authzid != username {
        return None;
    }
    Some(PlainMessage {
        authzid,
        username,
        password,
    })
}

/// A PLAIN message for `username` with `password`.
pub fn plain_message(username: &str, password: &str) -> Vec<u8> {
    format!("\0{username}\0{password}").into_bytes()
}
