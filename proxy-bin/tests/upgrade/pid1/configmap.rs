//! A config mounted from a Kubernetes ConfigMap, under `--reload-on-change` as PID 1: the
//! kubelet's update (an atomic swap of the `..data` symlink) reloads the config while
//! established sessions carry on and new connects are never refused; a config that does not
//! load is rolled back, reported once, and not retried until the file changes again.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;
use crate::load::ConnectLoop;

/// An echo backend that counts the connections it accepted: which backend new sessions reach
/// tells which config serves them.
struct CountingEcho {
    addr: SocketAddr,
    accepted: Arc<AtomicU64>,
}

impl CountingEcho {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicU64::new(0));
        let counter = accepted.clone();
        // Ends with the test process, as `echo_backend`'s.
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                thread::spawn(move || {
                    let Ok(mut reader) = stream.try_clone() else {
                        return;
                    };
                    let mut writer = stream;
                    let _ = std::io::copy(&mut reader, &mut writer);
                });
            }
        });
        Self { addr, accepted }
    }

    fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// A directory laid out as the kubelet mounts a ConfigMap: `sluice.toml -> ..data/sluice.toml`,
/// `..data -> ..VERSION/`, each update a new version directory and a rename of `..data`.
struct ConfigMapVolume {
    dir: PathBuf,
    version: u32,
}

impl ConfigMapVolume {
    fn new(name: &str, contents: &str) -> Self {
        let dir = temp_path(name).with_extension("d");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut volume = Self { dir, version: 0 };
        volume.update(contents);
        std::os::unix::fs::symlink("..data/sluice.toml", volume.file()).unwrap();
        volume
    }

    fn file(&self) -> PathBuf {
        self.dir.join("sluice.toml")
    }

    fn update(&mut self, contents: &str) {
        self.version += 1;
        let version = format!("..2026_12_03_00_00_{:02}.{}", self.version, self.version);
        std::fs::create_dir_all(self.dir.join(&version)).unwrap();
        std::fs::write(self.dir.join(&version).join("sluice.toml"), contents).unwrap();
        let swap = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&version, &swap).unwrap();
        std::fs::rename(&swap, self.dir.join("..data")).unwrap();
    }
}

fn config_for(backend: SocketAddr) -> String {
    format!(
        "{}{}",
        listener_block("plain", backend),
        lifecycle_block("5s", "10s")
    )
}

/// One line through a session that stays open across reloads.
fn round_trip(stream: &mut TcpStream, line: &str) {
    writeln!(stream, "{line}").unwrap();
    let mut echo = vec![0; line.len() + 1];
    stream.read_exact(&mut echo).unwrap();
    assert_eq!(echo, format!("{line}\n").as_bytes());
}

#[test]
fn as_pid_1_a_configmap_update_reloads_and_a_bad_one_is_rolled_back_and_reported() {
    let first = CountingEcho::start();
    let second = CountingEcho::start();
    let mut volume = ConfigMapVolume::new("configmap.toml", &config_for(first.addr));
    let pid_file = temp_path("configmap.pid");
    let sluice = Master::start_with(
        SLUICE.path(),
        &volume.file(),
        &pid_file,
        true,
        QUIET,
        &["--reload-on-change"],
    );
    let addr = sluice.running.listening_addr();
    let worker = sluice.worker();

    // A session established on the first config.
    let mut established = TcpStream::connect(addr).unwrap();
    established.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    round_trip(&mut established, "before");
    let connects = ConnectLoop::start(addr, 200);

    // The kubelet's update: a new backend.
    let record = sluice.outcome_of("the ConfigMap update", || {
        volume.update(&config_for(second.addr));
    });
    assert_eq!(record["outcome"], "succeeded", "{record:?}");
    assert_eq!(record["trigger"], "config-file", "{record:?}");
    let reloaded = sluice.worker();
    assert_ne!(reloaded, worker);
    // New sessions reach the new backend; the established one carries on, on the old.
    let on_second = second.accepted();
    crate::load::one_request(addr, 1).unwrap();
    assert!(
        second.accepted() > on_second,
        "a new session used the old config"
    );
    round_trip(&mut established, "after the reload");

    // A config that does not load: rolled back, reported, tried once.
    let before = connects.done();
    let record = sluice.outcome_of("the bad ConfigMap update", || {
        volume.update("this is = not [toml\n");
    });
    assert_eq!(record["outcome"], "failed", "{record:?}");
    assert_eq!(record["trigger"], "config-file", "{record:?}");
    assert!(
        record["reason"].contains("configuration error"),
        "{record:?}"
    );
    sluice.running.wait_for("upgrade failed; still serving");
    assert_eq!(sluice.worker(), reloaded);
    let seq = record["seq"].clone();
    // Two checks of the file later, the same bad version has not been tried again.
    thread::sleep(Duration::from_millis(4500));
    assert_eq!(
        status(&pid_file).unwrap()["seq"],
        seq,
        "a bad config retried"
    );
    let deadline = Instant::now() + STEP_TIMEOUT;
    while connects.done() < before + 100 {
        assert!(
            Instant::now() < deadline,
            "the load stalled after the failed reload"
        );
        thread::sleep(Duration::from_millis(10));
    }

    // Fixed, back to the first backend: reloaded again.
    let record = sluice.outcome_of("the fixed ConfigMap update", || {
        volume.update(&config_for(first.addr));
    });
    assert_eq!(record["outcome"], "succeeded", "{record:?}");
    let on_first = first.accepted();
    crate::load::one_request(addr, 2).unwrap();
    assert!(
        first.accepted() > on_first,
        "a new session used an old config"
    );

    let served = connects.finish();
    eprintln!("{served} connections across three ConfigMap updates, none refused");
    assert_eq!(inner_pid(sluice.master), Some(1));
    let exit = sluice.terminate();
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    let _ = std::fs::remove_dir_all(&volume.dir);
}
