//! `loadgen rr`: closed-loop request/response over long connections against an echo backend.
//!
//! Each connection writes `--size` bytes, reads `--size` bytes back, and starts again at once;
//! every exchange completed in the measured window is counted and its latency recorded in an
//! HDR histogram. A connection that fails is counted and not reopened.

use std::net::SocketAddr;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};

use crate::BoxError;
use crate::failures::{self, Failures};
use crate::report::{Report, latency_histogram, parse_size};
use crate::window::{Window, parse_seconds};

/// `loadgen rr`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The proxy or echo backend to load.
    #[arg(long)]
    target: SocketAddr,
    /// How many connections run exchanges at once (each one at a time).
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// How long the run lasts, warm-up included.
    #[arg(long, value_parser = parse_seconds)]
    seconds: Duration,
    /// Also report the CPU time this process (a proxy) spent in the measured window.
    #[arg(long)]
    cpu_pid: Option<u32>,
    /// The size of each request, and of its echoed response.
    #[arg(long, value_parser = parse_size, default_value = "64")]
    size: usize,
}

/// What one connection did in the measured window.
#[derive(Debug)]
struct Exchanges {
    latencies: Histogram<u64>,
    failures: Failures,
}

pub(crate) async fn run(args: Args) -> Result<(), BoxError> {
    let empty = latency_histogram()?;
    let setup_deadline = Instant::now() + failures::CONNECT_TIMEOUT + args.seconds;
    let (streams, mut failures) =
        failures::connect_all(args.target, args.connections, setup_deadline).await;
    let window = Window::starting_now(args.seconds);
    let cpu = args.cpu_pid.map(|pid| crate::cpu::spawn(pid, window));
    let mut connections = JoinSet::new();
    for stream in streams {
        connections.spawn(exchange_until(stream, args.size, empty.clone(), window));
    }
    let mut latencies = empty;
    while let Some(joined) = connections.join_next().await {
        match joined {
            Ok(done) => {
                // Both histograms have the same bounds, so adding cannot fail.
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
    let requests = latencies.len();
    let rps = requests as f64 / secs;
    let report = Report::new("rr")
        .field("target", args.target)
        .field("connections", args.connections)
        .field("size", args.size)
        .field("seconds", format!("{secs:.2}"))
        .field("requests", requests)
        .field("rps", format!("{rps:.0}"))
        .latency(&latencies)
        .cpu(cpu_s)
        .failures(&failures);
    let at = |q: f64| {
        if latencies.is_empty() {
            0
        } else {
            latencies.value_at_quantile(q)
        }
    };
    report.emit(&format!(
        "rr via {}: {} connection(s), {}-byte exchanges: {rps:.0} req/s, p50 {} us, p99 {} us, \
         p99.9 {} us over {secs:.2} s, {} error(s)",
        args.target,
        args.connections,
        args.size,
        at(0.5),
        at(0.99),
        at(0.999),
        failures.total()
    ))?;
    Ok(())
}

/// Runs exchanges on one connection until the window ends or one fails.
async fn exchange_until(
    mut stream: TcpStream,
    size: usize,
    mut latencies: Histogram<u64>,
    window: Window,
) -> Exchanges {
    let request = vec![0x5a_u8; size];
    let mut response = vec![0_u8; size];
    let mut failures = Failures::default();
    loop {
        let started = Instant::now();
        if started >= window.end {
            break;
        }
        // `read_exact` is not cancel-safe; an exchange cut by the deadline ends the connection,
        // so its lost bytes do not matter.
        let exchange = async {
            stream.write_all(&request).await?;
            stream.read_exact(&mut response).await
        };
        match timeout_at(window.end, exchange).await {
            Err(_) => break,
            Ok(Ok(_)) => {
                if window.counts(started) {
                    let micros = started.elapsed().as_micros();
                    latencies.saturating_record(u64::try_from(micros).unwrap_or(u64::MAX).max(1));
                }
            }
            Ok(Err(err)) => {
                failures.record(&err);
                break;
            }
        }
    }
    Exchanges {
        latencies,
        failures,
    }
}
