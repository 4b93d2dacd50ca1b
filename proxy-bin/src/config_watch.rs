//! `sluice run --reload-on-change`: a reload (as SIGHUP starts one) whenever the contents of the
//! `--config` file change, for a config mounted from a Kubernetes ConfigMap — the kubelet
//! replaces it with an atomic swap of a symlink, which no signal announces.
//!
//! The file is read every [`CHECK_INTERVAL`] through its symlinks and its contents compared,
//! not its time stamps: a swap can keep the size and the time of the file it points to. Each
//! version of the contents is tried once: a config that fails to load is reported (the status
//! file, the log, `/metrics`) and the process keeps serving on the one it has, until the file
//! changes again.

use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::{Interval, MissedTickBehavior};
use tracing::{debug, info, warn};

/// How often the file is read.
const CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// The `--config` file, and the version of its contents last acted on.
#[derive(Debug)]
pub(crate) struct ConfigWatch {
    path: PathBuf,
    /// The contents this process loaded, or last started a reload for.
    attempted: Option<u64>,
    /// Whether the last read failed (reported once until it reads again).
    unreadable: bool,
    /// Made on the first wait, inside the runtime.
    ticks: Option<Interval>,
}

impl ConfigWatch {
    /// Watches `path`, whose current contents are those this process is about to load: read
    /// before the config is, so that a change racing the load shows as a change.
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            attempted: digest(path).ok(),
            unreadable: false,
            ticks: None,
        }
    }

    /// Resolves when the contents differ from those last acted on; cancel safe.
    pub(crate) async fn changed(&mut self) {
        let ticks = self.ticks.get_or_insert_with(|| {
            let mut ticks = tokio::time::interval_at(
                tokio::time::Instant::now() + CHECK_INTERVAL,
                CHECK_INTERVAL,
            );
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            ticks
        });
        // Bounded per call by the file changing; each round waits one interval.
        loop {
            ticks.tick().await;
            match digest(&self.path) {
                Ok(now) => {
                    self.unreadable = false;
                    if self.attempted != Some(now) {
                        self.attempted = Some(now);
                        info!(path = %self.path.display(), "config file changed: reloading");
                        return;
                    }
                }
                Err(err) if !self.unreadable => {
                    self.unreadable = true;
                    warn!(
                        path = %self.path.display(),
                        error = %err,
                        "cannot read the config file to watch it; serving on the config loaded"
                    );
                }
                Err(err) => {
                    debug!(path = %self.path.display(), error = %err, "config file still unreadable")
                }
            }
        }
    }
}

/// A digest of the file's contents, following symlinks.
pub(crate) fn digest(path: &Path) -> std::io::Result<u64> {
    let contents = std::fs::read(path)?;
    let mut hasher = DefaultHasher::new();
    contents.hash(&mut hasher);
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory laid out as the kubelet mounts a ConfigMap: `sluice.toml -> ..data/sluice.toml`,
    /// `..data -> ..VERSION`.
    struct Mounted {
        dir: PathBuf,
        version: u32,
    }

    impl Mounted {
        fn new(name: &str, contents: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("sluice-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let mut mounted = Self { dir, version: 0 };
            mounted.swap(contents);
            std::os::unix::fs::symlink("..data/sluice.toml", mounted.file()).unwrap();
            mounted
        }

        fn file(&self) -> PathBuf {
            self.dir.join("sluice.toml")
        }

        /// A new version: written beside the old one, then `..data` swapped by a rename.
        fn swap(&mut self, contents: &str) {
            self.version += 1;
            let version = format!("..v{}", self.version);
            std::fs::create_dir_all(self.dir.join(&version)).unwrap();
            std::fs::write(self.dir.join(&version).join("sluice.toml"), contents).unwrap();
            let tmp = self.dir.join("..data_tmp");
            std::os::unix::fs::symlink(&version, &tmp).unwrap();
            std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
        }
    }

    impl Drop for Mounted {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_symlink_swap_is_a_change_and_each_version_is_acted_on_once() {
        let mut mounted = Mounted::new("watch", "a = 1\n");
        let mut watch = ConfigWatch::new(&mounted.file());
        // Nothing changed: no reload within several intervals.
        let quiet = tokio::time::timeout(CHECK_INTERVAL * 3, watch.changed()).await;
        assert!(quiet.is_err(), "a reload without a change");

        // Same length, same contents but one byte: the kubelet's swap.
        mounted.swap("a = 2\n");
        tokio::time::timeout(CHECK_INTERVAL * 2, watch.changed())
            .await
            .expect("the swap was not seen");
        // Acted on once: no second reload for the same version.
        let again = tokio::time::timeout(CHECK_INTERVAL * 3, watch.changed()).await;
        assert!(again.is_err(), "the same version reloaded twice");

        // Back to the first version is a change too.
        mounted.swap("a = 1\n");
        tokio::time::timeout(CHECK_INTERVAL * 2, watch.changed())
            .await
            .expect("the second swap was not seen");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreadable_file_is_no_change_and_its_return_with_new_contents_is() {
        let mounted = Mounted::new("watch-gone", "a = 1\n");
        let mut watch = ConfigWatch::new(&mounted.file());
        std::fs::remove_file(mounted.dir.join("..data")).unwrap();
        let gone = tokio::time::timeout(CHECK_INTERVAL * 3, watch.changed()).await;
        assert!(gone.is_err(), "a missing file started a reload");
        assert!(watch.unreadable);
        std::os::unix::fs::symlink("..v1", mounted.dir.join("..data")).unwrap();
        std::fs::write(mounted.dir.join("..v1/sluice.toml"), "a = 3\n").unwrap();
        tokio::time::timeout(CHECK_INTERVAL * 2, watch.changed())
            .await
            .expect("the new contents were not seen");
        assert!(!watch.unreadable);
    }
}
