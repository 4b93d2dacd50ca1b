//! What the image test uses instead of a container engine, which cannot run on the test
//! machines: an image store of its own for buildah, and a container as a chroot into the image's
//! filesystem with what a runtime provides (/proc, /dev/null), run as the image's user with its
//! environment. Everything is undone on drop: the container's processes killed, the mounts
//! unmounted, the containers, images and store removed.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use sluice_tests::STEP_TIMEOUT;
use sluice_tests::certs::temp_dir;

// === impl Store ===

/// buildah with its storage (vfs) in a temporary directory of its own, so the test neither
/// sees nor changes the machine's images; every container and image in it, and the
/// directory, are removed on drop.
pub(super) struct Store {
    dir: PathBuf,
    conf: PathBuf,
}

impl Store {
    pub(super) fn new() -> Self {
        let dir = temp_dir("image-store");
        let conf = dir.join("storage.conf");
        std::fs::write(
            &conf,
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/graph\"\nrunroot = \"{0}/run\"\n",
                dir.display()
            ),
        )
        .unwrap();
        Self { dir, conf }
    }

    /// The store's directory, removed with it.
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// A command that uses this store (buildah, or a script that runs it).
    pub(super) fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("CONTAINERS_STORAGE_CONF", &self.conf);
        command
    }

    /// `buildah ARGS`, which must succeed; its standard output, trimmed.
    pub(super) fn buildah(&self, args: &[&str]) -> String {
        let out = self.command("buildah").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "buildah {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        for args in [&["rm", "--all"][..], &["rmi", "--all", "--force"]] {
            let _ = self.command("buildah").args(args).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// === impl Container ===

/// The image's entrypoint and command running in a chroot of `rootfs` (a working container's
/// mounted filesystem) as the image's user, with the image's environment and nothing else.
pub(super) struct Container {
    rootfs: PathBuf,
    user: String,
    env: Vec<String>,
    /// Standard output and error of the container's first process.
    log: PathBuf,
    /// Declared before `_mounts`, so it is killed before they are unmounted.
    process: Killed,
    /// Held for its `Drop`: the mounts last as long as the container.
    _mounts: Mounts,
}

impl Container {
    /// Starts `argv` (the entrypoint and command) in `rootfs` as `user`, with `env`
    /// (`NAME=value`, as an image's config lists it), once /proc and /dev/null are there; its
    /// output goes to `log`.
    pub(super) fn start(
        rootfs: &Path,
        user: &str,
        env: &[String],
        argv: &[String],
        log: &Path,
    ) -> Self {
        for dir in ["proc", "dev"] {
            std::fs::create_dir_all(rootfs.join(dir)).unwrap();
        }
        File::create(rootfs.join("dev/null")).unwrap();
        let mut mounts = Mounts::default();
        mounts.mount(&["-t", "proc", "proc"], &rootfs.join("proc"));
        mounts.mount(&["--bind", "/dev/null"], &rootfs.join("dev/null"));
        let log_file = File::create(log).unwrap();
        let mut command = chroot(rootfs, user, env, argv);
        let child = command
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap();
        Self {
            rootfs: rootfs.to_owned(),
            user: user.to_owned(),
            env: env.to_owned(),
            log: log.to_owned(),
            process: Killed(child),
            _mounts: mounts,
        }
    }

    /// What the container's first process has written so far.
    pub(super) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `argv` in the container as `kubectl exec` does (same root, user and
    /// environment); its output, bounded by [`STEP_TIMEOUT`].
    pub(super) fn exec(&self, argv: &[&str]) -> Output {
        let argv: Vec<String> = argv.iter().map(|arg| (*arg).to_owned()).collect();
        let child = chroot(&self.rootfs, &self.user, &self.env, &argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = Killed(child);
        let status = child.wait_within("the command in the container");
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let Killed(inner) = &mut child;
        inner
            .stdout
            .take()
            .unwrap()
            .read_to_end(&mut stdout)
            .unwrap();
        inner
            .stderr
            .take()
            .unwrap()
            .read_to_end(&mut stderr)
            .unwrap();
        Output {
            status,
            stdout,
            stderr,
        }
    }

    /// SIGTERM to the container's first process, as the kubelet sends it; its exit status.
    pub(super) fn terminate(&mut self) -> ExitStatus {
        let pid = self.process.0.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        self.process.wait_within("sluice, after SIGTERM,")
    }
}

impl Drop for Container {
    /// Kills every process whose root is the container's, as a runtime ends a container's
    /// cgroup: the first process, and the workers it starts in process groups of their own,
    /// which outlive it when it is killed.
    fn drop(&mut self) {
        for _ in 0..50 {
            let inside = processes_in(&self.rootfs);
            if inside.is_empty() {
                return;
            }
            for pid in inside {
                let _ = Command::new("kill").args(["-KILL", &pid]).output();
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The ids of the live processes whose root directory is `rootfs`.
fn processes_in(rootfs: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        // A zombie has no root to read, and a deleted directory's name ends in " (deleted)".
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/root")).is_ok_and(|root| {
                root.to_string_lossy()
                    .starts_with(&*rootfs.to_string_lossy())
            })
        })
        .collect()
}

/// `/usr/sbin/chroot --userspec=USER ROOTFS ARGV...` with `env` alone.
fn chroot(rootfs: &Path, user: &str, env: &[String], argv: &[String]) -> Command {
    let mut command = Command::new("/usr/sbin/chroot");
    command
        .arg(format!("--userspec={user}"))
        .arg(rootfs)
        .args(argv)
        .env_clear()
        .envs(env.iter().filter_map(|var| var.split_once('=')));
    command
}

/// File systems mounted into the image's root; unmounted on drop, last first.
#[derive(Default)]
struct Mounts(Vec<PathBuf>);

impl Mounts {
    fn mount(&mut self, args: &[&str], target: &Path) {
        let out = Command::new("mount")
            .args(args)
            .arg(target)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount {args:?} {} failed (the test runs as root): {}",
            target.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        self.0.push(target.to_owned());
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        for target in self.0.iter().rev() {
            let _ = Command::new("umount").arg(target).output();
        }
    }
}

/// A process killed on drop, if still running.
struct Killed(Child);

impl Killed {
    /// Its exit status, once it exits; bounded by [`STEP_TIMEOUT`].
    fn wait_within(&mut self, what: &str) -> ExitStatus {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "{what} did not exit in time");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
