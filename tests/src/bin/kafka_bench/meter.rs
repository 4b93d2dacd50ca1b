//! Timing a measurement: its wall time and the CPU time, read from `/proc/PID/stat`, that this
//! process (the librdkafka client and the mock brokers) and Sluice spent in it.

use std::fs;
use std::time::Instant;

use anyhow::{Context as _, anyhow};

/// Clock ticks per second in `/proc/PID/stat` (`USER_HZ`, 100 on Linux).
const USER_HZ: f64 = 100.0;

/// What a throughput measurement moved, in how long, at what CPU cost.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Moved {
    pub(crate) messages: u64,
    pub(crate) bytes: u64,
    pub(crate) seconds: f64,
    /// CPU seconds of this process: the librdkafka client and the mock brokers.
    pub(crate) cpu_bench: f64,
    /// CPU seconds of Sluice in user space and in the kernel (~0 when direct).
    pub(crate) cpu_sluice_user: f64,
    pub(crate) cpu_sluice_sys: f64,
}

impl Moved {
    pub(crate) fn add(&mut self, other: Moved) {
        self.messages += other.messages;
        self.bytes += other.bytes;
        self.seconds += other.seconds;
        self.cpu_bench += other.cpu_bench;
        self.cpu_sluice_user += other.cpu_sluice_user;
        self.cpu_sluice_sys += other.cpu_sluice_sys;
    }
}

/// A measured interval: wall time and the CPU time of this process and of Sluice.
#[derive(Debug)]
pub(crate) struct Meter {
    start: Instant,
    cpu_bench: (f64, f64),
    cpu_sluice: (f64, f64),
    sluice: u32,
}

impl Meter {
    pub(crate) fn start(sluice: u32) -> anyhow::Result<Self> {
        Ok(Self {
            start: Instant::now(),
            cpu_bench: cpu_seconds(std::process::id())?,
            cpu_sluice: cpu_seconds(sluice)?,
            sluice,
        })
    }

    pub(crate) fn stop(self, messages: u64, bytes: u64) -> anyhow::Result<Moved> {
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
