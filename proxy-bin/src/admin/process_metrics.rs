//! The build and the process: `sluice_build_info{version}`, and Prometheus' standard process
//! metrics (`process_resident_memory_bytes`, `process_open_fds`, `process_max_fds`,
//! `process_start_time_seconds`), read from `/proc/self` at each scrape as client_golang's
//! process collector does. A value that cannot be read is left out, not reported as 0.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use rustix::process::{Resource, getrlimit};

use super::metrics::{family, gauge};

pub(super) fn encode(out: &mut DescriptorEncoder<'_>) -> fmt::Result {
    // An info metric: the encoders add `_info`.
    family(
        out,
        "sluice_build",
        "The running build: 1, with its version as a label.",
        MetricType::Info,
    )?
    .encode_info(&[("version", env!("CARGO_PKG_VERSION"))])?;
    if let Some(bytes) = resident_memory_bytes() {
        gauge(
            out,
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            bytes,
        )?;
    }
    if let Some(open) = open_fds() {
        gauge(
            out,
            "process_open_fds",
            "Number of open file descriptors.",
            open,
        )?;
    }
    if let Some(max) = getrlimit(Resource::Nofile).current {
        gauge(
            out,
            "process_max_fds",
            "Maximum number of open file descriptors.",
            max,
        )?;
    }
    if let Some(start) = start_time_seconds() {
        gauge(
            out,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch in seconds.",
            start,
        )?;
    }
    Ok(())
}

/// The second field of `/proc/self/statm` (resident pages) times the page size.
fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page_size = u64::try_from(rustix::param::page_size()).ok()?;
    Some(pages * page_size)
}

/// The entries of `/proc/self/fd` (the one reading it included, as client_golang counts).
fn open_fds() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count())
}

/// Boot time (`btime` in `/proc/stat`) plus the process's start in clock ticks after boot
/// (field 22 of `/proc/self/stat`).
fn start_time_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let (_, after_name) = stat.rsplit_once(')')?;
    let ticks: u64 = after_name.split_whitespace().nth(22 - 3)?.parse().ok()?;
    let boot: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let per_second = rustix::param::clock_ticks_per_second();
    if per_second == 0 {
        return None;
    }
    // Both stay far below 2^53: the conversions are exact.
    Some(boot as f64 + ticks as f64 / per_second as f64)
}
