//! OpenSSL's `s_client` as a real TLS client: an implementation other than rustls on the far
//! side of Sluice, for TLS termination, SNI passthrough and mTLS tests.
//!
//! # The flags, and why
//!
//! `openssl s_client -connect ADDR -brief -nocommands` then, as asked for:
//! `-servername N` (or `-noservername`), `-CAfile F -verify_return_error` (plus
//! `-verify_hostname N` with a server name), `-cert C -key K`.
//!
//! - `-brief` keeps standard output for application data only: the session summary
//!   (`Peer certificate: CN = ..`, `Verification: OK`) goes to standard error. Without it the
//!   summary (`subject=..`, `Verify return code: 0 (ok)`) and the data share standard output;
//!   with `-quiet` there is no summary at all.
//! - `-nocommands`: otherwise a line of input starting with `Q`, `R`, `k` or `K` is a command
//!   (quit, renegotiate, key update), not data.
//! - `-verify_return_error` makes a certificate the CA does not vouch for end the handshake,
//!   so "wrong CA" is a failed run, not a warning; `-verify_hostname` checks the certificate
//!   is for the name asked for, as a real client would. Both only with a CA file: without one
//!   the run reports the verification result but goes on (that is how
//!   [`peer_certificate_subject`] reads the certificate of any server).
//! - **Not `-ign_eof`**, though it is the usual advice for scripting: with it, `s_client`
//!   tells the server nothing when its input ends (no close_notify, no FIN), so a server that
//!   answers after the client is done, or an echo server closing after the client, never
//!   does, and every run would end at the timeout. Without it, `s_client` sends close_notify
//!   and FIN at end of input and then reads for 0.5 s *without printing*, so data still in
//!   flight would be lost. Hence standard input is held open until as many bytes as were sent
//!   have come back (an echo), the server closes, or [`SETTLE`] passes, and only then closed.
//!
//! Each run is killed after [`HARD_TIMEOUT`].

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A run is killed after this long.
pub const HARD_TIMEOUT: Duration = Duration::from_secs(20);

/// How long standard input stays open for an answer shorter than the input.
pub const SETTLE: Duration = Duration::from_secs(5);

/// What one `s_client` run printed and how it ended.
#[derive(Debug)]
pub struct SClientResult {
    /// How `s_client` exited: non-zero when the connection or handshake failed.
    pub status: ExitStatus,
    /// The application data the server sent, exactly.
    pub stdout: Vec<u8>,
    /// The session summary and any errors.
    pub stderr: String,
    /// The server certificate's subject as OpenSSL prints it, e.g. `CN = a.example`.
    pub peer_cert_subject: Option<String>,
    /// Whether OpenSSL verified the server's certificate (against the CA file, if given).
    pub verify_ok: bool,
    /// Whether the run was killed at [`HARD_TIMEOUT`].
    pub timed_out: bool,
}

/// Runs `openssl s_client` against `addr`: sends `server_name` as SNI (none when `None`),
/// verifies against `ca_file` (and `server_name`) when given, presents `client` =
/// (chain, key) when given, writes `input`, then ends its input once the answer is in (see
/// the module documentation) and waits for `s_client` to exit.
///
/// Blocking: call it from `tokio::task::spawn_blocking` in async tests.
pub fn s_client(
    addr: SocketAddr,
    server_name: Option<&str>,
    ca_file: Option<&Path>,
    client: Option<(&Path, &Path)>,
    input: &[u8],
) -> SClientResult {
    let mut command = Command::new("openssl");
    command
        .arg("s_client")
        .arg("-connect")
        .arg(addr.to_string())
        .args(["-brief", "-nocommands"]);
    match server_name {
        Some(name) => command.args(["-servername", name]),
        None => command.arg("-noservername"),
    };
    if let Some(ca_file) = ca_file {
        command
            .arg("-CAfile")
            .arg(ca_file)
            .arg("-verify_return_error");
        if let Some(name) = server_name {
            command.args(["-verify_hostname", name]);
        }
    }
    if let Some((chain, key)) = client {
        command.arg("-cert").arg(chain).arg("-key").arg(key);
    }
    run(command, input)
}

/// The subject of the certificate the server at `addr` presents for `server_name`, without
/// verifying it; `None` when no TLS handshake took place.
pub fn peer_certificate_subject(addr: SocketAddr, server_name: Option<&str>) -> Option<String> {
    s_client(addr, server_name, None, None, b"").peer_cert_subject
}

fn run(mut command: Command, input: &[u8]) -> SClientResult {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run openssl (is it installed? scripts/test.sh installs it)");

    // Standard input: written, then held open until told to close (or the sender is dropped).
    let (close, close_rx) = mpsc::channel::<()>();
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input_owned = input.to_vec();
    let writer = thread::spawn(move || {
        // A failed write means s_client is gone; its result says why.
        let _ = stdin.write_all(&input_owned);
        let _ = close_rx.recv();
        drop(stdin);
    });

    let received = Arc::new(AtomicUsize::new(0));
    let mut stdout = child.stdout.take().expect("piped stdout");
    let counter = received.clone();
    let out_reader = thread::spawn(move || {
        let mut data = Vec::new();
        let mut chunk = [0u8; 8192];
        while let Ok(n @ 1..) = stdout.read(&mut chunk) {
            data.extend_from_slice(&chunk[..n]);
            counter.store(data.len(), Ordering::Release);
        }
        data
    });
    let mut stderr = child.stderr.take().expect("piped stderr");
    let err_reader = thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    });

    let start = Instant::now();
    let mut close = Some(close);
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll s_client") {
            break status;
        }
        let answered = received.load(Ordering::Acquire) >= input.len();
        if close.is_some() && (answered || start.elapsed() >= SETTLE) {
            // Dropping the sender ends the writer's wait: standard input closes.
            close = None;
        }
        if start.elapsed() >= HARD_TIMEOUT {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait for the killed s_client");
        }
        thread::sleep(Duration::from_millis(10));
    };
    drop(close);

    let _ = writer.join();
    let stdout = out_reader.join().expect("s_client stdout reader");
    let mut stderr = err_reader.join().expect("s_client stderr reader");
    if timed_out {
        stderr.push_str("\n[sluice-tests: s_client killed after the hard timeout]\n");
    }
    SClientResult {
        status,
        peer_cert_subject: subject(&stderr),
        verify_ok: verified(&stderr),
        stdout,
        stderr,
        timed_out,
    }
}

/// The subject from `-brief`'s `Peer certificate: ` line, or the full summary's `subject=`.
fn subject(summary: &str) -> Option<String> {
    summary.lines().find_map(|line| {
        line.strip_prefix("Peer certificate: ")
            .or_else(|| line.strip_prefix("subject="))
            .map(|s| s.trim().to_owned())
    })
}

/// `-brief`'s `Verification: OK`, or the full summary's `Verify return code: 0 (ok)`.
fn verified(summary: &str) -> bool {
    summary
        .lines()
        .any(|line| line == "Verification: OK" || line.trim() == "Verify return code: 0 (ok)")
}
