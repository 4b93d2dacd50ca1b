//! `loadgen idle`: what an idle session costs a proxy, in resident memory.
//!
//! Reads the target process's `VmRSS`, opens `--connections` sessions one after another (each
//! sends one byte and reads its echo, so the proxy has really set up the session and connected
//! its backend), waits a second for the proxy to settle, reads `VmRSS` again, and reports the
//! growth per session. The sessions stay open until the report is written, then close.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use crate::BoxError;
use crate::failures::{self, Failures};
use crate::report::Report;
use crate::window::parse_seconds;

/// How long the proxy is left alone between the last session and the second reading.
const SETTLE: Duration = Duration::from_secs(1);

/// `loadgen idle`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The proxy to open sessions through (its backend must echo).
    #[arg(long)]
    target: SocketAddr,
    /// How many sessions to hold open.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// The process whose memory is measured (the proxy).
    #[arg(long)]
    pid: u32,
    /// The longest opening the sessions may take; those not open by then count as timeouts.
    #[arg(long, value_parser = parse_seconds, default_value = "60")]
    seconds: Duration,
}

pub(crate) async fn run(args: Args) -> Result<(), BoxError> {
    let before = vm_rss_kib(args.pid)?;
    let deadline = Instant::now() + args.seconds;
    let mut failures = Failures::default();
    let mut sessions = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        if Instant::now() >= deadline {
            failures.timeout += 1;
            continue;
        }
        match timeout_at(deadline, open(args.target, deadline)).await {
            Ok(Ok(stream)) => sessions.push(stream),
            Ok(Err(err)) => failures.record(&err),
            Err(_) => failures.timeout += 1,
        }
    }
    tokio::time::sleep(SETTLE).await;
    let after = vm_rss_kib(args.pid)?;
    let opened = sessions.len();
    let per_session = if opened == 0 {
        0.0
    } else {
        (after as f64 - before as f64) / opened as f64
    };
    Report::new("idle")
        .field("target", args.target)
        .field("pid", args.pid)
        .field("connections", args.connections)
        .field("opened", opened)
        .field("rss_before_kib", before)
        .field("rss_after_kib", after)
        .field("kib_per_session", format!("{per_session:.2}"))
        .failures(&failures)
        .emit(&format!(
            "idle via {} (pid {}): {opened} session(s) open, VmRSS {before} -> {after} KiB, \
             {per_session:.2} KiB per session, {} error(s)",
            args.target,
            args.pid,
            failures.total()
        ))?;
    drop(sessions);
    Ok(())
}

/// Opens one session and makes sure it reaches the backend: one byte there and back.
async fn open(target: SocketAddr, deadline: Instant) -> std::io::Result<TcpStream> {
    let mut stream = failures::connect(target, deadline).await?;
    stream.write_all(b"i").await?;
    let mut echo = [0_u8; 1];
    stream.read_exact(&mut echo).await?;
    Ok(stream)
}

/// The resident set size of process `pid`, in KiB, from `/proc/PID/status` (read at once:
/// procfs does not block).
fn vm_rss_kib(pid: u32) -> Result<u64, BoxError> {
    let path = format!("/proc/{pid}/status");
    let status =
        std::fs::read_to_string(&path).map_err(|err| format!("cannot read {path}: {err}"))?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .ok_or_else(|| format!("{path} has no VmRSS line"))?;
    let kib = line
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .map_err(|err| format!("{path}: VmRSS {line:?}: {err}"))?;
    Ok(kib)
}
