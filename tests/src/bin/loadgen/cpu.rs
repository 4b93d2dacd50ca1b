//! `--cpu-pid PID`: the CPU time (user + system, all its threads) another process spent during
//! the measured window, read from `/proc/PID/stat` at the window's start and end, so a proxy's
//! cost per request or per GB comes from the same interval as the counts.

use tokio::time::sleep_until;

use crate::window::Window;

/// Clock ticks per second as `/proc` counts them (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// Process `pid`'s user and system time so far, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) start at the state, field 3; utime and
    // stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

/// Samples `pid` at the window's start and end; resolves to the CPU seconds between, or
/// `None` when the process could not be read.
pub(crate) fn spawn(pid: u32, window: Window) -> tokio::task::JoinHandle<Option<f64>> {
    tokio::spawn(async move {
        sleep_until(window.measure_from).await;
        let start = cpu_seconds(pid)?;
        sleep_until(window.end).await;
        let end = cpu_seconds(pid)?;
        Some(end - start)
    })
}
