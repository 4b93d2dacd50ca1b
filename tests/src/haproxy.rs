//! A real HAProxy in `mode tcp` in front of a test proxy, sending PROXY headers.
//!
//! HAProxy cannot report a port it bound to port 0, so a free loopback port is picked first;
//! if HAProxy then fails to start (another process took the port), it is retried on a new one.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which PROXY header HAProxy sends to its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendProxy {
    /// `send-proxy` (v1).
    V1,
    /// `send-proxy-v2`.
    V2,
}

/// A running HAProxy; killed when dropped.
#[derive(Debug)]
pub struct HaProxy {
    addr: SocketAddr,
    child: Child,
    dir: PathBuf,
}

impl HaProxy {
    /// Starts HAProxy forwarding every connection to `server` with `send`.
    pub fn start(server: SocketAddr, send: SendProxy) -> Self {
        Self::start_with(server, send, "")
    }

    /// [`Self::start`] with `frontend` added to the frontend section (one directive per line),
    /// e.g. `tcp-request connection set-src ipv4(10.0.0.1)` to stand for a client elsewhere.
    pub fn start_with(server: SocketAddr, send: SendProxy, frontend: &str) -> Self {
        let mut last_error = String::new();
        for attempt in 0..3 {
            match Self::try_start(server, send, frontend, attempt) {
                Ok(haproxy) => return haproxy,
                Err(err) => last_error = err,
            }
        }
        panic!("HAProxy did not start: {last_error}");
    }

    fn try_start(
        server: SocketAddr,
        send: SendProxy,
        frontend: &str,
        attempt: u32,
    ) -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let dir = std::env::temp_dir().join(format!(
            "sluice-haproxy-{}-{port}-{attempt}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let send = match send {
            SendProxy::V1 => "send-proxy",
            SendProxy::V2 => "send-proxy-v2",
        };
        let frontend: String = frontend
            .lines()
            .map(|line| format!("    {}\n", line.trim()))
            .collect();
        let config = format!(
            "global\n    maxconn 1000\n\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\n\
             frontend clients\n    bind {addr}\n{frontend}    default_backend sluice\n\n\
             backend sluice\n    server sluice {server} {send}\n"
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).map_err(|e| e.to_string())?;
        let mut child = Command::new(haproxy_binary())
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!("cannot run haproxy (is it installed? scripts/test.sh installs it): {e}")
            })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                return Err(format!("haproxy exited with {status}: {stderr}"));
            }
            if std::net::TcpStream::connect(addr).is_ok() {
                return Ok(Self { addr, child, dir });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        Err("haproxy did not listen within 10 s".into())
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn haproxy_binary() -> PathBuf {
    [
        "/usr/sbin/haproxy",
        "/usr/local/sbin/haproxy",
        "/usr/bin/haproxy",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .unwrap_or_else(|| PathBuf::from("haproxy"))
}
