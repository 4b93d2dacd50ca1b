//! `loadgen connect`: a new connection per request, against an echo backend.
//!
//! `--concurrency` workers each loop: connect, write 64 bytes, read the 64 echoed back, close.
//! Each completed cycle in the measured window counts as one connection; failures are counted
//! by kind (refused, reset, timeout) and never end the run. After a failure a worker waits a
//! millisecond, so a target that refuses everything is not spun on.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};

use crate::BoxError;
use crate::failures::{self, Failures};
use crate::report::{Report, latency_histogram};
use crate::window::{Window, parse_seconds};

/// The size of the request and of the echoed response.
const REQUEST: usize = 64;

/// The longest one cycle may take before it counts as a timeout (a lost SYN is retried by the
/// kernel after one second).
const CYCLE_TIMEOUT: Duration = Duration::from_secs(2);

/// `loadgen connect`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The proxy or echo backend to load.
    #[arg(long)]
    target: SocketAddr,
    /// How long the run lasts, warm-up included.
    #[arg(long, value_parser = parse_seconds)]
    seconds: Duration,
    /// Also report the CPU time this process (a proxy) spent in the measured window.
    #[arg(long)]
    cpu_pid: Option<u32>,
    /// How many cycles run at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

/// What one worker did in the measured window.
#[derive(Debug)]
struct Cycles {
    latencies: Histogram<u64>,
    failures: Failures,
}

pub(crate) async fn run(args: Args) -> Result<(), BoxError> {
    let empty = latency_histogram()?;
    let window = Window::starting_now(args.seconds);
    let cpu = args.cpu_pid.map(|pid| crate::cpu::spawn(pid, window));
    let mut workers = JoinSet::new();
    for _ in 0..args.concurrency {
        workers.spawn(cycle_until(args.target, empty.clone(), window));
    }
    let mut latencies = empty;
    let mut failures = Failures::default();
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(done) => {
                latencies.add(&done.latencies)?;
                failures.add(done.failures);
            }
            Err(_) => failures.other += 1,
        }
    }
    let cpu_s = match cpu {
        Some(sampling) => sampling.await.ok().flatten(),
        None => None,
    };
    let secs = window.measured_secs();
    let connections = latencies.len();
    let cps = connections as f64 / secs;
    Report::new("connect")
        .field("target", args.target)
        .field("concurrency", args.concurrency)
        .field("seconds", format!("{secs:.2}"))
        .field("connections", connections)
        .field("cps", format!("{cps:.0}"))
        .latency(&latencies)
        .cpu(cpu_s)
        .failures(&failures)
        .emit(&format!(
            "connect via {}: concurrency {}, {cps:.0} connections/s over {secs:.2} s; failures: \
             {} refused, {} reset, {} timed out, {} other",
            args.target,
            args.concurrency,
            failures.refused,
            failures.reset,
            failures.timeout,
            failures.other
        ))?;
    Ok(())
}

/// Runs cycles one after another until the window ends.
async fn cycle_until(target: SocketAddr, mut latencies: Histogram<u64>, window: Window) -> Cycles {
    let mut failures = Failures::default();
    let request = [0x5a_u8; REQUEST];
    let mut response = [0_u8; REQUEST];
    loop {
        let started = Instant::now();
        if started >= window.end {
            break;
        }
        let deadline = window.end.min(started + CYCLE_TIMEOUT);
        let outcome = timeout_at(deadline, cycle(target, &request, &mut response)).await;
        let counted = window.counts(started);
        match outcome {
            // Cut by the end of the run: neither a success nor a failure.
            Err(_) if deadline == window.end => break,
            Err(_) => failures.timeout += u64::from(counted),
            Ok(Ok(())) => {
                if counted {
                    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                    latencies.saturating_record(micros.max(1));
                }
            }
            Ok(Err(err)) => {
                if counted {
                    failures.record(&err);
                }
                tokio::time::sleep_until(window.end.min(Instant::now() + Duration::from_millis(1)))
                    .await;
            }
        }
    }
    Cycles {
        latencies,
        failures,
    }
}

/// One connection: connect, send the request, read the echo, close (by dropping the socket).
async fn cycle(target: SocketAddr, request: &[u8], response: &mut [u8]) -> io::Result<()> {
    let mut stream = failures::connect(target, Instant::now() + failures::CONNECT_TIMEOUT).await?;
    stream.write_all(request).await?;
    stream.read_exact(response).await?;
    Ok(())
}
