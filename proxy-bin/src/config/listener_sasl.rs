//! A Kafka listener's `[listener.sasl]` table: passthrough (the default), inspect or terminate.

use std::time::Duration;

use proxy_core::sasl::Mechanism;
use proxy_frontend::ClientAuth;
use serde::Deserialize;

use super::files::FileKind;
use super::validate::Validator;
use super::{KafkaSaslConfig, ListenerTlsConfig, RouteConfig, path, value};

/// How long a client may take to authenticate, unless configured.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The first delay after a failed authentication from one address, unless configured; it
/// doubles with each further failure (Kafka's `connection.failed.authentication.delay.ms` is
/// 100 ms).
const DEFAULT_FAILURE_DELAY: Duration = Duration::from_millis(100);
/// Sessions authenticating at once on one listener, unless configured: each holds a socket
/// and up to 512 KiB of frame before anyone is known.
const DEFAULT_MAX_UNAUTHENTICATED: usize = 1024;
/// Sessions authenticating at once from one client (IPv6: one /64), unless configured. A
/// client authenticates in milliseconds; many at once from one address is a flood, or many
/// clients behind one NAT starting together (raise it for those).
const DEFAULT_MAX_UNAUTHENTICATED_PER_SOURCE: usize = 128;
/// KIP-368 clients re-authenticate shortly before the lifetime passes; below a second that
/// would be most of their traffic.
const MIN_SESSION_LIFETIME: Duration = Duration::from_secs(1);

/// `[listener.sasl]`, as written.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawListenerSasl {
    pub(super) mode: Option<String>,
    pub(super) mechanisms: Option<Vec<String>>,
    pub(super) users: Option<String>,
    pub(super) allow_plain_without_tls: Option<bool>,
    pub(super) timeout: Option<String>,
    pub(super) session_lifetime: Option<String>,
    pub(super) accept_mtls_principal: Option<bool>,
    pub(super) failure_delay: Option<String>,
    pub(super) max_unauthenticated: Option<i64>,
    pub(super) max_unauthenticated_per_source: Option<i64>,
}

impl RawListenerSasl {
    /// The keys only `mode = "terminate"` takes, when given.
    fn terminate_only(&self) -> Vec<&'static str> {
        [
            ("users", self.users.is_some()),
            ("timeout", self.timeout.is_some()),
            ("session_lifetime", self.session_lifetime.is_some()),
            (
                "accept_mtls_principal",
                self.accept_mtls_principal.is_some(),
            ),
            ("failure_delay", self.failure_delay.is_some()),
            ("max_unauthenticated", self.max_unauthenticated.is_some()),
            (
                "max_unauthenticated_per_source",
                self.max_unauthenticated_per_source.is_some(),
            ),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect()
    }
}

impl Validator {
    /// The listener's SASL handling; `Some(None)` for passthrough.
    pub(super) fn listener_sasl(
        &mut self,
        listener: &str,
        raw: Option<RawListenerSasl>,
        tls: Option<&Option<ListenerTlsConfig>>,
    ) -> Option<Option<KafkaSaslConfig>> {
        let Some(raw) = raw else {
            return Some(None);
        };
        let at = path::key(listener, "sasl");
        let mode_at = path::key(&at, "mode");
        let mode = self.required(&mode_at, raw.mode.clone())?;
        match mode.as_str() {
            "passthrough" => {
                let mut extra = raw.terminate_only();
                if raw.mechanisms.is_some() {
                    extra.push("mechanisms");
                }
                if raw.allow_plain_without_tls.is_some() {
                    extra.push("allow_plain_without_tls");
                }
                for key in extra {
                    self.error(
                        path::key(&at, key),
                        "mode = \"passthrough\" leaves SASL to the broker and takes no other key"
                            .into(),
                    );
                }
                Some(None)
            }
            "inspect" => {
                for key in raw.terminate_only() {
                    self.error(
                        path::key(&at, key),
                        "only for mode = \"terminate\" (inspection leaves authentication to the \
                         broker)"
                            .into(),
                    );
                }
                let mechanisms = self.mechanisms(&at, &raw, tls)?;
                Some(Some(KafkaSaslConfig::Inspect { mechanisms }))
            }
            "terminate" => self.terminate(&at, raw, tls).map(Some),
            other => {
                self.error(
                    mode_at,
                    format!(
                        "unknown mode {other:?}: expected \"passthrough\", \"inspect\" or \
                         \"terminate\""
                    ),
                );
                None
            }
        }
    }

    fn terminate(
        &mut self,
        at: &str,
        raw: RawListenerSasl,
        tls: Option<&Option<ListenerTlsConfig>>,
    ) -> Option<KafkaSaslConfig> {
        let mechanisms = self.mechanisms(at, &raw, tls);
        let users_at = path::key(at, "users");
        let users = self
            .required(&users_at, raw.users)
            .map(|file| self.file(users_at.clone(), file, FileKind::Users));
        let timeout = self.or_default(
            path::key(at, "timeout"),
            raw.timeout,
            DEFAULT_TIMEOUT,
            |text| value::duration(&text),
        );
        let failure_delay = self.or_default(
            path::key(at, "failure_delay"),
            raw.failure_delay,
            DEFAULT_FAILURE_DELAY,
            |text| value::duration(&text),
        );
        let session_lifetime = self.or_default(
            path::key(at, "session_lifetime"),
            raw.session_lifetime,
            None,
            |text| {
                let lifetime = value::duration(&text)?;
                if lifetime < MIN_SESSION_LIFETIME {
                    return Err(format!(
                        "{text:?} is too short: at least 1s (leave the key out for sessions that \
                         never expire)"
                    ));
                }
                Ok(Some(lifetime))
            },
        );
        let max_unauthenticated = self
            .count(
                path::key(at, "max_unauthenticated"),
                raw.max_unauthenticated,
            )
            .map(|n| n.unwrap_or(DEFAULT_MAX_UNAUTHENTICATED));
        let max_unauthenticated_per_source = self
            .count(
                path::key(at, "max_unauthenticated_per_source"),
                raw.max_unauthenticated_per_source,
            )
            .map(|n| n.unwrap_or(DEFAULT_MAX_UNAUTHENTICATED_PER_SOURCE));
        let accept_mtls_principal = raw.accept_mtls_principal.unwrap_or(false);
        if accept_mtls_principal {
            let asks_for_certificates = matches!(
                tls,
                Some(Some(ListenerTlsConfig::Terminate { server, .. }))
                    if server.client_auth != ClientAuth::Off
            );
            if !asks_for_certificates {
                self.error(
                    path::key(at, "accept_mtls_principal"),
                    "needs [listener.tls] with client_auth = \"required\" or \"optional\": \
                     without client certificates there is no principal to accept"
                        .into(),
                );
            }
        }
        Some(KafkaSaslConfig::Terminate {
            mechanisms: mechanisms?,
            users: users?,
            timeout: timeout?,
            session_lifetime: session_lifetime?,
            accept_mtls_principal,
            failure_delay: failure_delay?,
            max_unauthenticated: max_unauthenticated?,
            max_unauthenticated_per_source: max_unauthenticated_per_source?,
        })
    }

    /// `mechanisms`: known names, no repeats, and PLAIN only over TLS unless explicitly allowed.
    fn mechanisms(
        &mut self,
        at: &str,
        raw: &RawListenerSasl,
        tls: Option<&Option<ListenerTlsConfig>>,
    ) -> Option<Vec<Mechanism>> {
        let mechanisms_at = path::key(at, "mechanisms");
        let names = self.required(&mechanisms_at, raw.mechanisms.clone())?;
        if names.is_empty() {
            self.error(
                mechanisms_at,
                "must name at least one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512".into(),
            );
            return None;
        }
        let mut mechanisms = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            match name.parse::<Mechanism>() {
                Ok(m) if mechanisms.contains(&m) => {
                    self.error(
                        path::index(&mechanisms_at, i),
                        format!("{name:?} is listed twice"),
                    );
                }
                Ok(m) => mechanisms.push(m),
                Err(err) => self.error(path::index(&mechanisms_at, i), err.to_string()),
            }
        }
        let encrypted = matches!(tls, Some(Some(ListenerTlsConfig::Terminate { .. })));
        if mechanisms.contains(&Mechanism::Plain)
            && !encrypted
            && raw.allow_plain_without_tls != Some(true)
        {
            self.error(
                mechanisms_at,
                "PLAIN sends passwords in the clear and this listener has no TLS: add a \
                 [listener.tls] table, or set allow_plain_without_tls = true to accept that"
                    .into(),
            );
            return None;
        }
        (mechanisms.len() == names.len()).then_some(mechanisms)
    }
}

/// Whether a Kafka listener authenticates every client before forwarding a byte: it terminates
/// SASL, or requires a client certificate. Anonymous clients reach no broker through it.
pub(super) fn authenticates_before_forwarding(
    sasl: &Option<Option<KafkaSaslConfig>>,
    tls: &Option<Option<ListenerTlsConfig>>,
) -> bool {
    matches!(sasl, Some(Some(KafkaSaslConfig::Terminate { .. })))
        || matches!(
            tls,
            Some(Some(ListenerTlsConfig::Terminate { server, .. }))
                if server.client_auth == ClientAuth::Required
        )
}

impl Validator {
    /// A Kafka listener's rules on `principal` need the principal before routing: SASL
    /// terminated by the proxy, or a client certificate.
    pub(super) fn principal_rules_need_authentication(
        &mut self,
        listener: &str,
        routes: Option<&[RouteConfig]>,
        sasl: &Option<Option<KafkaSaslConfig>>,
        tls: &Option<Option<ListenerTlsConfig>>,
    ) {
        let terminates = matches!(sasl, Some(Some(KafkaSaslConfig::Terminate { .. })));
        let certificates = matches!(
            tls,
            Some(Some(ListenerTlsConfig::Terminate { server, .. }))
                if server.client_auth != ClientAuth::Off
        );
        if terminates || certificates {
            return;
        }
        for (i, route) in routes.unwrap_or_default().iter().enumerate() {
            if route.principal.is_some() {
                self.error(
                    path::key(&path::index(&path::key(listener, "route"), i), "principal"),
                    "the principal is known before routing only when the proxy authenticates                      the client: set [listener.sasl] mode = \"terminate\" (or TLS client                      certificates)"
                        .into(),
                );
            }
        }
    }
}
