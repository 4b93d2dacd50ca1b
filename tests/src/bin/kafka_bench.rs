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

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail, ensure};
use clap::Parser;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

/// How long Sluice may take to open its ports.
const STARTUP: Duration = Duration::from_secs(15);
/// How long idle sessions are left alone before Sluice's memory is read again.
const SETTLE: Duration = Duration::from_secs(1);
/// Any single socket operation of the idle measurement or a metrics scrape.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(5);
/// Backend connections the idle measurement lets Sluice have in flight to the mock: below the
/// mock's listen backlog of 5 (`rd_kafka_mock_broker_start_listener`).
const MOCK_BACKLOG: usize = 4;
/// Clock ticks per second in `/proc/PID/stat` (`USER_HZ`, 100 on Linux).
const USER_HZ: f64 = 100.0;

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

/// One measured value, filed for the table under (case, field).
#[derive(Debug)]
struct Sample {
    rep: u32,
    via: Via,
    case: &'static str,
    field: &'static str,
    value: f64,
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

// === output ===

/// A line for people, on standard error.
fn say(line: std::fmt::Arguments<'_>) -> io::Result<()> {
    writeln!(io::stderr().lock(), "{line}")
}

/// A line for scripts, on standard output.
fn result_line(line: std::fmt::Arguments<'_>) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "RESULT {line}")?;
    out.flush()
}

/// What a throughput measurement moved, in how long, at what CPU cost.
#[derive(Debug, Clone, Copy, Default)]
struct Moved {
    messages: u64,
    bytes: u64,
    seconds: f64,
    /// CPU seconds of this process: the librdkafka client and the mock brokers.
    cpu_bench: f64,
    /// CPU seconds of Sluice in user space and in the kernel (~0 when direct).
    cpu_sluice_user: f64,
    cpu_sluice_sys: f64,
}

impl Moved {
    fn add(&mut self, other: Moved) {
        self.messages += other.messages;
        self.bytes += other.bytes;
        self.seconds += other.seconds;
        self.cpu_bench += other.cpu_bench;
        self.cpu_sluice_user += other.cpu_sluice_user;
        self.cpu_sluice_sys += other.cpu_sluice_sys;
    }
}

fn report(
    rep: u32,
    via: Via,
    case: &'static str,
    moved: &Moved,
    samples: &mut Vec<Sample>,
) -> io::Result<()> {
    let seconds = moved.seconds.max(1e-9);
    let gb = (moved.bytes as f64 / 1e9).max(1e-12);
    let fields = [
        ("mbps", moved.bytes as f64 / seconds / 1e6),
        ("msgs_per_s", moved.messages as f64 / seconds),
        ("cpu_bench_s_per_gb", moved.cpu_bench / gb),
        ("cpu_sluice_user_s_per_gb", moved.cpu_sluice_user / gb),
        ("cpu_sluice_sys_s_per_gb", moved.cpu_sluice_sys / gb),
    ];
    let mut line = format!(
        "rep={rep} via={} case={case} messages={} bytes={} seconds={seconds:.3}",
        via.label(),
        moved.messages,
        moved.bytes
    );
    for (field, value) in fields {
        line.push_str(&format!(" {field}={value:.2}"));
        samples.push(Sample {
            rep,
            via,
            case,
            field,
            value,
        });
    }
    result_line(format_args!("{line}"))?;
    say(format_args!(
        "  rep {rep} {:<6} {case}: {} messages in {seconds:.2} s, {:.0} MB/s, {:.0} msgs/s; CPU s/GB: \
         client+mock {:.2}, sluice {:.2} user + {:.2} sys",
        via.label(),
        moved.messages,
        fields[0].1,
        fields[1].1,
        fields[2].1,
        fields[3].1,
        fields[4].1
    ))
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

fn show(value: Option<f64>) -> String {
    match value {
        None => "—".to_owned(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// The markdown table of medians, with Sluice/direct of the medians and of each repetition.
fn table(cli: &Cli, samples: &[Sample]) -> io::Result<()> {
    let (version, _) = rdkafka::util::get_rdkafka_version();
    let (major, minor, patch) = (version >> 24, (version >> 16) & 0xff, (version >> 8) & 0xff);
    let mut out = io::stdout().lock();
    writeln!(out)?;
    writeln!(
        out,
        "Kafka: medians of {} run(s); produce {} messages of {} B (acks={}, linger.ms=5), consume \
         what the {} partitions hold, {} times; librdkafka {major}.{minor}.{patch} and its mock \
         cluster (3 brokers) in one process.",
        cli.repeat, cli.messages, cli.size, cli.acks, cli.partitions, cli.consume_passes
    )?;
    // Where the clients and the mock ran, and Sluice (with `--sluice-cpus`).
    let own = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
            Some(line.trim().to_owned())
        });
    let own = own.as_deref().unwrap_or("?");
    let sluice = cli.sluice_cpus.as_deref().unwrap_or(own);
    writeln!(
        out,
        "CPUs: clients and mock brokers on {own}, Sluice on {sluice}."
    )?;
    if !cli.listener_extra.trim().is_empty() {
        let extra = cli.listener_extra.trim().replace('\n', "; ");
        writeln!(out, "Sluice's Kafka listener adds: `{extra}`.")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "| measurement | direct | Sluice | Sluice/direct | Sluice/direct per run |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---|")?;
    let k = cli.idle_sessions;
    let rows = [
        ("produce", "mbps", "produce (MB/s)".to_owned()),
        ("produce", "msgs_per_s", "produce (msgs/s)".to_owned()),
        ("consume", "mbps", "consume (MB/s)".to_owned()),
        ("consume", "msgs_per_s", "consume (msgs/s)".to_owned()),
        (
            "produce",
            "cpu_bench_s_per_gb",
            "produce: CPU s/GB, client + mock".to_owned(),
        ),
        (
            "produce",
            "cpu_sluice_user_s_per_gb",
            "produce: CPU s/GB, Sluice user".to_owned(),
        ),
        (
            "produce",
            "cpu_sluice_sys_s_per_gb",
            "produce: CPU s/GB, Sluice system".to_owned(),
        ),
        (
            "consume",
            "cpu_bench_s_per_gb",
            "consume: CPU s/GB, client + mock".to_owned(),
        ),
        (
            "consume",
            "cpu_sluice_user_s_per_gb",
            "consume: CPU s/GB, Sluice user".to_owned(),
        ),
        (
            "consume",
            "cpu_sluice_sys_s_per_gb",
            "consume: CPU s/GB, Sluice system".to_owned(),
        ),
        (
            "idle_silent",
            "kib",
            format!("idle, {k} silent sessions (KiB/session)"),
        ),
        (
            "idle_api_versions",
            "kib",
            format!("idle, {k} sessions after ApiVersions (KiB/session)"),
        ),
    ];
    for (case, field, label) in rows {
        let pick = |via: Via| -> Vec<(u32, f64)> {
            samples
                .iter()
                .filter(|s| s.case == case && s.field == field && s.via == via)
                .map(|s| (s.rep, s.value))
                .collect()
        };
        let (direct, proxied) = (pick(Via::Direct), pick(Via::Sluice));
        if direct.is_empty() && proxied.is_empty() {
            continue;
        }
        let d = median(direct.iter().map(|p| p.1).collect());
        let s = median(proxied.iter().map(|p| p.1).collect());
        // Sluice's own CPU when no client goes through it is noise, not a baseline.
        let baseline = d.filter(|_| !field.starts_with("cpu_sluice") && !direct.is_empty());
        let ratio = |s: f64, d: f64| {
            if d > 0.0 {
                format!("{:.2}", s / d)
            } else {
                "—".to_owned()
            }
        };
        let (median_ratio, per_run) = match baseline {
            Some(d_median) => {
                let per_run: Vec<String> = proxied
                    .iter()
                    .filter_map(|(rep, s)| {
                        direct
                            .iter()
                            .find(|(r, _)| r == rep)
                            .map(|(_, d)| ratio(*s, *d))
                    })
                    .collect();
                (
                    s.map_or("—".to_owned(), |s| ratio(s, d_median)),
                    per_run.join(", "),
                )
            }
            None => (
                "—".to_owned(),
                proxied
                    .iter()
                    .map(|(_, s)| show(Some(*s)))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        };
        let d = if baseline.is_some() {
            show(d)
        } else {
            "—".to_owned()
        };
        writeln!(
            out,
            "| {label} | {d} | {} | {median_ratio} | {per_run} |",
            show(s)
        )?;
    }
    writeln!(out)?;
    out.flush()
}

// === processes ===

/// Each idle session is two descriptors here (the client, and the mock's end of Sluice's
/// backend connection); fail early rather than count refusals.
fn check_fd_limit(sessions: usize) -> anyhow::Result<()> {
    let limits =
        fs::read_to_string("/proc/self/limits").context("cannot read /proc/self/limits")?;
    let soft = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or_else(|| anyhow!("/proc/self/limits has no \"Max open files\" line"))?;
    if soft == "unlimited" {
        return Ok(());
    }
    let soft: usize = soft
        .parse()
        .with_context(|| format!("open file limit {soft:?}"))?;
    let need = 2 * sessions + 512;
    ensure!(
        soft >= need,
        "{sessions} idle sessions need about {need} open files, the limit is {soft}: raise it with `ulimit -n` or lower --idle-sessions"
    );
    Ok(())
}

/// CPU seconds process `pid` has used in user space and in the kernel, its exited threads
/// included.
fn cpu_seconds(pid: u32) -> anyhow::Result<(f64, f64)> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // After "pid (comm) ", fields from the 3rd (state) on; utime and stime are the 14th and 15th.
    let rest = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow!("{path}: no \") \""))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> anyhow::Result<f64> {
        let text = fields
            .get(i)
            .ok_or_else(|| anyhow!("{path}: too few fields"))?;
        Ok(text
            .parse::<u64>()
            .with_context(|| format!("{path}: field {text:?}"))? as f64)
    };
    Ok((tick(11)? / USER_HZ, tick(12)? / USER_HZ))
}

/// A Sluice process with a port-per-broker Kafka listener in front of the mock; killed on drop.
#[derive(Debug)]
struct Sluice {
    child: Child,
    bootstrap: SocketAddr,
    admin: SocketAddr,
    log: PathBuf,
}

impl Sluice {
    fn start(cli: &Cli, work: &Path, tag: &str, mock: &[SocketAddr]) -> anyhow::Result<Self> {
        let exe = &cli.sluice;
        // The bootstrap port p, then broker node N on p + 1 + N (the mock's nodes are 1..=3).
        let base = free_port_block(5)?;
        let admin = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port_block(1)?));
        let backends: Vec<String> = mock.iter().map(|addr| format!("\"{addr}\"")).collect();
        let config = format!(
            "[admin]\nbind = \"{admin}\"\n\n\
             [[listener]]\nname = \"kafka\"\nbind = \"127.0.0.1:{base}\"\nprotocol = \"kafka\"\n\
             cluster = \"main\"\ngateway = \"port-per-broker\"\nadvertised_host = \"127.0.0.1\"\n\
             broker_port_start = {}\n{}\n\n[cluster.main]\nbackends = [{}]\n\n\
             # Nothing to drain between benchmark runs: stop at once.\n\
             [shutdown]\naccept_grace = \"0s\"\ndrain_timeout = \"1s\"\n",
            base + 1,
            cli.listener_extra,
            backends.join(", ")
        );
        let path = work.join(format!("sluice-kafka-{tag}.toml"));
        fs::write(&path, config).with_context(|| format!("cannot write {}", path.display()))?;
        let log = work.join(format!("sluice-kafka-{tag}.log"));
        let log_file =
            File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        // As in the TCP part: `warn` drops the info line each closed session writes.
        // `taskset` execs Sluice in its own process: the child's pid stays Sluice's.
        let mut command = match &cli.sluice_cpus {
            Some(cpus) => {
                let mut taskset = Command::new("taskset");
                taskset.arg("-c").arg(cpus).arg(exe);
                taskset
            }
            None => Command::new(exe),
        };
        let child = command
            .args(["run", "--config"])
            .arg(&path)
            // For `bench/run.sh`, to stop a Sluice this process could not (it was killed).
            .arg("--pid-file")
            .arg(work.join(format!("sluice-kafka-{tag}.pid")))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        let mut sluice = Self {
            child,
            bootstrap: SocketAddr::from((Ipv4Addr::LOCALHOST, base)),
            admin,
            log,
        };
        let deadline = Instant::now() + STARTUP;
        // Sluice asks the cluster for its brokers at start and opens their ports then.
        for port in [base, admin.port(), base + 2, base + 3, base + 4] {
            sluice.wait_port(port, deadline)?;
        }
        Ok(sluice)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_port(&mut self, port: u16, deadline: Instant) -> anyhow::Result<()> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("sluice exited ({status}); see {}", self.log.display());
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "sluice is not listening on {addr} after {STARTUP:?}; see {}",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `sluice_sessions_active` from `/metrics`.
    fn sessions_active(&self) -> anyhow::Result<u64> {
        let mut stream = TcpStream::connect_timeout(&self.admin, SOCKET_TIMEOUT)?;
        stream.set_read_timeout(Some(SOCKET_TIMEOUT))?;
        stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\n\r\n")?;
        let mut text = String::new();
        stream.take(4 << 20).read_to_string(&mut text)?;
        let value = text
            .lines()
            .find_map(|line| line.strip_prefix("sluice_sessions_active "))
            .ok_or_else(|| anyhow!("no sluice_sessions_active in /metrics"))?;
        Ok(value.trim().parse()?)
    }

    /// Waits until `/metrics` counts `want` sessions (or more, with `at_least`).
    fn wait_sessions(&self, want: u64, at_least: bool, deadline: Instant) -> anyhow::Result<()> {
        loop {
            let now = self.sessions_active()?;
            if now == want || (at_least && now > want) {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "sluice has {now} sessions, not {want}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A memory figure of `/proc/PID/status` in KiB: `VmRSS` (resident now) or `VmHWM` (peak).
    fn status_kib(&self, key: &str) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/status", self.pid());
        let status = fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        let line = status
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .ok_or_else(|| anyhow!("{path} has no {key} line"))?;
        let kib = line.trim().trim_end_matches("kB").trim();
        kib.parse()
            .with_context(|| format!("{path}: {key} {line:?}"))
    }

    /// SIGTERM, then SIGKILL (by drop) if it has not exited within 5 s.
    fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .context("cannot run kill")?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && self.child.try_wait()?.is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A port `p` on loopback with `p + 1 .. p + count` free too (then all released).
///
/// Picked below Linux's ephemeral range (32768 up), not with `bind(0)`: that hands out odd
/// ports whose even neighbours outgoing connections take, and after the idle measurement
/// thousands of those linger in TIME-WAIT, which a listener cannot bind over.
fn free_port_block(count: u16) -> anyhow::Result<u16> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    let mut state = u64::from(nanos) ^ (u64::from(std::process::id()) << 32);
    for _ in 0..200 {
        // splitmix64: a different candidate each time.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let base = u16::try_from(20_000 + (z ^ (z >> 31)) % 12_000)?;
        let held: Vec<_> = (0..count)
            .map_while(|i| TcpListener::bind((Ipv4Addr::LOCALHOST, base + i)).ok())
            .collect();
        if held.len() == usize::from(count) {
            return Ok(base);
        }
    }
    bail!("no block of {count} free ports on loopback between 20000 and 32000")
}

// === idle ===

/// Sluice's resident memory per idle session, in KiB: `count` sessions on the bootstrap port,
/// silent or after one ApiVersions request and its answer; each holds a backend connection to
/// a mock broker too.
fn idle(sluice: &Sluice, count: usize, api_versions: bool, step: Duration) -> anyhow::Result<f64> {
    let deadline = Instant::now() + step;
    // The port checks at start opened sessions too: let them close.
    sluice.wait_sessions(0, false, deadline)?;
    let before = sluice.status_kib("VmRSS")?;
    let fds_before = open_fds()?;
    let mut sessions = Vec::with_capacity(count);
    for i in 0..count {
        ensure!(
            Instant::now() < deadline,
            "opened only {i} of {count} idle sessions in {step:?}"
        );
        let correlation_id = i32::try_from(i).unwrap_or(i32::MAX);
        let session = open_idle(sluice.bootstrap, api_versions, correlation_id)
            .with_context(|| format!("idle session {i} of {count}"))?;
        sessions.push(session);
        // The mock listens with a backlog of 5 and accepts slowly: beyond it, connections are
        // half-open (Sluice sees them connected, the mock does not) until SYN-ACK retries, and
        // such sessions linger for `half_close_timeout` after the client leaves. A silent
        // session proves nothing, so every few sessions wait until the mock has accepted
        // theirs (each is a client descriptor and an accepted one in this process).
        if !api_versions && (sessions.len() % MOCK_BACKLOG == 0 || sessions.len() == count) {
            let want = fds_before + 2 * sessions.len();
            while open_fds()? < want {
                ensure!(
                    Instant::now() < deadline,
                    "the mock did not accept {want} connections in {step:?}"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    sluice.wait_sessions(count as u64, true, deadline)?;
    std::thread::sleep(SETTLE);
    let after = sluice.status_kib("VmRSS")?;
    let per_session = (after as f64 - before as f64) / count as f64;
    let kind = if api_versions {
        "after ApiVersions"
    } else {
        "silent"
    };
    say(format_args!(
        "  sluice idle, {kind}: {count} sessions, VmRSS {before} -> {after} KiB, {per_session:.2} KiB per session"
    ))?;
    drop(sessions);
    sluice.wait_sessions(0, false, deadline)?;
    Ok(per_session)
}

/// Descriptors this process holds: the idle clients and, as the mock runs here, the mock's
/// accepted ends of Sluice's backend connections.
fn open_fds() -> anyhow::Result<usize> {
    Ok(fs::read_dir("/proc/self/fd")
        .context("cannot list /proc/self/fd")?
        .count())
}

fn open_idle(target: SocketAddr, api_versions: bool, correlation_id: i32) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect_timeout(&target, SOCKET_TIMEOUT)?;
    if !api_versions {
        return Ok(stream);
    }
    stream.set_read_timeout(Some(SOCKET_TIMEOUT))?;
    stream.set_write_timeout(Some(SOCKET_TIMEOUT))?;
    // ApiVersions v0 with request header v1: api key 18, version 0, correlation id, client id.
    let client_id = b"kafka_bench";
    let mut frame = Vec::with_capacity(32);
    frame.extend_from_slice(&(10 + client_id.len() as i32).to_be_bytes());
    frame.extend_from_slice(&18_i16.to_be_bytes());
    frame.extend_from_slice(&0_i16.to_be_bytes());
    frame.extend_from_slice(&correlation_id.to_be_bytes());
    frame.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    frame.extend_from_slice(client_id);
    stream.write_all(&frame)?;
    let mut len = [0_u8; 4];
    stream.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    if !(4..=1 << 20).contains(&len) {
        return Err(invalid(format!("ApiVersions response of {len} bytes")));
    }
    let mut body = vec![0_u8; len];
    stream.read_exact(&mut body)?;
    if body[..4] != correlation_id.to_be_bytes() {
        return Err(invalid(
            "ApiVersions response to another correlation id".to_owned(),
        ));
    }
    Ok(stream)
}

// === produce and consume ===

/// Counts delivery reports; keeps the first failure's text.
#[derive(Debug, Default)]
struct Deliveries {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: OnceLock<String>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err((err, _)) => {
                let _ = self.first_error.set(err.to_string());
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// A measured interval: wall time and the CPU time of this process and of Sluice.
#[derive(Debug)]
struct Meter {
    start: Instant,
    cpu_bench: (f64, f64),
    cpu_sluice: (f64, f64),
    sluice: u32,
}

impl Meter {
    fn start(sluice: u32) -> anyhow::Result<Self> {
        Ok(Self {
            start: Instant::now(),
            cpu_bench: cpu_seconds(std::process::id())?,
            cpu_sluice: cpu_seconds(sluice)?,
            sluice,
        })
    }

    fn stop(self, messages: u64, bytes: u64) -> anyhow::Result<Moved> {
        let seconds = self.start.elapsed().as_secs_f64();
        let bench = cpu_seconds(std::process::id())?;
        let sluice = cpu_seconds(self.sluice)?;
        Ok(Moved {
            messages,
            bytes,
            seconds,
            cpu_bench: bench.0 + bench.1 - self.cpu_bench.0 - self.cpu_bench.1,
            cpu_sluice_user: sluice.0 - self.cpu_sluice.0,
            cpu_sluice_sys: sluice.1 - self.cpu_sluice.1,
        })
    }
}

/// Produces `messages` messages round-robin over the partitions and waits for every delivery
/// report. Timed from the first send to the last report; the producer's metadata (and so its
/// bootstrap connection) is fetched before.
fn produce(
    cli: &Cli,
    bootstrap: &str,
    topic: &str,
    messages: u64,
    sluice: u32,
    step: Duration,
) -> anyhow::Result<Moved> {
    let deadline = Instant::now() + step;
    let producer: BaseProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", &cli.acks)
        .set("linger.ms", "5")
        .set("message.timeout.ms", step.as_millis().to_string())
        .create_with_context(Deliveries::default())?;
    producer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let payload = vec![0x5a_u8; cli.size];
    let meter = Meter::start(sluice)?;
    for i in 0..messages {
        let partition = (i % cli.partitions as u64) as i32;
        let mut record = BaseRecord::<(), [u8]>::to(topic)
            .payload(&payload[..])
            .partition(partition);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    ensure!(
                        Instant::now() < deadline,
                        "queued only {i} of {} messages in time",
                        messages
                    );
                    record = back;
                    producer.poll(Duration::from_millis(5));
                }
                Err((err, _)) => return Err(err.into()),
            }
        }
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(deadline.saturating_duration_since(Instant::now()))
        .context("not every message was delivered in time")?;
    let delivered = producer.context().delivered.load(Ordering::Relaxed);
    let moved = meter.stop(delivered, delivered * cli.size as u64)?;
    let failed = producer.context().failed.load(Ordering::Relaxed);
    let first_error = producer
        .context()
        .first_error
        .get()
        .map_or("?", String::as_str);
    ensure!(
        failed == 0,
        "{failed} message(s) failed, the first: {first_error}"
    );
    ensure!(
        delivered == messages,
        "{delivered} of {} messages delivered",
        messages
    );
    Ok(moved)
}

/// Reads every message the topic holds, `--consume-passes` times, each time with a new consumer
/// assigned every partition from the beginning (no consumer group). Each pass is timed from the
/// assignment to the last message; the consumer's metadata is fetched before.
fn consume(
    cli: &Cli,
    bootstrap: &str,
    topic: &str,
    sluice: u32,
    step: Duration,
) -> anyhow::Result<Moved> {
    let deadline = Instant::now() + step;
    let mut total = Moved::default();
    for _ in 0..cli.consume_passes {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            // Required by librdkafka even for an assignment; the group is never joined.
            .set("group.id", "kafka-bench")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // librdkafka's defaults stall a fast consumer: a partition whose local queue is
            // over its threshold is not fetched again for `fetch.queue.backoff.ms` (1 s), and a
            // fetch left with only partitions at their end waits `fetch.wait.max.ms` (500 ms)
            // at the mock. Direct runs hit this now and then (a pass stalled for 1 s), runs
            // through Sluice rarely: the benchmark would measure the backoff, not the path.
            .set("fetch.queue.backoff.ms", "10")
            .set("fetch.wait.max.ms", "10")
            .create()?;
        consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let mut partitions = TopicPartitionList::new();
        let mut expected = 0_u64;
        for partition in 0..cli.partitions {
            let (low, high) =
                consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
            expected += u64::try_from(high - low)?;
            partitions.add_partition_offset(topic, partition, Offset::Beginning)?;
        }
        let meter = Meter::start(sluice)?;
        consumer.assign(&partitions)?;
        let (mut messages, mut bytes) = (0_u64, 0_u64);
        while messages < expected {
            ensure!(
                Instant::now() < deadline,
                "consumed only {messages} of {expected} messages in time"
            );
            match consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(message)) => {
                    messages += 1;
                    bytes += message.payload_len() as u64;
                }
                Some(Err(err)) => return Err(err.into()),
            }
        }
        total.add(meter.stop(messages, bytes)?);
        ensure!(
            bytes == messages * cli.size as u64,
            "consumed {bytes} bytes in {messages} messages of {} B",
            cli.size
        );
    }
    Ok(total)
}
