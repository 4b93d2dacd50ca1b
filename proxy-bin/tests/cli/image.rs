//! The container image. scripts/build-image.sh builds it from the binary under test with
//! buildah, into an image store of this test's own, under its default tag, which must be the
//! image the Kubernetes manifests name. The image is then what the Containerfile promises: user
//! 65532 and the entrypoint `sluice run`; a filesystem holding this very binary and the
//! libraries `ldd` lists for it and nothing else (no shell); and, started as a container runtime
//! starts it (`runtime`: a chroot into its filesystem with /proc and /dev/null, as its user, with
//! its environment, entrypoint and command, and an /etc/hosts), Sluice serves a session to a
//! backend it finds by name, and a reload run the way `kubectl exec` runs one
//! (deploy/kubernetes/README.md) succeeds.
//!
//! Needs buildah (scripts/install-deps.sh installs it) and root (buildah's storage, chroot and
//! mount); fails without them.

mod runtime;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use sluice_tests::STEP_TIMEOUT;
use sluice_tests::process::{http_get, refused_port};

use self::runtime::{Container, Store};
use crate::SLUICE;
use crate::kubernetes::KUBERNETES;
use crate::manifests::SHELLS;

const BUILD_IMAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/build-image.sh");

/// The image's user, as the Containerfile and the Deployment give it.
const USER: &str = "65532:65532";

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

/// Every path under `dir` (recursively, symbolic links not followed), relative to `root`, with
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

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item.as_str().unwrap().to_owned())
        .collect()
}

/// The image's files are this binary and the libraries it links, nothing else, none of them
/// named like a shell, all root's but the run directory.
fn check_filesystem(rootfs: &Path) {
    let mut entries = Vec::new();
    walk(rootfs, rootfs, &mut entries);
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
        assert!(
            meta.is_dir() || meta.is_file(),
            "{} is neither a file nor a directory",
            path.display()
        );
        if path == Path::new("/run/sluice") {
            let owner = (meta.uid(), meta.gid());
            assert_eq!(owner, (65532, 65532), "/run/sluice's owner");
        } else {
            // Root's, and not writable by anyone else: the user cannot change the binary.
            assert_eq!(meta.uid(), 0, "{} is not root's", path.display());
            let writable = meta.mode() & 0o022;
            assert_eq!(writable, 0, "{} is writable by others", path.display());
        }
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
        let path = library.display();
        assert!(host == image, "{path} differs from the host's");
    }
}

// === the run in the image ===

/// A loopback-only config: a TCP listener in front of `backend.sluice.test` (a name the
/// image's /etc/hosts gives, as the kubelet's does a pod's), and the admin listener.
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
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
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
fn round_trip(port: u16, container: &Container) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    stream.write_all(b"through the image").unwrap();
    let mut buf = [0; 17];
    let read = stream.read_exact(&mut buf);
    assert!(
        read.is_ok() && &buf == b"through the image",
        "no echo through the image's sluice ({read:?}); the container's log:\n{}",
        container.log()
    );
}

/// Until `/livez` on `admin` answers 200 (bounded).
fn wait_live(admin: u16, container: &Container) {
    let addr = SocketAddr::from(([127, 0, 0, 1], admin));
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        if TcpStream::connect(addr).is_ok() && http_get(addr, "/livez").0 == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/livez never answered; the container's log:\n{}",
            container.log()
        );
        thread::sleep(Duration::from_millis(50));
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
    let version = Command::new(SLUICE)
        .arg("--version")
        .output()
        .unwrap()
        .stdout;
    let version = String::from_utf8(version).unwrap();
    let version = version.trim().trim_start_matches("sluice ");
    assert_eq!(
        tag,
        format!("localhost/sluice:{version}"),
        "the default tag"
    );
    assert_eq!(
        manifest_image(),
        tag,
        "deploy/kubernetes/base/deployment.yaml must run the image scripts/build-image.sh builds"
    );

    // Its config: the non-root user, the entrypoint, the command the Deployment's args
    // replace, and TMPDIR on the writable directory.
    let inspect = store.buildah(&["inspect", "--type", "image", &tag]);
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let config = &inspect["OCIv1"]["config"];
    assert_eq!(config["User"], USER, "{config}");
    let entrypoint = strings(&config["Entrypoint"]);
    assert_eq!(entrypoint, ["/usr/local/bin/sluice", "run"]);
    let cmd = strings(&config["Cmd"]);
    let pid_file = "/run/sluice/sluice.pid";
    let config_file = "/etc/sluice/sluice.toml";
    let expected = [
        "--master",
        "--reload-on-change",
        "--config",
        config_file,
        "--pid-file",
        pid_file,
    ];
    assert_eq!(cmd, expected);
    let env = strings(&config["Env"]);
    assert!(env.iter().any(|var| var == "TMPDIR=/run/sluice"), "{env:?}");

    // Its filesystem: this binary, the libraries it links, the run directory; nothing else.
    let working = store.buildah(&["from", "--pull=never", &tag]);
    let rootfs = PathBuf::from(store.buildah(&["mount", &working]));
    check_filesystem(&rootfs);

    // Started as a runtime starts it, with the config mounted at /etc/sluice and the
    // /etc/hosts the kubelet gives a pod.
    let (listener, admin) = (refused_port(), refused_port());
    std::fs::create_dir_all(rootfs.join("etc/sluice")).unwrap();
    let run = run_config(listener, echo_once(), admin);
    std::fs::write(rootfs.join(config_file.trim_start_matches('/')), run).unwrap();
    std::fs::write(rootfs.join("etc/hosts"), "127.0.0.1 backend.sluice.test\n").unwrap();
    let argv = [entrypoint, cmd].concat();
    let log = store.dir().join("container.log");
    let mut container = Container::start(&rootfs, USER, &env, &argv, &log);
    wait_live(admin, &container);
    assert!(rootfs.join(pid_file.trim_start_matches('/')).is_file());
    // A session, to a backend found by name: the C library needs no file but /etc/hosts (and,
    // in a pod, /etc/resolv.conf) to resolve it.
    round_trip(listener, &container);

    // A reload, as deploy/kubernetes/README.md runs it with `kubectl exec`.
    let sluice = "/usr/local/bin/sluice";
    let reload = container.exec(&[sluice, "upgrade", "--reload", "--pid-file", pid_file]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&reload.stdout),
        String::from_utf8_lossy(&reload.stderr)
    );
    assert!(
        reload.status.success() && said.contains("reload done"),
        "the reload failed: {said}; the container's log:\n{}",
        container.log()
    );
    wait_live(admin, &container);

    // SIGTERM, as the kubelet sends it: a clean exit.
    let status = container.terminate();
    assert!(
        status.success(),
        "{status}; the container's log:\n{}",
        container.log()
    );
}
