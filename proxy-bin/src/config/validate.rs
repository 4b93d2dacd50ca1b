//! The second pass: raw values checked and turned into the public [`Config`] types, with every
//! error collected rather than returned at the first one.
//!
//! Each check records what is wrong with one value and yields `None` for it; a listener or
//! cluster is only assembled when all of its values are good. The result is an error whenever
//! anything was recorded, so a partly built config never escapes. Listener checks live in
//! [`super::listener`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::error::ConfigError;
use super::files::{FileKind, FileRef};
use super::first_pass::FirstPass;
use super::raw::RawCluster;
use super::{ClusterConfig, Config, addr, path, value};

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const BACKEND_EXPECTED: &str =
    "expected HOST:PORT such as 127.0.0.1:9092, [::1]:9092 or broker.example:9092";

/// What the second pass found.
#[derive(Debug)]
pub(super) struct Checked {
    /// The config, when nothing was wrong with it.
    pub(super) config: Option<Config>,
    /// The first pass's errors, then the second's.
    pub(super) errors: Vec<ConfigError>,
    /// Every certificate, key, CA bundle and users file the config names, for
    /// [`super::files::check`].
    pub(super) files: Vec<FileRef>,
}

/// Checks `first`'s document; `base` is the directory relative file paths are resolved
/// against.
pub(super) fn validate(first: FirstPass, base: &std::path::Path) -> Checked {
    let FirstPass {
        raw,
        errors: first_errors,
        removed,
        ..
    } = first;
    let mut v = Validator {
        base: base.to_path_buf(),
        errors: Vec::new(),
        files: Vec::new(),
        binds: Vec::new(),
    };
    // Names are taken before the clusters are checked so that a listener naming a cluster with
    // a bad value is not also told that the cluster does not exist.
    let cluster_names: Vec<String> = raw.cluster.keys().cloned().collect();
    let listeners = v.listeners(raw.listener, &cluster_names);
    let clusters = v.clusters(raw.cluster);
    let shutdown = v.shutdown(raw.shutdown);
    let admin = v.admin(raw.admin);
    let limits = v.limits(raw.limits);
    let audit = v.audit(raw.audit, &cluster_names);
    v.broker_port_collisions(&listeners, admin.flatten().as_ref());
    v.admin_port_collisions(admin.flatten().as_ref());
    v.process_frame_budget(&listeners, limits.as_ref());
    // A key the first pass took out for its type reads as absent here: its error is said.
    v.errors
        .retain(|error| !removed.iter().any(|key| path::encloses(key, &error.path)));
    let config = match (shutdown, admin, limits, audit) {
        (Some(shutdown), Some(admin), Some(limits), Some(audit)) if v.errors.is_empty() => {
            Some(Config {
                listeners: listeners
                    .into_iter()
                    .map(|(_, listener)| listener)
                    .collect(),
                clusters,
                shutdown,
                admin,
                limits,
                audit,
            })
        }
        _ => None,
    };
    let mut errors = first_errors;
    errors.append(&mut v.errors);
    Checked {
        config: config.filter(|_| errors.is_empty()),
        errors,
        files: v.files,
    }
}

/// Collects errors while the config is checked.
#[derive(Debug)]
pub(super) struct Validator {
    /// Relative file paths are resolved against this: the config file's directory.
    pub(super) base: std::path::PathBuf,
    /// In the order found; put in file order once every check has run.
    errors: Vec<ConfigError>,
    /// The files the config names, read after validation when a file is loaded.
    files: Vec<FileRef>,
    /// Every listener's bind address that parsed, with the listener's path, in file order:
    /// other sockets must not take their ports, whatever else is wrong with the listener.
    pub(super) binds: Vec<(std::net::SocketAddr, String)>,
}

// === impl Validator ===

impl Validator {
    /// `file` as written, resolved against the config file's directory when relative, and
    /// recorded to be read as a `kind` file (with errors at `at`).
    pub(super) fn file(&mut self, at: String, file: String, kind: FileKind) -> PathBuf {
        let path = self.resolve(file);
        self.files.push(FileRef {
            at,
            path: path.clone(),
            kind,
        });
        path
    }

    pub(super) fn error(&mut self, at: String, message: String) {
        self.errors.push(ConfigError::new(at, message));
    }

    /// `value`, recording a "missing required key" error at `at` when it is absent.
    pub(super) fn required<T>(&mut self, at: &str, value: Option<T>) -> Option<T> {
        if value.is_none() {
            self.error(at.to_owned(), "missing required key".into());
        }
        value
    }

    /// `default` when the key is absent, else `parse`d, recording the error if that fails.
    pub(super) fn or_default<R, T>(
        &mut self,
        at: String,
        raw: Option<R>,
        default: T,
        parse: impl FnOnce(R) -> Result<T, String>,
    ) -> Option<T> {
        match raw.map(parse) {
            None => Some(default),
            Some(Ok(value)) => Some(value),
            Some(Err(message)) => {
                self.error(at, message);
                None
            }
        }
    }

    fn clusters(&mut self, raw: BTreeMap<String, RawCluster>) -> BTreeMap<String, ClusterConfig> {
        raw.into_iter()
            .filter_map(|(name, raw)| {
                let at = path::key("cluster", &name);
                Some((name, self.cluster(&at, raw)?))
            })
            .collect()
    }

    fn cluster(&mut self, at: &str, raw: RawCluster) -> Option<ClusterConfig> {
        let backends_at = path::key(at, "backends");
        let exec = self.exec(at, raw.exec, raw.child_stop_timeout)?;
        let backends = match (&exec, raw.backends) {
            (Some(_), Some(_)) => {
                self.error(backends_at, "set either backends or exec, not both".into());
                None
            }
            (Some(_), None) => Some(Vec::new()),
            (None, backends) => self
                .required(&backends_at, backends)
                .and_then(|list| self.backends(&backends_at, &list)),
        };
        let ready_requires = self.ready_requires(at, raw.ready_requires, exec.is_some());
        let probe_interval = self.probe_interval(at, raw.probe_interval);
        let connect_timeout = self.or_default(
            path::key(at, "connect_timeout"),
            raw.connect_timeout,
            DEFAULT_CONNECT_TIMEOUT,
            |text| value::duration(&text),
        );
        let send_proxy_protocol = self.send_proxy_protocol(at, raw.send_proxy_protocol);
        let has_tls = raw.tls.is_some();
        let tls = self.cluster_tls(at, raw.tls);
        let sasl = self.cluster_sasl(at, raw.sasl, has_tls, exec.is_some());
        let (sasl, sasl_password_file) = match sasl? {
            Some((sasl, file)) => (Some(sasl), Some(file)),
            None => (None, None),
        };
        Some(ClusterConfig {
            backends: backends?,
            connect_timeout: connect_timeout?,
            send_proxy_protocol: send_proxy_protocol?,
            exec,
            ready_requires: ready_requires?,
            probe_interval: probe_interval?,
            tls: tls?,
            sasl,
            sasl_password_file,
        })
    }

    fn backends(&mut self, at: &str, list: &[String]) -> Option<Vec<super::BackendAddr>> {
        if list.is_empty() {
            self.error(
                at.to_owned(),
                "no backends: list at least one HOST:PORT".into(),
            );
            return None;
        }
        let mut backends = Some(Vec::with_capacity(list.len()));
        for (i, text) in list.iter().enumerate() {
            match (addr::parse_backend(text), backends.as_mut()) {
                (Ok(backend), Some(backends)) => backends.push(backend),
                (Ok(_), None) => {}
                // Keep going so every bad entry in the list is reported.
                (Err(why), _) => {
                    self.error(
                        path::index(at, i),
                        format!("invalid backend address {text:?}: {why}; {BACKEND_EXPECTED}"),
                    );
                    backends = None;
                }
            }
        }
        backends
    }
}
