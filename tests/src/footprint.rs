//! What a process costs, from Linux's `/proc`: its resident memory, its open descriptors and
//! its descriptor limit, and raising that limit's soft value to the hard one (with `prlimit`,
//! as the tests may not use `unsafe` for `setrlimit`).

use std::process::Command;

/// The resident set size of process `pid`, in KiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

/// The most resident memory process `pid` has had, in KiB (`VmHWM` in `/proc/PID/status`):
/// a peak between two samples shows here, where [`rss_kib`] would miss it.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM")
}

/// The `field` line of `/proc/PID/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).expect("read the process's status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{path} has no {field} line"))
}

/// How many descriptors process `pid` has open.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("list the process's descriptors")
        .count()
}

/// The soft and hard `RLIMIT_NOFILE` of process `pid` (`Max open files` in
/// `/proc/PID/limits`); `u64::MAX` stands for unlimited.
pub fn nofile_limits(pid: u32) -> (u64, u64) {
    let path = format!("/proc/{pid}/limits");
    let limits = std::fs::read_to_string(&path).expect("read the process's limits");
    let line = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .unwrap_or_else(|| panic!("{path} has no open-files line"));
    let mut values = line.split_whitespace().map(|value| match value {
        "unlimited" => u64::MAX,
        number => number.parse().expect("a descriptor limit is a number"),
    });
    let soft = values.next().expect("a soft limit");
    let hard = values.next().expect("a hard limit");
    (soft, hard)
}

/// Raises this process's soft descriptor limit to its hard limit (children inherit it), and
/// returns that limit.
pub fn raise_nofile_limit() -> u64 {
    let pid = std::process::id();
    let (soft, hard) = nofile_limits(pid);
    if soft < hard {
        let value = if hard == u64::MAX {
            "unlimited".to_owned()
        } else {
            hard.to_string()
        };
        let status = Command::new("prlimit")
            .arg("--pid")
            .arg(pid.to_string())
            .arg(format!("--nofile={value}:{value}"))
            .status()
            .expect("run prlimit (util-linux)");
        assert!(status.success(), "prlimit failed: {status}");
    }
    let (soft, hard) = nofile_limits(pid);
    assert_eq!(soft, hard, "the soft descriptor limit is the hard one");
    hard
}
