//! The Sluice process under test: its config (a port-per-broker Kafka listener in front of the
//! mock cluster, and an admin listener), the loopback ports it gets, its start and stop, and
//! what it reports about itself (sessions in `/metrics`, memory in `/proc/PID/status`).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail, ensure};

use crate::{Cli, SOCKET_TIMEOUT};

/// How long Sluice may take to open its ports.
const STARTUP: Duration = Duration::from_secs(15);

/// A Sluice process with a port-per-broker Kafka listener in front of the mock; killed on drop.
#[derive(Debug)]
pub(crate) struct Sluice {
    child: Child,
    pub(crate) bootstrap: SocketAddr,
    admin: SocketAddr,
    log: PathBuf,
}

impl Sluice {
    pub(crate) fn start(
        cli: &Cli,
        work: &Path,
        tag: &str,
        mock: &[SocketAddr],
    ) -> anyhow::Result<Self> {
        let exe = &cli.sluice;
        // The bootstrap port p, then broker node N on p + 1 + N (the mock's nodes are 1..=3).
        let base = free_port_block(5)?;
        // Not among the broker ports the listener reserves (`max_brokers`, 256 by default),
        // which Sluice's config check refuses to share.
        let broker_ports = u32::from(base) + 1..u32::from(base) + 1 + 256;
        let mut admin_port = free_port_block(1)?;
        for _ in 0..100 {
            if !broker_ports.contains(&u32::from(admin_port)) && admin_port != base {
                break;
            }
            admin_port = free_port_block(1)?;
        }
        let admin = SocketAddr::from((Ipv4Addr::LOCALHOST, admin_port));
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

    pub(crate) fn pid(&self) -> u32 {
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
    pub(crate) fn wait_sessions(
        &self,
        want: u64,
        at_least: bool,
        deadline: Instant,
    ) -> anyhow::Result<()> {
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
    pub(crate) fn status_kib(&self, key: &str) -> anyhow::Result<u64> {
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
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
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
