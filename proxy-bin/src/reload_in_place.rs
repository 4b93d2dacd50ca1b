//! SIGHUP without a successor when only files that reload in place can have changed.
//!
//! Listener certificates, users files and ACL rules files are re-read by this process on their
//! own (their watchers poll them). A SIGHUP that finds the config file and the files only a new
//! process reads (a cluster's TLS files and password file) as they were at start-up re-reads
//! the others at once, in place: no session is touched, and an open Kafka session's next
//! request is decided by the rules just read. Any other SIGHUP reloads through a successor, as
//! an upgrade does; the in-place files are re-read first then too, so the sessions that stay
//! with this process while it drains follow them.

use std::path::{Path, PathBuf};

use tokio::sync::{mpsc, oneshot};

use crate::config::Config;

/// A request to a file watcher: re-read every file now, and answer with what came of each.
#[derive(Debug)]
pub(crate) struct ReloadNow(oneshot::Sender<Vec<Reloaded>>);

impl ReloadNow {
    /// Answers the request (a requester that gave up is no matter).
    pub(crate) fn answer(self, reloaded: Vec<Reloaded>) {
        let _ = self.0.send(reloaded);
    }
}

/// What one file's forced reload came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reloaded {
    /// Which file, as an operator names it: "users file /etc/sluice/users".
    pub(crate) file: String,
    /// Why the previous version was kept, when it was.
    pub(crate) error: Option<String>,
}

/// Where a watcher hears [`ReloadNow`] requests.
pub(crate) type Requests = mpsc::Receiver<ReloadNow>;

/// Waits for the next request; never resolves when there can be none (no requester left).
pub(crate) async fn next_request(requests: &mut Requests) -> ReloadNow {
    match requests.recv().await {
        Some(request) => request,
        None => std::future::pending().await,
    }
}

/// The file watchers of this process, asked to re-read everything on SIGHUP.
#[derive(Debug, Default)]
pub(crate) struct InPlaceFiles {
    watchers: Vec<mpsc::Sender<ReloadNow>>,
}

impl InPlaceFiles {
    /// A new watcher's end of the requests.
    pub(crate) fn watcher(&mut self) -> Requests {
        let (sender, requests) = mpsc::channel(1);
        self.watchers.push(sender);
        requests
    }

    /// Has every watcher re-read its files; what came of each, in watcher order.
    pub(crate) async fn reload(&self) -> Vec<Reloaded> {
        let mut all = Vec::new();
        for watcher in &self.watchers {
            let (answer, answered) = oneshot::channel();
            if watcher.send(ReloadNow(answer)).await.is_ok()
                && let Ok(reloaded) = answered.await
            {
                all.extend(reloaded);
            }
        }
        all
    }
}

/// What only a new process reads: the config file, and the files of its clusters.
#[derive(Debug, Default)]
pub(crate) struct SuccessorInputs {
    /// The `--config` file and a digest of its contents when this process read it; `None`
    /// with the embedded default config.
    config: Option<(PathBuf, Option<u64>)>,
    /// Each cluster file by its key, with a digest of its contents after the config loaded.
    cluster_files: Vec<(String, PathBuf, Option<u64>)>,
}

impl SuccessorInputs {
    /// Takes the config file's digest: call before the config is read, so a change racing the
    /// load shows as a change.
    pub(crate) fn before_load(config: Option<&Path>) -> Self {
        Self {
            config: config.map(|path| (path.to_owned(), digest(path))),
            cluster_files: Vec::new(),
        }
    }

    /// Adds the digests of the files `config`'s clusters name.
    pub(crate) fn after_load(mut self, config: &Config) -> Self {
        for (name, cluster) in &config.clusters {
            let tls = cluster.tls.iter().flat_map(|tls| {
                [
                    ("tls.ca", &tls.ca),
                    ("tls.cert", &tls.cert),
                    ("tls.key", &tls.key),
                ]
            });
            let password = [("sasl.password_file", &cluster.sasl_password_file)];
            for (key, path) in tls.chain(password) {
                if let Some(path) = path {
                    self.cluster_files.push((
                        format!("cluster.{name}.{key}"),
                        path.clone(),
                        digest(path),
                    ));
                }
            }
        }
        self
    }

    /// What changed since, named for the log and the status file; `None` when nothing did and
    /// a reload can happen in place.
    pub(crate) fn changed(&self) -> Option<String> {
        if let Some((path, loaded)) = &self.config
            && (loaded.is_none() || digest(path) != *loaded)
        {
            return Some(format!("the config file {} changed", path.display()));
        }
        self.cluster_files
            .iter()
            .find(|(_, path, loaded)| loaded.is_none() || digest(path) != *loaded)
            .map(|(key, path, _)| format!("{key} ({}) changed", path.display()))
    }
}

/// A digest of the file's contents, following symlinks; `None` when it cannot be read.
fn digest(path: &Path) -> Option<u64> {
    crate::config_watch::digest(path).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sluice-reload-in-place-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|err| panic!("{err}"));
        dir
    }

    fn config_with_cluster_ca(dir: &Path) -> Config {
        let text = format!(
            "[[listener]]\nname = \"l\"\nprotocol = \"tcp\"\nbind = \"127.0.0.1:0\"\ncluster = \"main\"\n\n\
             [cluster.main]\nbackends = [\"127.0.0.1:9\"]\n\
             [cluster.main.tls]\nca = \"{}\"\n",
            dir.join("ca.pem").display()
        );
        crate::config::parse(&text).unwrap_or_else(|err| panic!("{err}"))
    }

    #[test]
    fn nothing_changed_is_in_place_and_each_change_is_named() {
        let dir = temp("changes");
        let config_path = dir.join("sluice.toml");
        std::fs::write(&config_path, "# a config\n").unwrap_or_else(|err| panic!("{err}"));
        std::fs::write(dir.join("ca.pem"), "first").unwrap_or_else(|err| panic!("{err}"));
        let inputs = SuccessorInputs::before_load(Some(&config_path))
            .after_load(&config_with_cluster_ca(&dir));
        assert_eq!(inputs.changed(), None);

        // Rewritten with the same bytes: still nothing changed (contents, not time stamps).
        std::fs::write(dir.join("ca.pem"), "first").unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(inputs.changed(), None);

        std::fs::write(dir.join("ca.pem"), "second").unwrap_or_else(|err| panic!("{err}"));
        let changed = inputs.changed().unwrap_or_default();
        assert!(changed.starts_with("cluster.main.tls.ca ("), "{changed}");

        std::fs::write(&config_path, "# edited\n").unwrap_or_else(|err| panic!("{err}"));
        let changed = inputs.changed().unwrap_or_default();
        assert!(changed.starts_with("the config file "), "{changed}");

        // Gone is changed too: a successor says what is wrong with it.
        std::fs::remove_file(&config_path).unwrap_or_else(|err| panic!("{err}"));
        assert!(inputs.changed().is_some());
    }

    #[test]
    fn the_embedded_default_config_never_changes() {
        let inputs = SuccessorInputs::before_load(None).after_load(
            &crate::config::parse(crate::config::DEFAULT_CONFIG)
                .unwrap_or_else(|err| panic!("{err}")),
        );
        assert_eq!(inputs.changed(), None);
    }

    #[tokio::test]
    async fn every_watcher_answers_and_one_gone_is_skipped() {
        let mut files = InPlaceFiles::default();
        let mut first = files.watcher();
        let gone = files.watcher();
        drop(gone);
        let answering = tokio::spawn(async move {
            let request = next_request(&mut first).await;
            request.answer(vec![Reloaded {
                file: "users file u".into(),
                error: Some("broken".into()),
            }]);
        });
        let reloaded = files.reload().await;
        assert_eq!(
            reloaded,
            vec![Reloaded {
                file: "users file u".into(),
                error: Some("broken".into()),
            }]
        );
        answering.await.unwrap_or_else(|err| panic!("{err}"));
    }
}
