//! `kafka_bench`: Kafka produce and consume throughput with librdkafka (the `rdkafka` crate),
//! directly against librdkafka's mock cluster and through Sluice, plus what an idle Kafka
//! session costs Sluice in resident memory. The Kafka part of `bench/run.sh`;
//! `docs/performance.md` says what each row means.
//!
//! One process does it all: it starts a mock cluster of 3 brokers in-process, writes a Sluice
//! config with a port-per-broker Kafka listener in front of it, starts `--sluice` (its log goes
//! to the work directory), and in each repetition measures direct and through Sluice one after
//! the other (the order alternates between repetitions). Sluice is started afresh for each idle
//! measurement, so memory an earlier run freed cannot hide what a session costs.
//!
//! Each measurement prints a `RESULT key=value ...` line to standard output and a line for
//! people to standard error; at the end, a markdown table of medians goes to standard output.
//!
//! The mock keeps the newest 5 MiB of each partition and drops older records. Produce is
//! therefore not limited in size, and consume reads back what the partitions hold after the
//! produce run (everything from the low to the high watermark), in `--consume-passes` passes.
//!
//! Its parts: `sluice` starts and watches the Sluice process, `produce`, `consume` and `idle`
//! measure, `meter` times a measurement and reads CPU time, and `report` prints the lines and
//! the table.

use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use clap::Parser;
use rdkafka::mocking::MockCluster;

use crate::consume::consume;
use crate::idle::{check_fd_limit, idle};
use crate::produce::produce;
use crate::report::{Sample, report, result_line, say, table};
use crate::sluice::Sluice;

// `src/bin/kafka_bench/main.rs` is the binary; Cargo takes no other file here for one.
mod consume;
mod idle;
mod meter;
mod produce;
mod report;
mod sluice;

/// Any single socket operation of the idle measurement or a metrics scrape.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Parser)]
#[command(
    name = "kafka_bench",
    // A later option wins: `bench/run.sh` adds `--idle-sessions 0` to its common arguments.
    args_override_self = true,
    about = "Kafka produce/consume throughput and idle memory, direct and through Sluice \
             (see docs/performance.md)"
)]
struct Cli {
    /// The `sluice` binary to start in front of the mock cluster.
    #[arg(long)]
    sluice: PathBuf,
    /// Repetitions; the table shows medians.
    #[arg(long, default_value_t = 3)]
    repeat: u32,
    /// Messages per produce measurement.
    #[arg(long, default_value_t = 2_000_000)]
    messages: u64,
    /// Payload bytes per message (no key).
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// The producer's `acks` (`0`, `1` or `all`).
    #[arg(long, default_value = "all")]
    acks: String,
    /// Partitions of the topic (messages go round-robin); the mock keeps 5 MiB of each.
    #[arg(long, default_value_t = 64)]
    partitions: i32,
    /// How many times a consume measurement reads the topic, each time with a new consumer.
    #[arg(long, default_value_t = 8)]
    consume_passes: u32,
    /// Idle sessions opened for each memory measurement; 0 skips them.
    #[arg(long, default_value_t = 2000)]
    idle_sessions: usize,
    /// The longest one produce, consume or idle measurement may take, in seconds.
    #[arg(long, default_value_t = 120)]
    step_timeout: u64,
    /// Run Sluice on these CPUs only (`taskset -c LIST`), e.g. to give it a core of its own
    /// while this process is pinned to another; the table's title says so.
    #[arg(long)]
    sluice_cpus: Option<String>,
    /// TOML lines added to Sluice's Kafka listener, e.g. `read_buffer = "256KiB"`; the table's
    /// title repeats them.
    #[arg(long, default_value = "")]
    listener_extra: String,
    /// Where the Sluice configs and logs go (kept); without it, a temporary directory that a
    /// successful run removes.
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

/// Where a measurement's clients connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Direct,
    Sluice,
}

impl Via {
    fn label(self) -> &'static str {
        match self {
            Via::Direct => "direct",
            Via::Sluice => "sluice",
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Standard error may be closed too; there is nowhere left to say so.
            let _ = writeln!(io::stderr().lock(), "kafka_bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    ensure!(
        cli.repeat > 0 && cli.messages > 0 && cli.size > 0,
        "--repeat, --messages and --size must be at least 1"
    );
    ensure!(
        cli.partitions > 0 && cli.consume_passes > 0,
        "--partitions and --consume-passes must be at least 1"
    );
    check_fd_limit(cli.idle_sessions)?;
    let (work, temporary) = match &cli.work_dir {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!("sluice-kafka-bench.{}", std::process::id())),
            true,
        ),
    };
    fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let mock = MockCluster::new(3).context("cannot start the mock cluster")?;
    let mock_servers = mock.bootstrap_servers();
    let mock_addrs = mock_servers
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<SocketAddr>, _>>()
        .with_context(|| format!("mock bootstrap servers {mock_servers:?}"))?;
    // One topic per target, reused: the mock keeps its newest 5 MiB per partition.
    for via in [Via::Direct, Via::Sluice] {
        mock.create_topic(&topic(via), cli.partitions, 1)
            .with_context(|| format!("cannot create topic {}", topic(via)))?;
    }
    say(format_args!(
        "kafka: mock cluster at {mock_servers}; {} repetition(s), {} messages of {} B, acks={}, \
         {} partitions; work dir {}",
        cli.repeat,
        cli.messages,
        cli.size,
        cli.acks,
        cli.partitions,
        work.display()
    ))?;

    let step = Duration::from_secs(cli.step_timeout);
    let mut samples = Vec::new();
    for rep in 1..=cli.repeat {
        if cli.idle_sessions > 0 {
            for (case, handshake) in [("idle_silent", false), ("idle_api_versions", true)] {
                let tag = format!("{rep}-{case}");
                let sluice = Sluice::start(cli, &work, &tag, &mock_addrs)?;
                let kib = idle(&sluice, cli.idle_sessions, handshake, step)?;
                sluice.stop()?;
                result_line(format_args!(
                    "rep={rep} via=sluice case={case} kib_per_session={kib:.2}"
                ))?;
                samples.push(Sample {
                    rep,
                    via: Via::Sluice,
                    case,
                    field: "kib",
                    value: kib,
                });
            }
        }
        let sluice = Sluice::start(cli, &work, &rep.to_string(), &mock_addrs)?;
        if rep == 1 {
            // Untimed, one run's worth (at least the mock's retention) into each topic: the
            // first timed run would otherwise pay alone for the mock's first allocations
            // (it measured 5-10% slower).
            let retained = cli.partitions as u64 * (5 << 20) / cli.size as u64;
            for via in [Via::Direct, Via::Sluice] {
                produce(
                    cli,
                    &mock_servers,
                    &topic(via),
                    retained.max(cli.messages),
                    sluice.pid(),
                    step,
                )
                .context("warm-up")?;
            }
        }
        let order = if rep % 2 == 1 {
            [Via::Direct, Via::Sluice]
        } else {
            [Via::Sluice, Via::Direct]
        };
        for via in order {
            let bootstrap = match via {
                Via::Direct => mock_servers.clone(),
                Via::Sluice => sluice.bootstrap.to_string(),
            };
            let produced = produce(
                cli,
                &bootstrap,
                &topic(via),
                cli.messages,
                sluice.pid(),
                step,
            )
            .with_context(|| format!("produce via {} ({bootstrap})", via.label()))?;
            report(rep, via, "produce", &produced, &mut samples)?;
            let consumed = consume(cli, &bootstrap, &topic(via), sluice.pid(), step)
                .with_context(|| format!("consume via {} ({bootstrap})", via.label()))?;
            report(rep, via, "consume", &consumed, &mut samples)?;
        }
        let peak = sluice.status_kib("VmHWM")?;
        say(format_args!(
            "  rep {rep} sluice peak resident memory (VmHWM): {peak} KiB"
        ))?;
        sluice.stop()?;
    }
    table(cli, &samples)?;
    if temporary {
        fs::remove_dir_all(&work).with_context(|| format!("cannot remove {}", work.display()))?;
    }
    Ok(())
}

fn topic(via: Via) -> String {
    format!("bench-{}", via.label())
}
