//! `loadgen throughput`: N long connections move bulk data through the target.
//!
//! - `up`: each connection writes `--chunk`-sized buffers as fast as the target takes them
//!   (the backend should be a sink);
//! - `down`: each connection only reads (the backend should be a source);
//! - `both`: each connection writes and reads at once (the backend should be an echo).
//!
//! `mbps` is every byte written plus every byte read during the measured window, in decimal
//! megabytes per second; `up_mbps` and `down_mbps` split it.

use std::net::SocketAddr;
use std::time::Duration;

use clap::ValueEnum;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};

use crate::BoxError;
use crate::failures::{self, Failures};
use crate::report::{Report, parse_size};
use crate::window::{Window, parse_seconds};

/// `loadgen throughput`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The proxy or backend to load.
    #[arg(long)]
    target: SocketAddr,
    /// How many connections stream at once.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// How long the run lasts, warm-up included.
    #[arg(long, value_parser = parse_seconds)]
    seconds: Duration,
    /// Also report the CPU time this process (a proxy) spent in the measured window.
    #[arg(long)]
    cpu_pid: Option<u32>,
    /// Which way the data flows.
    #[arg(long, value_enum, default_value_t = Direction::Up)]
    direction: Direction,
    /// The size of each write and of the read buffer.
    #[arg(long, value_parser = parse_size, default_value = "64KiB")]
    chunk: usize,
}

/// Which way bulk data flows, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Direction {
    /// Client to backend.
    Up,
    /// Backend to client.
    Down,
    /// Both at once.
    Both,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
            Direction::Both => "both",
        }
    }
}

/// Bytes one loop moved in the measured window, and what stopped it early.
#[derive(Debug, Default, Clone, Copy)]
struct Counted {
    bytes: u64,
    failures: Failures,
}

/// What one connection moved each way.
#[derive(Debug, Default, Clone, Copy)]
struct Moved {
    sent: Counted,
    received: Counted,
}

pub(crate) async fn run(args: Args) -> Result<(), BoxError> {
    // Connections are opened before the clock starts: this mode measures streaming, not setup.
    let setup_deadline = Instant::now() + failures::CONNECT_TIMEOUT + args.seconds;
    let (streams, mut failures) =
        failures::connect_all(args.target, args.connections, setup_deadline).await;
    let window = Window::starting_now(args.seconds);
    let cpu = args.cpu_pid.map(|pid| crate::cpu::spawn(pid, window));
    let mut connections = JoinSet::new();
    for stream in streams {
        connections.spawn(stream_one(stream, args.direction, args.chunk, window));
    }
    let mut total = Moved::default();
    while let Some(joined) = connections.join_next().await {
        match joined {
            Ok(moved) => {
                total.sent.bytes += moved.sent.bytes;
                total.received.bytes += moved.received.bytes;
                failures.add(moved.sent.failures);
                failures.add(moved.received.failures);
            }
            Err(_) => failures.other += 1,
        }
    }
    let cpu_s = match cpu {
        Some(sampling) => sampling.await.ok().flatten(),
        None => None,
    };
    let secs = window.measured_secs();
    let up = total.sent.bytes as f64 / secs / 1e6;
    let down = total.received.bytes as f64 / secs / 1e6;
    let direction = args.direction.name();
    Report::new("throughput")
        .field("target", args.target)
        .field("direction", direction)
        .field("connections", args.connections)
        .field("chunk", args.chunk)
        .field("seconds", format!("{secs:.2}"))
        .field("mbps", format!("{:.1}", up + down))
        .field("up_mbps", format!("{up:.1}"))
        .field("down_mbps", format!("{down:.1}"))
        .field("bytes_up", total.sent.bytes)
        .field("bytes_down", total.received.bytes)
        .cpu(cpu_s)
        .failures(&failures)
        .emit(&format!(
            "throughput {direction} via {}: {} connection(s), {:.1} MB/s (up {up:.1}, down \
             {down:.1}) over {secs:.2} s, {} error(s)",
            args.target,
            args.connections,
            up + down,
            failures.total()
        ))?;
    Ok(())
}

/// Streams over one connection until the window ends or an error stops it.
async fn stream_one(
    mut stream: tokio::net::TcpStream,
    direction: Direction,
    chunk: usize,
    window: Window,
) -> Moved {
    let data = vec![0x5a_u8; chunk];
    let mut buffer = vec![0_u8; chunk];
    let (mut reader, mut writer) = stream.split();
    let (sent, received) = match direction {
        Direction::Up => (
            write_until(&mut writer, &data, window).await,
            Counted::default(),
        ),
        Direction::Down => (
            Counted::default(),
            read_until(&mut reader, &mut buffer, window).await,
        ),
        Direction::Both => tokio::join!(
            write_until(&mut writer, &data, window),
            read_until(&mut reader, &mut buffer, window)
        ),
    };
    Moved { sent, received }
}

/// Writes `data` again and again until the window ends. `write` is cancel-safe, so what the
/// deadline interrupts was not written and is not counted.
async fn write_until<W: AsyncWrite + Unpin>(
    writer: &mut W,
    data: &[u8],
    window: Window,
) -> Counted {
    let mut counted = Counted::default();
    loop {
        match timeout_at(window.end, writer.write(data)).await {
            Err(_) => return counted,
            Ok(Ok(0)) => {
                counted.failures.reset += 1;
                return counted;
            }
            Ok(Ok(n)) => {
                if window.counts(Instant::now()) {
                    counted.bytes += n as u64;
                }
            }
            Ok(Err(err)) => {
                counted.failures.record(&err);
                return counted;
            }
        }
    }
}

/// Reads until the window ends; an EOF before then is the peer giving up, counted as a reset.
async fn read_until<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut [u8],
    window: Window,
) -> Counted {
    let mut counted = Counted::default();
    loop {
        match timeout_at(window.end, reader.read(buffer)).await {
            Err(_) => return counted,
            Ok(Ok(0)) => {
                counted.failures.reset += 1;
                return counted;
            }
            Ok(Ok(n)) => {
                if window.counts(Instant::now()) {
                    counted.bytes += n as u64;
                }
            }
            Ok(Err(err)) => {
                counted.failures.record(&err);
                return counted;
            }
        }
    }
}
