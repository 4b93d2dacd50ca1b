//! Files that hold secrets: a cluster's password file and a listener's users file. Loading
//! refuses a password file that is a symbolic link out of its directory (where a swapped link
//! could hand Sluice another file); `sluice check` and `run`'s log warn when either kind of file
//! can be read by its group or others. Messages name the file and the key, never the content.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use super::{Config, KafkaSaslConfig, ListenerProtocol, path};

/// Refuses `file` when it is a symbolic link whose target (every link followed) is outside the
/// directory holding the link. Links within it (Kubernetes' `..data/` secret volumes) pass.
pub(super) fn check_link(kind: &str, file: &Path) -> Result<(), String> {
    let is_link = std::fs::symlink_metadata(file).is_ok_and(|meta| meta.file_type().is_symlink());
    if !is_link {
        // A missing file is reported when it is read.
        return Ok(());
    }
    let shown = file.display();
    let target = std::fs::canonicalize(file).map_err(|err| {
        format!("{kind} {shown} is a symbolic link that cannot be followed: {err}")
    })?;
    let dir = file
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if target.starts_with(&dir) {
        return Ok(());
    }
    Err(format!(
        "{kind} {shown} is a symbolic link to {}, outside {}: name the file itself, or link to \
         one in the same directory",
        target.display(),
        dir.display()
    ))
}

/// A warning when `file` (at the config key `at`) can be read by its group or others.
pub(super) fn mode_warning(at: &str, kind: &str, file: &Path) -> Option<String> {
    let mode = std::fs::metadata(file).ok()?.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return None;
    }
    let shown = file.display();
    Some(format!(
        "{at}: {kind} {shown} has mode {mode:04o}: its group or others can read or change it; \
         run chmod 600 {shown}"
    ))
}

// === impl Config ===

impl Config {
    /// Warnings for secret files readable beyond their owner: every terminating listener's
    /// users file and every cluster's password file.
    pub(super) fn secret_file_warnings(&self) -> Vec<String> {
        let users =
            self.listeners
                .iter()
                .enumerate()
                .filter_map(|(index, listener)| match &listener.protocol {
                    ListenerProtocol::Kafka(kafka) => match &kafka.sasl {
                        Some(KafkaSaslConfig::Terminate { users, .. }) => {
                            Some((format!("listener[{index}].sasl.users"), "users file", users))
                        }
                        _ => None,
                    },
                    _ => None,
                });
        let passwords = self.clusters.iter().filter_map(|(name, cluster)| {
            let file: &PathBuf = cluster.sasl_password_file.as_ref()?;
            let at = path::key(
                &path::key(&path::key("cluster", name), "sasl"),
                "password_file",
            );
            Some((at, "password file", file))
        });
        users
            .chain(passwords)
            .filter_map(|(at, kind, file)| mode_warning(&at, kind, file))
            .collect()
    }
}
