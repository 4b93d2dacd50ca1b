//! Zero-downtime upgrade and reload of the real binary: sockets handed to successors under
//! load, failed successors rolled back, a reload that adds and removes listeners, and systemd
//! socket activation. Every wait and loop is bounded.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "helpers of this test file fail the test when the environment misbehaves"
)]

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::{
    Generations, Running, SLUICE, STEP, holds_socket, http_get, listening_inode, process_gone,
    process_state, temp_path, wait_for_pid_file, write_config,
};

// === helpers ===

/// Start-up, upgrade and shutdown lines, without one line per session.
const QUIET: &str = "warn,sluice=info,proxy_frontend::listener=info";

/// An echo server on its own threads: every connection gets its bytes back.
fn echo_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut reader = stream.try_clone().unwrap();
                let mut writer = stream;
                let _ = std::io::copy(&mut reader, &mut writer);
            });
        }
    });
    addr
}

fn listener_block(name: &str, backend: SocketAddr) -> String {
    format!(
        "[[listener]]\nname = \"{name}\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\ncluster = \"local\"\n\n\
         [cluster.local]\nbackends = [\"{backend}\"]\n\n"
    )
}

/// The admin and shutdown tables every test here uses: a short drain, a short upgrade timeout.
fn lifecycle_block(drain: &str, upgrade_timeout: &str) -> String {
    format!(
        "[admin]\nbind = \"127.0.0.1:0\"\n\n[shutdown]\naccept_grace = \"0s\"\n\
         drain_timeout = \"{drain}\"\nupgrade_timeout = \"{upgrade_timeout}\"\n"
    )
}

/// `sluice upgrade --pid-file FILE` (`--reload` for SIGHUP).
fn upgrade(pid_file: &Path, reload: bool) -> Output {
    let mut command = Command::new(SLUICE);
    command
        .args(["upgrade", "--timeout", "20s", "--pid-file"])
        .arg(pid_file);
    if reload {
        command.arg("--reload");
    }
    command.output().unwrap()
}

fn read_pid(pid_file: &Path) -> u32 {
    std::fs::read_to_string(pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Gone, or a zombie left to a parent that has exited (its reaper is not ours to control).
fn wait_exited(pid: u32) {
    let deadline = Instant::now() + STEP;
    while !(process_gone(pid) || process_state(pid) == Some('Z')) {
        assert!(Instant::now() < deadline, "process {pid} still running");
        thread::sleep(Duration::from_millis(20));
    }
}

fn wait_reaped(pid: u32) {
    let deadline = Instant::now() + STEP;
    while !process_gone(pid) {
        assert!(
            Instant::now() < deadline,
            "process {pid} not reaped: state {:?}",
            process_state(pid)
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn terminate(pid: u32) {
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    wait_exited(pid);
}

/// Fresh connections on threads, each one request and its echo, paced to `per_second` in all;
/// any failure (refused, reset, wrong echo) panics its thread and fails the test at `finish`.
struct ConnectLoop {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl ConnectLoop {
    const THREADS: u64 = 10;

    fn start(addr: SocketAddr, per_second: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let gap = Duration::from_secs(Self::THREADS) / u32::try_from(per_second).unwrap();
        let threads = (0..Self::THREADS)
            .map(|t| {
                let (stop, done) = (stop.clone(), done.clone());
                thread::spawn(move || {
                    let start = Instant::now();
                    // Bounded: at most ten minutes of connections at this pace.
                    for i in 0..(600 * per_second / Self::THREADS) {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let n = t * 10_000_000 + i;
                        if let Err(err) = one_request(addr, n) {
                            panic!("connection {i} of thread {t} failed: {err}");
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                        let next = start + gap * u32::try_from(i + 1).unwrap();
                        thread::sleep(next.saturating_duration_since(Instant::now()));
                    }
                })
            })
            .collect();
        Self {
            stop,
            done,
            threads,
        }
    }

    fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Stops the threads, failing the test if any connection failed; the count made.
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            assert!(
                thread.join().is_ok(),
                "a connection failed (see the panic above)"
            );
        }
        self.done.load(Ordering::Relaxed)
    }
}

fn one_request(addr: SocketAddr, n: u64) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(STEP))?;
    writeln!(stream, "req {n}")?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    if line.trim_end() != format!("req {n}") {
        return Err(std::io::Error::other(format!("echo {line:?} for req {n}")));
    }
    Ok(())
}

/// Long-lived sessions on threads: each streams 1 KiB chunks, checks every echoed byte, closes
/// its write half after `length` and expects exactly its bytes back before EOF; then the next.
struct Streams {
    stop: Arc<AtomicBool>,
    sessions: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Streams {
    fn start(addr: SocketAddr, count: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sessions = Arc::new(AtomicU64::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let threads = (0..count)
            .map(|t| {
                let (stop, sessions, bytes) = (stop.clone(), sessions.clone(), bytes.clone());
                // 300 ms to ~1.3 s: well within the drain window.
                let length = Duration::from_millis(300 + t * 20);
                thread::spawn(move || {
                    for s in 0..10_000u64 {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        match stream_once(addr, length, (t * 31 + s) as u8) {
                            Ok(sent) => {
                                bytes.fetch_add(sent, Ordering::Relaxed);
                                sessions.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(err) => panic!("session {s} of stream {t} failed: {err}"),
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            sessions,
            bytes,
            threads,
        }
    }

    /// Stops after the sessions under way; (sessions, bytes) echoed intact.
    fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            assert!(
                thread.join().is_ok(),
                "a session failed (see the panic above)"
            );
        }
        (
            self.sessions.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

fn stream_once(addr: SocketAddr, length: Duration, seed: u8) -> std::io::Result<u64> {
    use std::io::Read as _;
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(STEP))?;
    let start = Instant::now();
    let mut sent = 0u64;
    let mut chunk = [0u8; 1024];
    let mut back = [0u8; 1024];
    let mut k = 0u8;
    while start.elapsed() < length {
        chunk
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = seed ^ k ^ (i as u8));
        stream.write_all(&chunk)?;
        stream.read_exact(&mut back)?;
        if back != chunk {
            return Err(std::io::Error::other("echoed bytes differ"));
        }
        sent += chunk.len() as u64;
        k = k.wrapping_add(1);
        thread::sleep(Duration::from_millis(10));
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest)?;
    if !rest.is_empty() {
        return Err(std::io::Error::other("bytes after the last echo"));
    }
    Ok(sent)
}

// === tests ===

#[test]
fn twenty_upgrades_under_load_refuse_nothing_and_lose_no_bytes() {
    let backend = echo_backend();
    let config = format!(
        "{}{}",
        listener_block("plain", backend),
        lifecycle_block("5s", "10s")
    );
    let pid_file = temp_path("twenty.pid");
    let _ = std::fs::remove_file(&pid_file);
    let sluice = Running::start_with(
        &config,
        "twenty.toml",
        &["--pid-file", pid_file.to_str().unwrap()],
        QUIET,
    );
    let mut generations = Generations::new(sluice.pid(), &pid_file);
    let addr = sluice.listening_addr();
    let admin = sluice.admin_addr();
    assert_eq!(wait_for_pid_file(&pid_file), sluice.pid());
    let inode = listening_inode(addr);
    assert!(holds_socket(sluice.pid(), inode));

    let connects = ConnectLoop::start(addr, 1200);
    let streams = Streams::start(addr, 50);
    let started = Instant::now();
    let mut pids = BTreeSet::from([sluice.pid()]);
    let mut previous = sluice.pid();
    let mut upgraded_while_draining = 0;
    for round in 1..=20 {
        let before = connects.done();
        // Generations other than the serving one that are still draining.
        upgraded_while_draining += usize::from(
            pids.iter()
                .any(|pid| *pid != previous && !matches!(process_state(*pid), None | Some('Z'))),
        );
        let output = upgrade(&pid_file, false);
        assert!(
            output.status.success(),
            "upgrade {round}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let pid = read_pid(&pid_file);
        generations.pids.push(pid);
        assert!(pids.insert(pid), "upgrade {round}: pid {pid} seen before");
        assert!(
            String::from_utf8_lossy(&output.stdout)
                .contains(&format!("process {previous} handed over to {pid}")),
            "{output:?}"
        );
        assert_eq!(
            listening_inode(addr),
            inode,
            "upgrade {round}: a new socket"
        );
        assert!(
            holds_socket(pid, inode),
            "upgrade {round}: {pid} lacks the socket"
        );
        assert_eq!(http_get(admin, "/readyz").0, 200, "upgrade {round}");
        previous = pid;
        // Let each generation carry traffic before the next upgrade.
        let deadline = Instant::now() + STEP;
        while connects.done() < before + 200 {
            assert!(Instant::now() < deadline, "the load stalled");
            thread::sleep(Duration::from_millis(10));
        }
    }
    let elapsed = started.elapsed();
    let connections = connects.finish();
    let (sessions, bytes) = streams.finish();
    eprintln!(
        "20 upgrades in {elapsed:?}: {connections} connections ({:.0}/s), {sessions} streamed sessions, {bytes} bytes echoed, {upgraded_while_draining} upgrades during a drain",
        connections as f64 / elapsed.as_secs_f64()
    );
    assert!(sessions >= 50, "{sessions} sessions");
    // Streams outlive a round, so upgrades overlapped earlier generations' drains.
    assert!(upgraded_while_draining > 0, "no upgrade ran during a drain");

    // Every earlier generation drains and exits on its own; the last one stops on SIGTERM.
    for pid in pids.iter().filter(|pid| **pid != previous) {
        wait_exited(*pid);
    }
    terminate(previous);
    assert!(
        !pid_file.exists(),
        "the last generation removes its PID file"
    );
}

/// Replaces the executable at `path` with a shell script (atomically, so it is never seen
/// half written).
fn write_script(path: &Path, body: &str) {
    let aside = path.with_extension("tmp");
    std::fs::write(&aside, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&aside, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

/// The successor's PID from a failure reason: "successor (pid N) ...".
fn successor_pid(reason: &str) -> u32 {
    let start = reason.find("(pid ").unwrap() + 5;
    let end = start + reason[start..].find(')').unwrap();
    reason[start..end].parse().unwrap()
}

fn status_field(pid_file: &Path, key: &str) -> Option<String> {
    let mut name = pid_file.as_os_str().to_owned();
    name.push(".status");
    let text = std::fs::read_to_string(PathBuf::from(name)).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_owned)
}

#[test]
fn failed_successors_are_killed_and_reaped_while_the_old_process_keeps_serving() {
    let backend = echo_backend();
    let config_text = format!(
        "{}{}",
        listener_block("plain", backend),
        lifecycle_block("2s", "1s")
    );
    let config = write_config("failing.toml", &config_text);
    let pid_file = temp_path("failing.pid");
    let binary = temp_path("failing-successor");
    let _ = std::fs::remove_file(&pid_file);
    write_script(&binary, "exit 1");
    let mut command = Command::new(SLUICE);
    command
        .args(["run", "--log-format", "json", "--config"])
        .arg(&config)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg("--upgrade-binary")
        .arg(&binary)
        .env("RUST_LOG", QUIET)
        .stdin(std::process::Stdio::null());
    let sluice = Running::spawn(command);
    let mut generations = Generations::new(sluice.pid(), &pid_file);
    let addr = sluice.listening_addr();
    let admin = sluice.admin_addr();
    assert_eq!(wait_for_pid_file(&pid_file), sluice.pid());
    let connects = ConnectLoop::start(addr, 500);
    let failed = |output: &Output| -> String {
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(
            read_pid(&pid_file),
            sluice.pid(),
            "the PID file still names the old process"
        );
        assert_eq!(http_get(admin, "/readyz"), (200, "ready\n".to_owned()));
        stderr
    };

    // 1. The new binary exits 1 at once.
    let stderr = failed(&upgrade(&pid_file, false));
    assert!(
        stderr.contains("upgrade failed: successor (pid"),
        "{stderr}"
    );
    assert!(
        stderr.contains("exited before it was ready (exit status: 1)"),
        "{stderr}"
    );
    wait_reaped(successor_pid(&stderr));
    let logged = sluice.wait_for("upgrade failed; still serving");
    assert!(
        logged["reason"]
            .as_str()
            .unwrap()
            .contains("exit status: 1"),
        "{logged}"
    );

    // 2. The new binary hangs before it is ready; a second trigger meanwhile is refused.
    write_script(&binary, "sleep 30");
    let hanging = {
        let pid_file = pid_file.clone();
        thread::spawn(move || upgrade(&pid_file, false))
    };
    let deadline = Instant::now() + STEP;
    while status_field(&pid_file, "outcome").as_deref() != Some("started") {
        assert!(Instant::now() < deadline, "the upgrade never started");
        thread::sleep(Duration::from_millis(10));
    }
    let stderr = failed(&upgrade(&pid_file, true));
    assert!(stderr.contains("reload refused: upgrade"), "{stderr}");
    assert!(stderr.contains("still in progress"), "{stderr}");
    sluice.wait_for("upgrade refused");
    let stderr = failed(&hanging.join().unwrap());
    assert!(
        stderr.contains("was not ready within upgrade_timeout (1s)"),
        "{stderr}"
    );
    wait_reaped(successor_pid(&stderr));

    // 3. A real successor with an invalid config reports why, and is reaped.
    write_script(&binary, &format!("exec {SLUICE} \"$@\""));
    std::fs::write(
        &config,
        config_text.replace("drain_timeout = \"2s\"", "drain_timeout = \"soon\""),
    )
    .unwrap();
    let stderr = failed(&upgrade(&pid_file, true));
    assert!(stderr.contains("reload failed: successor (pid"), "{stderr}");
    assert!(stderr.contains("shutdown.drain_timeout"), "{stderr}");
    assert!(stderr.contains("invalid duration \"soon\""), "{stderr}");
    wait_reaped(successor_pid(&stderr));

    // Every connection during all of that was served; the old process still is.
    let served = connects.finish();
    assert!(served > 0);

    // 4. With the config fixed, the same path hands over.
    std::fs::write(&config, &config_text).unwrap();
    let output = upgrade(&pid_file, true);
    assert!(output.status.success(), "{output:?}");
    let successor = read_pid(&pid_file);
    generations.pids.push(successor);
    assert_ne!(successor, sluice.pid());
    one_request(addr, 1).unwrap();
    let mut sluice = sluice;
    let deadline = Instant::now() + STEP;
    while sluice.try_exit().is_none() {
        assert!(
            Instant::now() < deadline,
            "the old process did not exit after the hand-off"
        );
        thread::sleep(Duration::from_millis(20));
    }
    terminate(successor);
}

#[test]
fn a_reload_adds_and_removes_listeners_without_refusing_on_the_one_that_stays() {
    let backend = echo_backend();
    let lifecycle = lifecycle_block("2s", "10s");
    // Port 0 on distinct loopback addresses: two listeners may not share a bind address.
    let listener = |name: &str, ip: &str| {
        format!(
            "[[listener]]\nname = \"{name}\"\nbind = \"{ip}:0\"\nprotocol = \"tcp\"\ncluster = \"local\"\n\n"
        )
    };
    let cluster = format!("[cluster.local]\nbackends = [\"{backend}\"]\n\n");
    let before = format!(
        "{}{}{cluster}{lifecycle}",
        listener("kept", "127.0.0.1"),
        listener("removed", "127.0.0.2")
    );
    let after = format!(
        "{}{}{cluster}{lifecycle}",
        listener("kept", "127.0.0.1"),
        listener("added", "127.0.0.3")
    );
    let config = write_config("reload.toml", &before);
    let pid_file = temp_path("reload.pid");
    let _ = std::fs::remove_file(&pid_file);
    let mut command = Command::new(SLUICE);
    command
        .args(["run", "--log-format", "json", "--config"])
        .arg(&config)
        .arg("--pid-file")
        .arg(&pid_file)
        .env("RUST_LOG", QUIET)
        .stdin(std::process::Stdio::null());
    let sluice = Running::spawn(command);
    let mut generations = Generations::new(sluice.pid(), &pid_file);
    let addr_of = |name: &str| -> SocketAddr {
        sluice.find_where("listening", "listener", name)["addr"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let kept = addr_of("kept");
    let removed = addr_of("removed");
    assert_eq!(wait_for_pid_file(&pid_file), sluice.pid());
    let inode = listening_inode(kept);
    one_request(removed, 1).unwrap();

    let connects = ConnectLoop::start(kept, 500);
    std::fs::write(&config, &after).unwrap();
    let output = upgrade(&pid_file, true);
    assert!(output.status.success(), "{output:?}");
    let successor = read_pid(&pid_file);
    generations.pids.push(successor);
    let adopted = sluice.find_where("adopted inherited socket", "listener", "kept");
    assert_eq!(adopted["addr"], kept.to_string());
    sluice.find_where(
        "closed inherited socket no listener uses",
        "listener",
        "removed",
    );
    let added = addr_of("added");
    one_request(added, 2).unwrap();
    // The old process drops its copy as it hands over, so the removed listener's socket closes.
    let deadline = Instant::now() + STEP;
    while TcpStream::connect(removed).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the removed listener still accepts"
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(listening_inode(kept), inode);
    assert!(holds_socket(successor, inode));
    // Keep the load on the kept listener a moment past the hand-off.
    let served = connects.done();
    let deadline = Instant::now() + STEP;
    while connects.done() < served + 100 {
        assert!(Instant::now() < deadline, "the load stalled");
        thread::sleep(Duration::from_millis(10));
    }
    connects.finish();
    wait_exited(sluice.pid());
    terminate(successor);
}

#[test]
fn socket_activation_serves_on_the_socket_systemd_passed() {
    let backend = echo_backend();
    // Bound by "systemd" (the test): the config asks for its exact address.
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let inode = listening_inode(addr);
    let config = format!(
        "[[listener]]\nname = \"plain\"\nbind = \"{addr}\"\nprotocol = \"tcp\"\ncluster = \"local\"\n\n\
         [cluster.local]\nbackends = [\"{backend}\"]\n\n[shutdown]\naccept_grace = \"0s\"\ndrain_timeout = \"1s\"\n"
    );
    let path = write_config("activation.toml", &config);
    // As systemd would: the socket as descriptor 3, LISTEN_PID naming the process that runs
    // sluice (the shell, which then becomes sluice by exec), and the socket's name.
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(format!(
            "exec 3<&0 0</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=plain exec {SLUICE} run --log-format json --config {}",
            path.display()
        ))
        .env("RUST_LOG", QUIET)
        .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(socket)));
    let sluice = Running::spawn(command);
    let adopted = sluice.find("adopted inherited socket");
    assert_eq!(adopted["from"], "systemd");
    assert_eq!(adopted["listener"], "plain");
    assert_eq!(sluice.listening_addr(), addr);
    one_request(addr, 1).unwrap();
    assert_eq!(
        listening_inode(addr),
        inode,
        "served on the inherited socket, not a new one"
    );
    assert!(holds_socket(sluice.pid(), inode));
    assert_eq!(sluice.terminate().code(), Some(0));
}

#[test]
fn systemd_hears_reloading_the_new_main_pid_and_ready() {
    use std::os::unix::net::UnixDatagram;
    let backend = echo_backend();
    let config = format!(
        "{}{}",
        listener_block("plain", backend),
        lifecycle_block("1s", "10s")
    );
    let notify_path = temp_path("notify.sock");
    let _ = std::fs::remove_file(&notify_path);
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(STEP)).unwrap();
    let pid_file = temp_path("notify.pid");
    let _ = std::fs::remove_file(&pid_file);
    let path = write_config("notify.toml", &config);
    let mut command = Command::new(SLUICE);
    command
        .args(["run", "--log-format", "json", "--config"])
        .arg(&path)
        .arg("--pid-file")
        .arg(&pid_file)
        .env("RUST_LOG", QUIET)
        .env("NOTIFY_SOCKET", &notify_path)
        .stdin(std::process::Stdio::null());
    let sluice = Running::spawn(command);
    let mut generations = Generations::new(sluice.pid(), &pid_file);
    let mut received = Vec::new();
    let mut next = || {
        let mut buffer = [0u8; 512];
        let n = notify.recv(&mut buffer).unwrap();
        let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
        received.push(message.clone());
        message
    };
    assert_eq!(next(), "READY=1\n");
    let output = upgrade(&pid_file, false);
    assert!(output.status.success(), "{output:?}");
    let successor = read_pid(&pid_file);
    generations.pids.push(successor);
    let reloading = next();
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading:?}"
    );
    // The old process's MAINPID and the successor's READY may arrive in either order.
    let mut rest = [next(), next()];
    rest.sort();
    assert_eq!(
        rest,
        [format!("MAINPID={successor}\n"), "READY=1\n".to_owned()]
    );
    wait_exited(sluice.pid());
    terminate(successor);
    let _ = std::fs::remove_file(&notify_path);
}
