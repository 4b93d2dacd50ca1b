//! The real `sluice` binary as a child process: config files in a temp dir, a running
//! `sluice run` whose JSON log lines can be awaited, its admin listener, PID files and the
//! generations an upgrade leaves behind.
//!
//! Only the binary's own integration tests know where it is (`env!("CARGO_BIN_EXE_sluice")` is
//! set for them alone), so they hand its path in once, as a [`SluiceBinary`] constant. Every
//! wait here is bounded by [`STEP_TIMEOUT`].

use std::cell::{Cell, RefCell};
use std::ffi::OsStr;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::STEP_TIMEOUT;

// === impl SluiceBinary ===

/// Where the `sluice` executable under test is:
/// `const SLUICE: SluiceBinary = SluiceBinary::new(env!("CARGO_BIN_EXE_sluice"));`.
///
/// It stands in for the path wherever one is taken (`Command::new(SLUICE)`, `format!("{SLUICE}")`)
/// and starts `sluice run` with [`SluiceBinary::run`].
#[derive(Debug, Clone, Copy)]
pub struct SluiceBinary {
    path: &'static str,
}

impl SluiceBinary {
    /// The binary at `path`.
    pub const fn new(path: &'static str) -> Self {
        Self { path }
    }

    /// The binary's path.
    pub fn path(self) -> &'static Path {
        Path::new(self.path)
    }

    /// `sluice run --log-format json` with `config` written to the file `name`, logging at
    /// `info`.
    pub fn run(self, config: &str, name: &str) -> Running {
        self.run_with(config, name, &[], "info")
    }

    /// Like [`SluiceBinary::run`], with more `sluice run` arguments and a `RUST_LOG` filter.
    pub fn run_with(self, config: &str, name: &str, args: &[&str], log: &str) -> Running {
        let path = write_config(name, config);
        let mut command = Command::new(self);
        command
            .args(["run", "--log-format", "json", "--config"])
            .arg(&path)
            .args(args)
            .env("RUST_LOG", log)
            .stdin(Stdio::null());
        Running::spawn(command)
    }
}

impl SluiceBinary {
    /// `sluice run` logging as text (the default format, as an operator reads it), with
    /// `config` written to the file `name` and the `RUST_LOG` filter `log`. Lines are read
    /// with [`Running::text_lines`] and [`Running::wait_for_text`].
    pub fn run_text(self, config: &str, name: &str, log: &str) -> Running {
        let path = write_config(name, config);
        let mut command = Command::new(self);
        command
            .args(["run", "--log-format", "text", "--config"])
            .arg(&path)
            .env("RUST_LOG", log)
            .stdin(Stdio::null());
        Running::spawn(command)
    }
}

impl AsRef<OsStr> for SluiceBinary {
    fn as_ref(&self) -> &OsStr {
        OsStr::new(self.path)
    }
}

impl fmt::Display for SluiceBinary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path)
    }
}

// === config files and paths ===

/// Writes `text` to the file `name` in this test process's own temp directory; its path.
pub fn write_config(name: &str, text: &str) -> PathBuf {
    let path = config_dir().join(name);
    std::fs::write(&path, text).expect("write the config file");
    path
}

/// This test process's own temp directory (created if missing).
fn config_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the config directory");
    dir
}

/// A path named `name` in the same directory as the config files (created empty).
pub fn temp_path(name: &str) -> PathBuf {
    write_config(name, "").with_file_name(name)
}

/// A directory of its own beside the config files, removed with all it holds when dropped
/// (a copy of the binary is 50 to 200 MB: a test run must not leave one behind).
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// Creates the directory `name`.
    pub fn new(name: &str) -> Self {
        let path = config_dir().join(name);
        std::fs::create_dir_all(&path).expect("create the scratch directory");
        Self { path }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A loopback port nothing listens on (bound, then released at once).
pub fn refused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a loopback port")
        .local_addr()
        .expect("local address of a bound socket")
        .port()
}

// === impl Running ===

/// A running `sluice run` whose JSON log lines arrive on a channel; killed when dropped.
#[derive(Debug)]
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<serde_json::Value>,
    /// Every line received so far; lines come from several tasks, so their order between
    /// tasks is not fixed, and looking one up must not lose the others.
    seen: RefCell<Vec<serde_json::Value>>,
    /// Where `wait_for` resumes: lines before it have been waited past, in order.
    cursor: Cell<usize>,
    /// Lines whose shape a log pipeline would refuse ([`crate::log_shape`]); the test fails
    /// with them when the process is dropped.
    shape_problems: Arc<Mutex<Vec<String>>>,
}

impl Running {
    /// Runs `command` (a `sluice run ... --log-format json`, possibly behind a wrapper).
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sluice");
        let stderr = child.stderr.take().expect("sluice's stderr is piped");
        let (tx, lines) = mpsc::channel();
        let shape_problems = Arc::new(Mutex::new(Vec::new()));
        let problems = shape_problems.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Lines that are not JSON (a successor's start-up error) are kept for the
                // panic message of a failed wait.
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "raw": line }));
                let found = crate::log_shape::problems(&value);
                if !found.is_empty() {
                    problems.lock().extend(found);
                }
                let _ = tx.send(value);
            }
        });
        Self {
            child,
            lines,
            seen: RefCell::default(),
            cursor: Cell::default(),
            shape_problems,
        }
    }

    /// The next line with `message` after the last one waited for, skipping others, so that a
    /// series of waits checks the order of lines; bounded by [`STEP_TIMEOUT`].
    pub fn wait_for(&self, message: &str) -> serde_json::Value {
        let found = self.search(message, self.cursor.get());
        self.cursor.set(found + 1);
        self.seen.borrow()[found].clone()
    }

    /// The first line with `message` ever logged, without moving the `wait_for` cursor.
    pub fn find(&self, message: &str) -> serde_json::Value {
        let found = self.search(message, 0);
        self.seen.borrow()[found].clone()
    }

    /// The first line with `message` whose field `key` is `value`, without moving the cursor.
    pub fn find_where(&self, message: &str, key: &str, value: &str) -> serde_json::Value {
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
        let deadline = Instant::now() + STEP_TIMEOUT;
        let mut index = from;
        loop {
            while index < self.seen.borrow().len() {
                if self.seen.borrow()[index]["message"] == message {
                    return index;
                }
                index += 1;
            }
            let left = deadline.saturating_duration_since(Instant::now());
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

    /// Every line received so far, as written (a text-format log's lines, or JSON).
    pub fn text_lines(&self) -> Vec<String> {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.borrow_mut().push(line);
        }
        self.seen.borrow().iter().map(raw_text).collect()
    }

    /// The first line ever logged that contains `needle`, as written, without moving the
    /// `wait_for` cursor; bounded by [`STEP_TIMEOUT`].
    pub fn wait_for_text(&self, needle: &str) -> String {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let mut index = 0;
        loop {
            while let Some(line) = self.seen.borrow().get(index).map(raw_text) {
                if line.contains(needle) {
                    return line;
                }
                index += 1;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                let recent = self.text_lines();
                let recent = &recent[recent.len().saturating_sub(30)..];
                panic!(
                    "no log line holds {needle:?}; the last lines:\n{}",
                    recent.join("\n")
                )
            });
            self.seen.borrow_mut().push(line);
        }
    }

    /// The address the listener actually bound (the config asks for port 0).
    pub fn listening_addr(&self) -> SocketAddr {
        self.find("listening")["addr"]
            .as_str()
            .expect("the listening line has an addr")
            .parse()
            .expect("the listening addr is a socket address")
    }

    /// The admin listener's address, from its start-up line.
    pub fn admin_addr(&self) -> SocketAddr {
        self.find("admin listening")["addr"]
            .as_str()
            .expect("the admin listening line has an addr")
            .parse()
            .expect("the admin addr is a socket address")
    }

    /// The process id of the running `sluice`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends the signal `name` (as `kill` takes it: `-TERM`, `-USR2`, ...).
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args([name, &pid])
            .status()
            .expect("run kill");
    }

    /// SIGTERM, then the exit status; bounded by [`STEP_TIMEOUT`].
    pub fn terminate(self) -> ExitStatus {
        self.signal("-TERM");
        self.wait_exit()
    }

    /// The exit status once the process exits; bounded by [`STEP_TIMEOUT`].
    pub fn wait_exit(mut self) -> ExitStatus {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            if let Some(status) = self.try_exit() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "sluice did not exit after SIGTERM"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The exit status, if the process has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait for sluice")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let problems = std::mem::take(&mut *self.shape_problems.lock());
        if !problems.is_empty() && !thread::panicking() {
            panic!(
                "sluice wrote JSON log lines a log pipeline would refuse:\n{}",
                problems.join("\n")
            );
        }
    }
}

/// A line as it was written: the text of a line that was not JSON, else the JSON itself.
fn raw_text(line: &serde_json::Value) -> String {
    match line["raw"].as_str() {
        Some(raw) => raw.to_owned(),
        None => line.to_string(),
    }
}

/// `GET path` on the admin listener: the status code and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the admin listener");
    stream
        .set_read_timeout(Some(STEP_TIMEOUT))
        .expect("set a read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\n\r\n"
    )
    .expect("send the admin request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the admin response");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

// === upgrades: PID files and generations ===

/// The PID written to `pid_file`, once it is there; bounded by [`STEP_TIMEOUT`].
pub fn wait_for_pid_file(pid_file: &Path) -> u32 {
    let deadline = Instant::now() + STEP_TIMEOUT;
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

/// Kills, at the end of a test, every generation it started that is still running (on success
/// none is). A PID is only signalled while its command line still names this test's PID file,
/// so a PID reused by an unrelated process is left alone.
#[derive(Debug)]
pub struct Generations {
    /// Every generation's PID, the first one first; a test pushes each successor.
    pub pids: Vec<u32>,
    /// The marker a generation's command line must hold to be ours.
    pid_file: PathBuf,
}

impl Generations {
    /// The generations of one upgrade chain, starting with `first`, all run with `pid_file`.
    pub fn new(first: u32, pid_file: &Path) -> Self {
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

/// An echo server on its own threads, for tests of the binary that run no runtime: every
/// connection gets its bytes back, until the test process ends.
pub fn echo_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the echo backend");
    let addr = listener.local_addr().expect("echo backend address");
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let Ok(mut reader) = stream.try_clone() else {
                    return;
                };
                let mut writer = stream;
                let _ = std::io::copy(&mut reader, &mut writer);
            });
        }
    });
    addr
}
