//! Reloading Kafka listeners' ACL rules files (`[listener.authorization] rules`) in place: when
//! the file changes (checked every 2 s) and at once on SIGHUP ([`crate::reload_in_place`]).
//!
//! A session's next request is decided by the new rules; nothing else about it changes. A file
//! that cannot be read or parsed keeps the previous rules, and is logged once per change of the
//! file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proxy_kafka::authorization::SharedAcl;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::admin::{Outcome, Outcomes};
use crate::config::read_acl_rules;
use crate::file_stamp::{Stamp, stamp};
use crate::reload_in_place::{Reloaded, Requests, next_request};

/// How often rules files are checked for changes.
const RULES_FILE_CHECK: Duration = Duration::from_secs(2);

/// One rules file and the listeners deciding by it.
#[derive(Debug)]
pub(crate) struct RulesFile {
    path: PathBuf,
    acls: Vec<Arc<SharedAcl>>,
    /// The version last read, whether it loaded or not.
    stamp: Stamp,
    reloads: Arc<Outcomes>,
}

impl RulesFile {
    /// Reads the file at `path` into a listener's rules; the error names the file and the rule.
    pub(crate) fn load(path: &Path) -> Result<(Self, Arc<SharedAcl>), String> {
        let stamp = stamp(path);
        let acl = Arc::new(SharedAcl::new(read_acl_rules(path)?));
        Ok((
            Self {
                path: path.to_owned(),
                acls: vec![acl.clone()],
                stamp,
                reloads: Arc::default(),
            },
            acl,
        ))
    }

    /// Where the file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// What its reloads came to.
    pub(crate) fn reloads(&self) -> &Arc<Outcomes> {
        &self.reloads
    }

    /// Another listener deciding by the same file.
    pub(crate) fn share(&mut self) -> Arc<SharedAcl> {
        let acl = Arc::new(SharedAcl::new(
            self.acls
                .first()
                .map(|acl| (*acl.load()).clone())
                .unwrap_or_default(),
        ));
        self.acls.push(acl.clone());
        acl
    }

    /// Reloads when the file changed (or always, when `forced`): `Ok(Some(rules))` with the
    /// number of rules when it did, `Ok(None)` when there was nothing new to read.
    fn reload(&mut self, forced: bool) -> Result<Option<usize>, String> {
        let before = stamp(&self.path);
        if before == self.stamp && !forced {
            return Ok(None);
        }
        let read = read_acl_rules(&self.path);
        if stamp(&self.path) != before {
            // Changed while being read: read it again at the next check.
            return Ok(None);
        }
        self.stamp = before;
        let acl = read?;
        let count = acl.rules().len();
        for shared in &self.acls {
            shared.replace(acl.clone());
        }
        Ok(Some(count))
    }
}

/// Reloads `files` when they change, and every one at once when `requests` asks (SIGHUP),
/// until `stop`.
pub(crate) async fn watch(
    mut files: Vec<RulesFile>,
    stop: CancellationToken,
    mut requests: Requests,
) {
    let mut tick = tokio::time::interval(RULES_FILE_CHECK);
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
            let name = format!("ACL rules file {}", file.path.display());
            match file.reload(request.is_some()) {
                Ok(Some(count)) => {
                    info!(file = %file.path.display(), rules = count, trigger, "authorization rules reloaded");
                    file.reloads.record(Outcome::Succeeded);
                    reloaded.push(Reloaded {
                        file: name,
                        error: None,
                    });
                }
                Ok(None) => {}
                Err(error) => {
                    warn!(file = %file.path.display(), error = %error, trigger, "authorization rules reload failed; keeping the previous rules");
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
