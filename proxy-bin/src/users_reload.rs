//! Reloading SASL-terminating listeners' users files when they change, so a user added or
//! removed with `sluice user` counts without a signal. Follows the certificate reload
//! ([`crate::tls_reload`]): the files are polled every 2 s.
//!
//! New authentications see the new users; sessions already authenticated are untouched. A file
//! that cannot be read or parsed keeps the previous users and is logged once per change of the
//! file. SIGHUP re-reads every users file at once ([`crate::reload_in_place`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proxy_core::sasl::{ReloadableUsers, UserStore};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::admin::{Outcome, Outcomes};
use crate::reload_in_place::{Reloaded, Requests, next_request};

/// How often users files are checked for changes.
const USERS_FILE_CHECK: Duration = Duration::from_secs(2);

use crate::file_stamp::{Stamp, stamp};

/// One users file and the users read from it, shared by every listener that names it.
#[derive(Debug)]
pub(crate) struct UsersFile {
    path: PathBuf,
    users: Arc<ReloadableUsers>,
    /// The version last read, whether it loaded or not: a broken file is reported once, and
    /// read again when it changes.
    stamp: Stamp,
    /// What its reloads came to, for `/metrics`.
    reloads: Arc<Outcomes>,
}

// === impl UsersFile ===

impl UsersFile {
    /// Reads and checks the file at `path`; the error names it.
    pub(crate) fn load(path: &Path) -> Result<Self, String> {
        let stamp = stamp(path);
        let store = read(path)?;
        if store.is_empty() {
            warn_empty(path);
        }
        Ok(Self {
            path: path.to_owned(),
            users: Arc::new(ReloadableUsers::new(store)),
            stamp,
            reloads: Arc::default(),
        })
    }

    /// Where the file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// What its reloads came to.
    pub(crate) fn reloads(&self) -> &Arc<Outcomes> {
        &self.reloads
    }

    /// The users, as listeners authenticate against them.
    pub(crate) fn users(&self) -> &Arc<ReloadableUsers> {
        &self.users
    }

    /// Reloads when the file changed (or always, when `forced`): `Ok(Some(count))` with the
    /// number of users when it did, `Ok(None)` when it had not changed (or changed again while
    /// being read: it is read at the next check); an error leaves the previous users in place.
    pub(crate) fn reload(&mut self, forced: bool) -> Result<Option<usize>, String> {
        let before = stamp(&self.path);
        if before == self.stamp && !forced {
            return Ok(None);
        }
        let read = read(&self.path);
        if stamp(&self.path) != before {
            // Changed while being read (written in place): read it again next time.
            return Ok(None);
        }
        self.stamp = before;
        let store = read?;
        let count = store.len();
        self.users.replace(store);
        Ok(Some(count))
    }
}

/// Reloads `files` when they change, and every one at once when `requests` asks (SIGHUP),
/// until `stop`.
pub(crate) async fn watch(
    mut files: Vec<UsersFile>,
    stop: CancellationToken,
    mut requests: Requests,
) {
    let mut tick = tokio::time::interval(USERS_FILE_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let request = tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => None,
            request = next_request(&mut requests) => Some(request),
        };
        let trigger = if request.is_some() {
            "SIGHUP"
        } else {
            "file changed"
        };
        let mut reloaded = Vec::new();
        for file in &mut files {
            let result = file.reload(request.is_some());
            let name = format!("users file {}", file.path.display());
            match result {
                Ok(Some(count)) => {
                    info!(file = %file.path.display(), users = count, trigger, "users file reloaded");
                    file.reloads.record(Outcome::Succeeded);
                    if count == 0 {
                        warn_empty(&file.path);
                    }
                    reloaded.push(Reloaded {
                        file: name,
                        error: None,
                    });
                }
                Ok(None) => {}
                Err(error) => {
                    warn!(file = %file.path.display(), error = %error, trigger, "users file reload failed; keeping the previous users");
                    file.reloads.record(Outcome::Failed);
                    reloaded.push(Reloaded {
                        file: name,
                        error: Some(error),
                    });
                }
            }
        }
        if let Some(request) = request {
            request.answer(reloaded);
        }
    }
}

/// The users in the file at `path`; the error names the file, never what it holds.
fn read(path: &Path) -> Result<UserStore, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read the users file {}: {err}", path.display()))?;
    UserStore::parse(&text).map_err(|err| format!("{}: {err}", path.display()))
}

fn warn_empty(path: &Path) {
    warn!(
        users = %path.display(),
        "the users file lists no users: every client authentication will fail"
    );
}

#[cfg(test)]
#[path = "users_reload_tests.rs"]
mod tests;
