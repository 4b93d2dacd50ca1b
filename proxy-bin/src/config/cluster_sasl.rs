//! A cluster's `[cluster.NAME.sasl]`: how Sluice authenticates to the cluster with the
//! cluster's own credentials.
//!
//! The password file is read here, at load, so `sluice check` reports a missing or empty file
//! like any other config error, and a running proxy never touches the file again (a changed
//! password takes effect on reload, SIGHUP). The file holds the password alone, on one line,
//! as printable UTF-8 text; a symbolic link out of its directory is refused
//! ([`super::secret_file`]). Messages name the file and the key, never what the file holds.

use std::io::Read;
use std::path::{Path, PathBuf};

use proxy_core::sasl::{Mechanism, check_username};
use proxy_kafka::client::{ClusterSasl, Password};

use super::path;
use super::raw::RawClusterSasl;
use super::secret_file::check_link;
use super::validate::Validator;

/// A password file larger than this is not a password file (a key or a log picked by
/// mistake); reading stops here, so `/dev/zero` cannot make loading hang.
const MAX_PASSWORD_FILE: u64 = 4096;

const MECHANISMS_EXPECTED: &str = "expected \"SCRAM-SHA-512\", \"SCRAM-SHA-256\" or \"PLAIN\"";

// === impl Validator ===

impl Validator {
    /// `Some(None)` without a `[cluster.NAME.sasl]` table, `None` when it has errors; with the
    /// credentials, the password file they were read from. `has_tls`: the cluster has a
    /// `[cluster.NAME.tls]` table; `exec`: it is a child-process cluster.
    pub(super) fn cluster_sasl(
        &mut self,
        at: &str,
        raw: Option<RawClusterSasl>,
        has_tls: bool,
        exec: bool,
    ) -> Option<Option<(ClusterSasl, PathBuf)>> {
        let Some(raw) = raw else {
            return Some(None);
        };
        let at = path::key(at, "sasl");
        if exec {
            self.error(
                at,
                "a child-process (exec) cluster has no Kafka broker to authenticate to".into(),
            );
            return None;
        }
        let mechanism_at = path::key(&at, "mechanism");
        let mechanism = self
            .required(&mechanism_at, raw.mechanism)
            .and_then(|text| match text.parse::<Mechanism>() {
                Ok(mechanism) => Some(mechanism),
                Err(_) => {
                    self.error(
                        mechanism_at.clone(),
                        format!("unknown SASL mechanism {text:?}: {MECHANISMS_EXPECTED}"),
                    );
                    None
                }
            });
        let username_at = path::key(&at, "username");
        let username = self.required(&username_at, raw.username).and_then(|name| {
            match check_username(&name) {
                Ok(()) => Some(name),
                Err(why) => {
                    self.error(username_at.clone(), why.into());
                    None
                }
            }
        });
        let password_at = path::key(&at, "password_file");
        let password = self
            .required(&password_at, raw.password_file)
            .and_then(|file| {
                let file = self.resolve(file);
                match check_link("password file", &file).and_then(|()| read_password(&file)) {
                    Ok(password) => Some((password, file)),
                    Err(why) => {
                        self.error(password_at.clone(), why);
                        None
                    }
                }
            });
        // PLAIN sends the password itself: only inside TLS, unless the operator says otherwise
        // (a trusted network, a sidecar that adds TLS).
        if mechanism == Some(Mechanism::Plain)
            && !has_tls
            && !raw.allow_plain_without_tls.unwrap_or(false)
        {
            self.error(
                mechanism_at,
                "PLAIN sends the password in the clear: add a [cluster.NAME.tls] table, or set \
                 allow_plain_without_tls = true in this table"
                    .into(),
            );
            return None;
        }
        let (password, file) = password?;
        Some(Some((
            ClusterSasl {
                mechanism: mechanism?,
                username: username?,
                password,
            },
            file,
        )))
    }
}

/// The password in `file`: its one line, without the line ending. The error names the file,
/// never its content.
fn read_password(file: &Path) -> Result<Password, String> {
    let shown = file.display();
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_PASSWORD_FILE + 1).read_to_end(&mut bytes))
        .map_err(|err| format!("cannot read password file {shown}: {err}"))?;
    if bytes.len() as u64 > MAX_PASSWORD_FILE {
        return Err(format!(
            "password file {shown} is larger than {MAX_PASSWORD_FILE} bytes: not a password"
        ));
    }
    let text =
        String::from_utf8(bytes).map_err(|_| format!("password file {shown} is not UTF-8 text"))?;
    let lines = text
        .lines()
        .filter(|line| !line.trim_end_matches('\r').is_empty())
        .count();
    if lines > 1 {
        return Err(format!(
            "password file {shown} has {lines} non-empty lines: it must hold the password \
             alone, on one line"
        ));
    }
    // Line endings after the password are not part of it: a password has no control character.
    let password = text.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(format!("password file {shown} is empty"));
    }
    // A line break before it, a tab, a NUL (PLAIN's separator, so it could not be sent intact).
    if let Some(control) = password.chars().find(|c| c.is_control()) {
        return Err(format!(
            "password file {shown} contains a control character (U+{:04X}): a password is \
             printable text on one line",
            u32::from(control)
        ));
    }
    Ok(Password::new(password.to_owned()))
}
