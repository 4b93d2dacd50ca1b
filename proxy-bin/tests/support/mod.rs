//! What the binary's integration tests share: config files in a temp dir, and a running
//! `sluice run` whose JSON log lines can be awaited.
#![allow(dead_code, reason = "each test file uses its own subset")]
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "helpers of the tests fail the test when the environment misbehaves"
)]

pub(crate) mod kafka;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

pub(crate) const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");
pub(crate) const STEP: Duration = Duration::from_secs(20);

pub(crate) fn write_config(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A running `sluice run` whose JSON log lines arrive on a channel.
pub(crate) struct Running {
    child: Child,
    lines: mpsc::Receiver<serde_json::Value>,
    /// Every line received so far; lines come from several tasks, so their order between
    /// tasks is not fixed, and looking one up must not lose the others.
    seen: std::cell::RefCell<Vec<serde_json::Value>>,
    /// Where `wait_for` resumes: lines before it have been waited past, in order.
    cursor: std::cell::Cell<usize>,
}

impl Running {
    pub(crate) fn start(config: &str, name: &str) -> Self {
        Self::start_with(config, name, &[], "info")
    }

    /// Like [`Running::start`], with more `sluice run` arguments and a `RUST_LOG` filter.
    pub(crate) fn start_with(config: &str, name: &str, args: &[&str], log: &str) -> Self {
        let path = write_config(name, config);
        let mut command = Command::new(SLUICE);
        command
            .args(["run", "--log-format", "json", "--config"])
            .arg(&path)
            .args(args)
            .env("RUST_LOG", log)
            .stdin(Stdio::null());
        Self::spawn(command)
    }

    /// Runs `command` (a `sluice run ... --log-format json`, possibly behind a wrapper).
    pub(crate) fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Lines that are not JSON (a successor's start-up error) are kept for the
                // panic message of a failed wait.
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "raw": line }));
                let _ = tx.send(value);
            }
        });
        Self {
            child,
            lines,
            seen: Default::default(),
            cursor: Default::default(),
        }
    }

    /// The next log line with `message`, skipping others; bounded by `STEP`.
    /// The next line with `message` after the last one waited for, so that a series of waits
    /// checks the order of lines; bounded by `STEP`.
    pub(crate) fn wait_for(&self, message: &str) -> serde_json::Value {
        let found = self.search(message, self.cursor.get());
        self.cursor.set(found + 1);
        self.seen.borrow()[found].clone()
    }

    /// The first line with `message` ever logged, without moving the `wait_for` cursor.
    pub(crate) fn find(&self, message: &str) -> serde_json::Value {
        let found = self.search(message, 0);
        self.seen.borrow()[found].clone()
    }

    /// The first line with `message` whose field `key` is `value`, without moving the cursor.
    pub(crate) fn find_where(&self, message: &str, key: &str, value: &str) -> serde_json::Value {
        let mut from = 0;
        loop {
            let found = self.search(message, from);
            let line = self.seen.borrow()[found].clone();
            if line[key] == value {
                return line;
            }
            from = found + 1;
        }
    }

    /// The index in `seen` of the first line with `message` at or after `from`, receiving more
    /// lines as needed.
    fn search(&self, message: &str, from: usize) -> usize {
        let deadline = std::time::Instant::now() + STEP;
        let mut index = from;
        loop {
            while index < self.seen.borrow().len() {
                if self.seen.borrow()[index]["message"] == message {
                    return index;
                }
                index += 1;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                let seen = self.seen.borrow();
                let recent: Vec<String> = seen
                    .iter()
                    .skip(seen.len().saturating_sub(30))
                    .map(|line| line.to_string())
                    .collect();
                panic!(
                    "no log line {message:?}; the last lines:\n{}",
                    recent.join("\n")
                )
            });
            self.seen.borrow_mut().push(line);
        }
    }

    /// The address the listener actually bound (the config asks for port 0).
    pub(crate) fn listening_addr(&self) -> SocketAddr {
        self.find("listening")["addr"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    pub(crate) fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        Command::new("kill").args([name, &pid]).status().unwrap();
    }

    pub(crate) fn terminate(self) -> std::process::ExitStatus {
        self.signal("-TERM");
        self.wait_exit()
    }

    pub(crate) fn wait_exit(mut self) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + STEP;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "sluice did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Running {
    /// The process id of the running `sluice`.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The admin listener's address, from its start-up line.
    pub(crate) fn admin_addr(&self) -> SocketAddr {
        self.find("admin listening")["addr"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// The exit status, if the process has exited.
    pub(crate) fn try_exit(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }
}

/// `GET path` on the admin listener: the status code and the body.
pub(crate) fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(STEP)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

/// Whether process `pid` is gone for good: no /proc entry (a zombie still has one, in state Z).
pub(crate) fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('X')),
    }
}

/// The state letter of process `pid` (R, S, Z, ...), if it exists.
pub(crate) fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim_start().chars().next()
}

/// The direct children of process `pid`, from every thread's children list.
pub(crate) fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return children;
    };
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            children.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    children.sort_unstable();
    children.dedup();
    children
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn refused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// === upgrades: PID files, listening sockets, generations ===

pub(crate) fn temp_path(name: &str) -> PathBuf {
    write_config(name, "").with_file_name(name)
}

pub(crate) fn wait_for_pid_file(pid_file: &Path) -> u32 {
    let deadline = Instant::now() + STEP;
    loop {
        if let Ok(text) = std::fs::read_to_string(pid_file)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "no PID file {}",
            pid_file.display()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// The inode of the socket listening on `addr`, from /proc/net/tcp.
pub(crate) fn listening_inode(addr: SocketAddr) -> u64 {
    let SocketAddr::V4(v4) = addr else {
        panic!("IPv4 only")
    };
    let local = format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(v4.ip().octets()),
        v4.port()
    );
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let inodes: Vec<u64> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address, st == 0A (LISTEN), inode
            (fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A"))
                .then(|| fields.get(9)?.parse().ok())
                .flatten()
        })
        .collect();
    assert_eq!(
        inodes.len(),
        1,
        "one listening socket on {addr}: {inodes:?}"
    );
    inodes[0]
}

/// Whether process `pid` holds socket `inode` among its descriptors.
pub(crate) fn holds_socket(pid: u32, inode: u64) -> bool {
    let target = format!("socket:[{inode}]");
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|link| link.as_os_str() == target.as_str())
        })
}

/// Kills, at the end of a test, every generation it started that is still running (on success
/// none is). A PID is only signalled while its command line still names this test's PID file,
/// so a PID reused by an unrelated process is left alone.
pub(crate) struct Generations {
    pub(crate) pids: Vec<u32>,
    pid_file: PathBuf,
}

impl Generations {
    pub(crate) fn new(first: u32, pid_file: &Path) -> Self {
        Self {
            pids: vec![first],
            pid_file: pid_file.to_path_buf(),
        }
    }
}

impl Drop for Generations {
    fn drop(&mut self) {
        let marker = self.pid_file.to_string_lossy().into_owned();
        for pid in &self.pids {
            let ours = std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&marker));
            if ours {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}
