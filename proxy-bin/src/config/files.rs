//! The files a config names: certificate chains, private keys, CA bundles and users files,
//! read when a config file is loaded ([`super::load()`]) so that every missing, unreadable or
//! malformed one is reported at its own key, with the operating system's reason, in the same
//! run as every other error. Cluster password files are read by the validator itself
//! ([`super::cluster_sasl`]), since the config holds the password.

use std::path::PathBuf;

use proxy_core::sasl::UserStore;
use proxy_core::tls::{load_ca_bundle, load_cert_chain, load_private_key};

use super::error::{ConfigError, with_causes};

/// What a file is expected to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FileKind {
    /// A PEM certificate chain, leaf first.
    CertChain,
    /// A PEM private key.
    PrivateKey,
    /// PEM certificates to trust.
    CaBundle,
    /// A users file written by `sluice user add`.
    Users,
    /// An ACL rules file (`[listener.authorization] rules`).
    AclRules,
}

/// A file named by the key at `at`, its path resolved against the config file's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FileRef {
    pub(super) at: String,
    pub(super) path: PathBuf,
    pub(super) kind: FileKind,
}

/// Reads every file, returning an error at its key for each one that cannot be used.
pub(super) fn check(files: &[FileRef]) -> Vec<ConfigError> {
    files
        .iter()
        .filter_map(|file| {
            let message = match file.kind {
                FileKind::CertChain => load_cert_chain(&file.path).err().map(|e| with_causes(&e)),
                FileKind::PrivateKey => load_private_key(&file.path).err().map(|e| with_causes(&e)),
                FileKind::CaBundle => load_ca_bundle(&file.path).err().map(|e| with_causes(&e)),
                FileKind::Users => users(file).err(),
                FileKind::AclRules => acl_rules(file).err(),
            }?;
            Some(ConfigError::new(file.at.clone(), message))
        })
        .collect()
}

/// An ACL rules file must be readable and every rule well-formed; the error names the file,
/// then each rule and key at fault (`acl.toml: rule[2].operations: unknown operation ...`).
fn acl_rules(file: &FileRef) -> Result<proxy_kafka::authorization::Acl, String> {
    read_acl_rules(&file.path)
}

/// The rules in the file at `path`, or what is wrong with it.
pub(crate) fn read_acl_rules(
    path: &std::path::Path,
) -> Result<proxy_kafka::authorization::Acl, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read the rules file {shown}: {err}"))?;
    proxy_kafka::authorization::Acl::parse(&text).map_err(|err| format!("{shown}: {err}"))
}

/// A users file must be readable and well-formed (an empty one is allowed: it is logged when
/// the listener starts).
fn users(file: &FileRef) -> Result<(), String> {
    let shown = file.path.display();
    let text = std::fs::read_to_string(&file.path)
        .map_err(|err| format!("cannot read the users file {shown}: {err}"))?;
    UserStore::parse(&text).map_err(|err| format!("{shown}: {}", with_causes(&err)))?;
    Ok(())
}
