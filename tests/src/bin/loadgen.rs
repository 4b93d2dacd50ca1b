//! `loadgen`: the load generator and backends behind `bench/run.sh`.
//!
//! Each mode drives one kind of load at a target (a backend directly, HAProxy or Sluice) for a
//! bounded time and prints one `RESULT mode=... key=value ...` line for scripts, then one line
//! for people. `serve` is the backend the other modes run against: echo, sink or source.
//! `docs/performance.md` says what each mode measures.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// A binary's crate root resolves `mod x;` beside itself (`src/bin/x.rs`); the modes live in
// `src/bin/loadgen/` so that Cargo does not take each of them for a binary of its own.
#[path = "loadgen/connect.rs"]
mod connect;
#[path = "loadgen/cpu.rs"]
mod cpu;
#[path = "loadgen/failures.rs"]
mod failures;
#[path = "loadgen/idle.rs"]
mod idle;
#[path = "loadgen/report.rs"]
mod report;
#[path = "loadgen/rr.rs"]
mod rr;
#[path = "loadgen/serve.rs"]
mod serve;
#[path = "loadgen/throughput.rs"]
mod throughput;
#[path = "loadgen/window.rs"]
mod window;

/// What went wrong with a run as a whole (a single connection's error is counted instead).
type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    about = "Load generator and backends for benchmarking Sluice (see docs/performance.md)"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Bulk data over N long connections; reports MB/s (decimal).
    Throughput(throughput::Args),
    /// Closed-loop request/response against an echo server; reports requests/s and latency.
    Rr(rr::Args),
    /// A new connection per 64-byte request/response; reports connections/s and failures.
    Connect(connect::Args),
    /// N idle sessions; reports the growth of a process's VmRSS per session.
    Idle(idle::Args),
    /// A backend for the other modes; prints its bound address as the first line.
    Serve(serve::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("loadgen: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.mode {
            Mode::Throughput(args) => throughput::run(args).await,
            Mode::Rr(args) => rr::run(args).await,
            Mode::Connect(args) => connect::run(args).await,
            Mode::Idle(args) => idle::run(args).await,
            Mode::Serve(args) => serve::run(args).await,
        }
    });
    // Connection tasks still parked in the kernel (a `serve` stopped by a signal) must not
    // delay the exit.
    runtime.shutdown_background();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Standard error may be closed too; there is nowhere left to say so.
            let _ = writeln!(std::io::stderr().lock(), "loadgen: {err}");
            ExitCode::FAILURE
        }
    }
}
