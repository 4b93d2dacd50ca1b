//! A cluster's `[cluster.NAME.sasl]`: how Sluice authenticates to the cluster with the
//! cluster's own credentials.
//!
//! The password file is read here, at load, so `sluice check` reports a missing or empty file
//! like any other config error, and a running proxy never touches the file again (a changed
//! password takes effect on reload, SIGHUP). Messages name the file and the key, never what
//! the file holds.

use std::io::Read;
use std::path::Path;

use proxy_core::sasl::{Mechanism, check_username};
use proxy_kafka::client::{ClusterSasl, Password};

use super::path;
use super::raw::RawClusterSasl;
use super::validate::Validator;

/// A password file larger than this is not a password file (a key or a log picked by
/// mistake); reading stops here, so `/dev/zero` cannot make loading hang.
const MAX_PASSWORD_FILE: u64 = 4096;

const MECHANISMS_EXPECTED: &str = "expected \"SCRAM-SHA-512\", \"SCRAM-SHA-256\" or \"PLAIN\"";

// === impl Validator ===

impl Validator {
    /// `Some(None)` without a `[cluster.NAME.sasl]` table, `None` when it has errors.
    /// `has_tls`: the cluster has a `[cluster.NAME.tls]` table; `exec`: it is a child-process
    /// cluster.
    pub(super) fn cluster_sasl(
        &mut self,
        at: &str,
        raw: Option<RawClusterSasl>,
        has_tls: bool,
        exec: bool,
    ) -> Option<Option<ClusterSasl>> {
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
            .and_then(|file| match read_password(&self.resolve(file)) {
                Ok(password) => Some(password),
                Err(why) => {
                    self.error(password_at.clone(), why);
                    None
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
        Some(Some(ClusterSasl {
            mechanism: mechanism?,
            username: username?,
            password: password?,
        }))
    }
}

/// The password in `file`: its text without one trailing line ending. The error names the
/// file, never its content.
fn read_password(file: &Path) -> Result<Password, String> {
    let shown = file.display();
    let mut text = String::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_PASSWORD_FILE + 1).read_to_string(&mut text))
        .map_err(|err| format!("cannot read password file {shown}: {err}"))?;
    if text.len() as u64 > MAX_PASSWORD_FILE {
        return Err(format!(
            "password file {shown} is larger than {MAX_PASSWORD_FILE} bytes: not a password"
        ));
    }
    let password = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if password.is_empty() {
        return Err(format!("password file {shown} is empty"));
    }
    // PLAIN separates its fields with NUL: such a password could not be sent intact.
    if password.contains('\0') {
        return Err(format!("password file {shown} contains a NUL byte"));
    }
    Ok(Password::new(password.to_owned()))
}
