//! The container image. scripts/build-image.sh builds it from the binary under test with
//! buildah, into an image store of this test's own (vfs, in a temporary directory, removed
//! afterwards), under its default tag, which must be the image the Kubernetes manifests name.
//! The image is then what the Containerfile promises: user 65532 and the entrypoint
//! `sluice run`; a filesystem holding this very binary and the libraries `ldd` lists for it and
//! nothing else (no shell); and, started as a container runtime starts it (a chroot into its
//! filesystem with /proc, /dev/null and /etc/hosts, its user, environment, entrypoint and
//! command), Sluice serves a session to a backend it finds by name, and a reload run the way
//! `kubectl exec` runs one (deploy/kubernetes/README.md) succeeds. No container runtime can run
//! here, so the chroot stands in for one.
//!
//! Needs buildah (scripts/install-deps.sh installs it) and root (buildah's storage, chroot and
//! mount); fails without them.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use sluice_tests::STEP_TIMEOUT;
use sluice_tests::certs::temp_dir;
use sluice_tests::process::{http_get, refused_port};

use crate::SLUICE;
use crate::kubernetes::KUBERNETES;
use crate::manifests::SHELLS;

const BUILD_IMAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/build-image.sh");

/// The image's user, as the Containerfile and the Deployment give it.
const USER: &str = "65532:65532";

// === an image store of the test's own ===

/// buildah with its storage in a temporary directory; every container and image in it, and
/// the directory, are removed on drop.
struct Store {
    dir: PathBuf,
    conf: PathBuf,
}

impl Store {
    fn new() -> Self {
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

    /// A command that uses this store (buildah, or a script that runs it).
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("CONTAINERS_STORAGE_CONF", &self.conf);
        command
    }

    /// `buildah ARGS`, which must succeed; its standard output, trimmed.
    fn buildah(&self, args: &[&str]) -> String {
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

/// File systems mounted into the image's root for its run; unmounted on drop, last first.
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

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `command`'s output, bounded by [`STEP_TIMEOUT`].
fn output_within(mut command: Command) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let deadline = Instant::now() + STEP_TIMEOUT;
    while child.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "{command:?} did not finish in time"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let Killed(inner) = &mut child;
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    inner
        .stdout
        .as_mut()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    inner
        .stderr
        .as_mut()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    let status = inner.try_wait().unwrap().unwrap();
    Output {
        status,
        stdout,
        stderr,
    }
}

// === what the image should hold ===

/// The image the base Deployment names (`image: NAME`).
fn manifest_image() -> String {
    let deployment =
        std::fs::read_to_string(Path::new(KUBERNETES).join("base/deployment.yaml")).unwrap();
    let images: Vec<&str> = deployment
        .lines()
        .filter_map(|line| line.trim().strip_prefix("image: "))
        .collect();
    assert_eq!(images.len(), 1, "{images:?}");
    images[0].trim_matches('"').to_owned()
}

/// The shared libraries `ldd` lists for the binary, the dynamic loader included: the files the
/// image must hold beside it, at these paths.
fn libraries(binary: &Path) -> BTreeSet<PathBuf> {
    let out = Command::new("ldd").arg(binary).output().unwrap();
    assert!(out.status.success(), "ldd {}", binary.display());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("not found"), "{text}");
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [_, "=>", path, ..] if path.starts_with('/') => Some(PathBuf::from(path)),
                [path, ..] if path.starts_with('/') => Some(PathBuf::from(path)),
                _ => None,
            }
        })
        .collect()
}

/// Every path under `root` (recursively, symbolic links not followed), relative to it, with
/// its metadata.
fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, std::fs::Metadata)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            walk(root, &path, out);
        }
        out.push((path.strip_prefix(root).unwrap().to_owned(), meta));
    }
}

/// The image's config (`buildah inspect`'s OCI image configuration).
fn image_config(store: &Store, tag: &str) -> serde_json::Value {
    let inspect: serde_json::Value =
        serde_json::from_str(&store.buildah(&["inspect", "--type", "image", tag])).unwrap();
    inspect["OCIv1"]["config"].clone()
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item.as_str().unwrap().to_owned())
        .collect()
}

/// A loopback-only config for the run in the image: a TCP listener in front of
/// `backend.sluice.test` (a name the image's /etc/hosts gives, as the kubelet's does a pod's),
/// and the admin listener.
fn run_config(listener: u16, backend: u16, admin: u16) -> String {
    format!(
        "[[listener]]\nname = \"plain\"\nbind = \"127.0.0.1:{listener}\"\nprotocol = \"tcp\"\n\
         cluster = \"local\"\n\n[cluster.local]\nbackends = [\"backend.sluice.test:{backend}\"]\n\n\
         [admin]\nbind = \"127.0.0.1:{admin}\"\n\n[shutdown]\naccept_grace = \"0s\"\n\
         drain_timeout = \"1s\"\n"
    )
}

/// A loopback peer that echoes what one connection sends; its port. The thread ends once it
/// has answered, or after [`STEP_TIMEOUT`] without a connection.
fn echo_once() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    thread::spawn(move || {
        let deadline = Instant::now() + STEP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok((mut stream, _)) = listener.accept() {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(STEP_TIMEOUT));
                let mut buf = [0; 64];
                if let Ok(n) = stream.read(&mut buf) {
                    let _ = stream.write_all(&buf[..n]);
                }
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
    });
    port
}

/// A round trip through the listener on `port` to the echo peer.
fn round_trip(port: u16, log: &Path) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    stream.write_all(b"through the image").unwrap();
    let mut buf = [0; 17];
    let read = stream.read_exact(&mut buf);
    assert!(
        read.is_ok() && &buf == b"through the image",
        "no echo through the image's sluice ({read:?}); the container's log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Until `/livez` on `admin` answers 200 (bounded).
fn wait_live(admin: u16, log: &Path) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], admin));
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        if std::net::TcpStream::connect(addr).is_ok() && http_get(addr, "/livez").0 == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/livez never answered; the container's log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

fn wait_exit(child: &mut Killed) -> ExitStatus {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "sluice did not exit after SIGTERM"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

// === the test ===

#[test]
fn the_built_image_holds_the_binary_and_its_libraries_only_and_runs_as_a_container() {
    let buildah = Command::new("buildah").arg("--version").output();
    assert!(
        buildah.as_ref().is_ok_and(|out| out.status.success()),
        "buildah is needed to build the image: scripts/install-deps.sh installs it ({buildah:?})"
    );
    let uid = Command::new("id").arg("-u").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "building the image and running it in a chroot needs root"
    );
    let store = Store::new();

    // Built by the script, with its default tag: the image the manifests name.
    let out = store
        .command(BUILD_IMAGE)
        .arg(SLUICE.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/build-image.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tag = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let version = String::from_utf8(
        Command::new(SLUICE)
            .arg("--version")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        tag,
        format!(
            "localhost/sluice:{}",
            version.trim().trim_start_matches("sluice ")
        ),
        "the script's default tag"
    );
    assert_eq!(
        manifest_image(),
        tag,
        "deploy/kubernetes/base/deployment.yaml must run the image scripts/build-image.sh builds"
    );

    // Its config: the non-root user, the entrypoint, the command the Deployment's args
    // replace, and TMPDIR on the writable directory.
    let config = image_config(&store, &tag);
    assert_eq!(config["User"], USER, "{config}");
    let entrypoint = strings(&config["Entrypoint"]);
    assert_eq!(entrypoint, ["/usr/local/bin/sluice", "run"]);
    let cmd = strings(&config["Cmd"]);
    assert_eq!(
        cmd,
        [
            "--master",
            "--config",
            "/etc/sluice/sluice.toml",
            "--pid-file",
            "/run/sluice/sluice.pid"
        ]
    );
    let env = strings(&config["Env"]);
    assert!(env.iter().any(|var| var == "TMPDIR=/run/sluice"), "{env:?}");

    // Its filesystem: this binary, the libraries it links, the run directory; nothing else.
    let container = store.buildah(&["from", "--pull=never", &tag]);
    let rootfs = PathBuf::from(store.buildah(&["mount", &container]));
    let mut entries = Vec::new();
    walk(&rootfs, &rootfs, &mut entries);
    for (path, _) in &entries {
        for name in path.iter() {
            let name = name.to_string_lossy();
            assert!(
                !SHELLS.contains(&name.as_ref()),
                "the image holds /{}",
                path.display()
            );
        }
    }
    let files: BTreeSet<PathBuf> = entries
        .iter()
        .filter(|(_, meta)| !meta.is_dir())
        .map(|(path, _)| Path::new("/").join(path))
        .collect();
    let libraries = libraries(SLUICE.path());
    assert!(libraries.len() >= 2, "{libraries:?}");
    let mut expected = libraries.clone();
    expected.insert(PathBuf::from("/usr/local/bin/sluice"));
    assert_eq!(files, expected, "the image's files");
    for (path, meta) in &entries {
        let path = Path::new("/").join(path);
        if path == Path::new("/run/sluice") {
            assert_eq!(
                (meta.uid(), meta.gid()),
                (65532, 65532),
                "/run/sluice's owner"
            );
        } else {
            // Root's, and not writable by anyone else: the user cannot change the binary.
            assert_eq!(meta.uid(), 0, "{} is not root's", path.display());
            assert_eq!(
                meta.mode() & 0o022,
                0,
                "{} is writable by others",
                path.display()
            );
        }
        assert!(
            meta.is_dir() || meta.is_file(),
            "{} is neither a file nor a directory",
            path.display()
        );
    }
    let in_image = std::fs::read(rootfs.join("usr/local/bin/sluice")).unwrap();
    let built = std::fs::read(SLUICE.path()).unwrap();
    assert!(
        in_image == built,
        "the image's /usr/local/bin/sluice ({} bytes) is not the binary given ({} bytes)",
        in_image.len(),
        built.len()
    );
    for library in &libraries {
        let host = std::fs::read(library).unwrap();
        let image = std::fs::read(rootfs.join(library.strip_prefix("/").unwrap())).unwrap();
        assert!(
            host == image,
            "{} differs from the host's",
            library.display()
        );
    }

    // Started as a runtime starts it: the config mounted at /etc/sluice, /proc and /dev/null
    // provided, its user and environment, its entrypoint and command.
    let (listener, admin) = (refused_port(), refused_port());
    std::fs::create_dir_all(rootfs.join("etc/sluice")).unwrap();
    std::fs::write(
        rootfs.join("etc/sluice/sluice.toml"),
        run_config(listener, echo_once(), admin),
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/hosts"), "127.0.0.1 backend.sluice.test\n").unwrap();
    for dir in ["proc", "dev"] {
        std::fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    File::create(rootfs.join("dev/null")).unwrap();
    let mut mounts = Mounts::default();
    mounts.mount(&["-t", "proc", "proc"], &rootfs.join("proc"));
    mounts.mount(&["--bind", "/dev/null"], &rootfs.join("dev/null"));
    let in_image = |argv: &[String]| {
        let mut command = Command::new("/usr/sbin/chroot");
        command
            .arg(format!("--userspec={USER}"))
            .arg(&rootfs)
            .args(argv)
            .env_clear()
            .envs(env.iter().filter_map(|var| var.split_once('=')));
        command
    };
    let log = store.dir.join("container.log");
    let log_file = File::create(&log).unwrap();
    let mut run = in_image(&[entrypoint.clone(), cmd].concat());
    let sluice = run
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let mut sluice = Killed(sluice);
    wait_live(admin, &log);
    assert!(rootfs.join("run/sluice/sluice.pid").is_file());
    // A session, to a backend found by name: the C library resolves without any file but
    // /etc/hosts (and, in a pod, /etc/resolv.conf).
    round_trip(listener, &log);

    // A reload, as deploy/kubernetes/README.md runs it with `kubectl exec`.
    let reload = output_within(in_image(&[
        "/usr/local/bin/sluice".to_owned(),
        "upgrade".to_owned(),
        "--reload".to_owned(),
        "--pid-file".to_owned(),
        "/run/sluice/sluice.pid".to_owned(),
    ]));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&reload.stdout),
        String::from_utf8_lossy(&reload.stderr)
    );
    assert!(
        reload.status.success() && said.contains("reload done"),
        "the reload failed: {said}; the container's log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    wait_live(admin, &log);

    // SIGTERM to the container's first process, as the kubelet sends it: a clean exit.
    let pid = sluice.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = wait_exit(&mut sluice);
    assert!(
        status.success(),
        "{status}; the container's log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    drop(mounts);
}
