//! Reloading Kafka listeners' ACL rules files (`[listener.authorization] rules`) in place: when
//! the file changes (checked every 2 s) and at once on SIGHUP, before the reload's successor
//! starts, so sessions that stay with this process while it drains follow the new rules too.
//!
//! A session's next request is decided by the new rules; nothing else about it changes. A file
//! that cannot be read or parsed keeps the previous rules, and is logged once per change of the
//! file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proxy_kafka::authorization::SharedAcl;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::admin::{Outcome, Outcomes};
use crate::config::read_acl_rules;
use crate::file_stamp::{Stamp, stamp};

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

/// Reloads `files` when they change and on SIGHUP, until `stop`.
pub(crate) async fn watch(mut files: Vec<RulesFile>, stop: CancellationToken) {
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => Some(hangup),
        Err(err) => {
            warn!(error = %err, "cannot listen for SIGHUP: ACL rules reload only when their files change");
            None
        }
    };
    let mut tick = tokio::time::interval(RULES_FILE_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let trigger = tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => "file changed",
            Some(()) = async {
                match hangup.as_mut() {
                    Some(hangup) => hangup.recv().await,
                    None => std::future::pending().await,
                }
            } => "SIGHUP",
        };
        for file in &mut files {
            match file.reload(trigger == "SIGHUP") {
                Ok(Some(count)) => {
                    info!(file = %file.path.display(), rules = count, trigger, "authorization rules reloaded");
                    file.reloads.record(Outcome::Succeeded);
                }
                Ok(None) => {}
                Err(error) => {
                    warn!(file = %file.path.display(), error = %error, trigger, "authorization rules reload failed; keeping the previous rules");
                    file.reloads.record(Outcome::Failed);
                }
            }
        }
    }
}
