//! TLS keys: a listener's `[listener.tls]` (termination or passthrough) and a cluster's
//! `[cluster.NAME.tls]` (origination). File paths are resolved against the config file's
//! directory. Each file is recorded at its key and read when a config file is loaded
//! ([`super::files`]), so `sluice check` reports every unusable one at its own key; whether a
//! key matches its certificate is checked when the plan is built.

use std::path::PathBuf;
use std::time::Duration;

use proxy_frontend::{CertFiles, ClientAuth, MinTlsVersion, PrincipalSource, TlsServerOptions};

use super::files::FileKind;
use super::raw::{RawClusterTls, RawListenerTls};
use super::validate::Validator;
use super::{ClusterTlsConfig, ListenerTlsConfig, path, value};

const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

// === impl Validator ===

impl Validator {
    /// `file` as written, resolved against the config file's directory when relative.
    pub(super) fn resolve(&self, file: String) -> PathBuf {
        let file = PathBuf::from(file);
        if file.is_absolute() {
            file
        } else {
            self.base.join(file)
        }
    }

    /// `Some(None)` without a `[listener.tls]` table, `None` when it has errors.
    pub(super) fn listener_tls(
        &mut self,
        at: &str,
        raw: Option<RawListenerTls>,
    ) -> Option<Option<ListenerTlsConfig>> {
        let Some(mut raw) = raw else {
            return Some(None);
        };
        let at = path::key(at, "tls");
        let handshake_timeout = self.or_default(
            path::key(&at, "handshake_timeout"),
            raw.handshake_timeout.take(),
            DEFAULT_HANDSHAKE_TIMEOUT,
            |text| value::duration(&text),
        )?;
        let mode = raw.mode.take().unwrap_or_else(|| "terminate".into());
        match mode.as_str() {
            "passthrough" => {
                let terminate_only = [
                    ("cert", raw.cert.is_some()),
                    ("key", raw.key.is_some()),
                    ("certificate", !raw.certificate.is_empty()),
                    ("client_auth", raw.client_auth.is_some()),
                    ("client_ca", raw.client_ca.is_some()),
                    ("alpn", raw.alpn.is_some()),
                    ("min_version", raw.min_version.is_some()),
                    ("principal", raw.principal.is_some()),
                ];
                let mut ok = true;
                for (key, set) in terminate_only {
                    if set {
                        self.error(
                            path::key(&at, key),
                            "only applies to mode = \"terminate\"; passthrough never decrypts"
                                .into(),
                        );
                        ok = false;
                    }
                }
                ok.then_some(Some(ListenerTlsConfig::Passthrough { handshake_timeout }))
            }
            "terminate" => self.termination(&at, raw, handshake_timeout).map(Some),
            other => {
                self.error(
                    path::key(&at, "mode"),
                    format!(
                        "unknown TLS mode {other:?}: expected \"terminate\" or \"passthrough\""
                    ),
                );
                None
            }
        }
    }

    fn termination(
        &mut self,
        at: &str,
        raw: RawListenerTls,
        handshake_timeout: Duration,
    ) -> Option<ListenerTlsConfig> {
        let cert_at = path::key(at, "cert");
        let cert = self
            .required(&cert_at, raw.cert)
            .map(|f| self.file(cert_at, f, FileKind::CertChain));
        let key_at = path::key(at, "key");
        let key = self
            .required(&key_at, raw.key)
            .map(|f| self.file(key_at, f, FileKind::PrivateKey));
        let mut by_name = Some(Vec::new());
        for (i, entry) in raw.certificate.into_iter().enumerate() {
            let entry_at = path::index(&path::key(at, "certificate"), i);
            let names = self.required(&path::key(&entry_at, "names"), entry.names);
            let cert_at = path::key(&entry_at, "cert");
            let cert = self
                .required(&cert_at, entry.cert)
                .map(|f| self.file(cert_at, f, FileKind::CertChain));
            let key_at = path::key(&entry_at, "key");
            let key = self
                .required(&key_at, entry.key)
                .map(|f| self.file(key_at, f, FileKind::PrivateKey));
            if names.as_ref().is_some_and(Vec::is_empty) {
                self.error(
                    path::key(&entry_at, "names"),
                    "list at least one server name".into(),
                );
                by_name = None;
                continue;
            }
            match (names, cert, key, by_name.as_mut()) {
                (Some(names), Some(cert), Some(key), Some(list)) => {
                    list.push((names, CertFiles { cert, key }))
                }
                _ => by_name = None,
            }
        }
        let min_version = self.or_default(
            path::key(at, "min_version"),
            raw.min_version,
            MinTlsVersion::Tls12,
            |text| match text.as_str() {
                "1.2" => Ok(MinTlsVersion::Tls12),
                "1.3" => Ok(MinTlsVersion::Tls13),
                _ => Err(format!(
                    "unsupported minimum TLS version {text:?}: expected \"1.2\" or \"1.3\""
                )),
            },
        );
        let client_auth = self.or_default(
            path::key(at, "client_auth"),
            raw.client_auth,
            ClientAuth::Off,
            |text| match text.as_str() {
                "off" => Ok(ClientAuth::Off),
                "optional" => Ok(ClientAuth::Optional),
                "required" => Ok(ClientAuth::Required),
                _ => Err(format!(
                    "unknown client_auth {text:?}: expected \"off\", \"optional\" or \"required\""
                )),
            },
        );
        let principal = self.or_default(
            path::key(at, "principal"),
            raw.principal,
            PrincipalSource::CommonName,
            |text| match text.as_str() {
                "cn" => Ok(PrincipalSource::CommonName),
                "san" => Ok(PrincipalSource::SubjectAltName),
                "subject" => Ok(PrincipalSource::Subject),
                _ => Err(format!(
                    "unknown principal source {text:?}: expected \"cn\", \"san\" or \"subject\""
                )),
            },
        );
        let client_ca = raw
            .client_ca
            .map(|f| self.file(path::key(at, "client_ca"), f, FileKind::CaBundle));
        if client_auth.is_some_and(|auth| auth != ClientAuth::Off) && client_ca.is_none() {
            self.error(
                path::key(at, "client_ca"),
                "required when client_auth is \"optional\" or \"required\"".into(),
            );
            return None;
        }
        Some(ListenerTlsConfig::Terminate {
            server: TlsServerOptions {
                default: CertFiles {
                    cert: cert?,
                    key: key?,
                },
                by_name: by_name?,
                min_version: min_version?,
                alpn: raw.alpn.unwrap_or_default(),
                client_auth: client_auth?,
                client_ca,
            },
            principal: principal?,
            handshake_timeout,
        })
    }

    /// `Some(None)` without a `[cluster.NAME.tls]` table.
    pub(super) fn cluster_tls(
        &mut self,
        at: &str,
        raw: Option<RawClusterTls>,
    ) -> Option<Option<ClusterTlsConfig>> {
        let Some(raw) = raw else { return Some(None) };
        let at = path::key(at, "tls");
        if raw.cert.is_some() != raw.key.is_some() {
            let missing = if raw.cert.is_some() { "key" } else { "cert" };
            self.error(
                path::key(&at, missing),
                "a client certificate needs both cert and key".into(),
            );
            return None;
        }
        Some(Some(ClusterTlsConfig {
            ca: raw
                .ca
                .map(|f| self.file(path::key(&at, "ca"), f, FileKind::CaBundle)),
            server_name: raw.server_name,
            cert: raw
                .cert
                .map(|f| self.file(path::key(&at, "cert"), f, FileKind::CertChain)),
            key: raw
                .key
                .map(|f| self.file(path::key(&at, "key"), f, FileKind::PrivateKey)),
            insecure_skip_verify: raw.insecure_skip_verify.unwrap_or(false),
        }))
    }
}
