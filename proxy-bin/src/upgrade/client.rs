//! `sluice upgrade --pid-file FILE`: signals the running process (SIGUSR2, or SIGHUP with
//! `--reload`), waits for the outcome in the status file next to the PID file, and exits 0 when
//! the successor took over, 1 otherwise, printing the reason.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use super::pidfile::{self, Outcome};

/// How often the status file is read.
const POLL: Duration = Duration::from_millis(50);

/// Runs `sluice upgrade`.
pub(crate) fn upgrade(pid_file: &Path, reload: bool, timeout: Duration) -> ExitCode {
    match request(pid_file, reload, timeout) {
        Ok(message) => {
            // A closed stdout is no reason to report a successful upgrade as failed.
            let _ = writeln!(std::io::stdout(), "sluice: {message}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("sluice: {message}");
            ExitCode::FAILURE
        }
    }
}

fn request(pid_file: &Path, reload: bool, timeout: Duration) -> Result<String, String> {
    let pid = pidfile::read_pid(pid_file)
        .map_err(|err| format!("cannot read the PID file {}: {err}", pid_file.display()))?;
    let target = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| format!("{} holds an invalid process id {pid}", pid_file.display()))?;
    // Records written before our signal are not our answer.
    let before = pidfile::read_status(pid_file)
        .filter(|status| status.pid == pid)
        .map_or(0, |status| status.seq);
    let (signal, what) = if reload {
        (Signal::HUP, "reload")
    } else {
        (Signal::USR2, "upgrade")
    };
    rustix::process::kill_process(target, signal)
        .map_err(|err| format!("cannot signal process {pid}: {err}"))?;

    let deadline = Instant::now() + timeout;
    let mut ours = None;
    loop {
        let alive = rustix::process::test_kill_process(target).is_ok();
        if let Some(status) =
            pidfile::read_status(pid_file).filter(|status| status.pid == pid && status.seq > before)
        {
            // The first new record is our trigger's, unless it refuses another trigger while
            // one we have not seen started is under way: that one is ours.
            let seq = *ours.get_or_insert(match (status.outcome, status.in_progress) {
                (Outcome::Refused, Some(running)) if running > before => running,
                _ => status.seq,
            });
            if status.seq == seq && status.outcome.is_final() {
                let reason = status.reason.unwrap_or_default();
                return match (status.outcome, status.successor) {
                    (Outcome::Succeeded, Some(successor)) => Ok(format!(
                        "{what} done: process {pid} handed over to {successor}"
                    )),
                    (Outcome::Succeeded, None) => Ok(format!("{what} done in place: {reason}")),
                    (Outcome::Refused, _) => Err(format!("{what} refused: {reason}")),
                    _ => Err(format!("{what} failed: {reason}")),
                };
            }
        }
        if !alive {
            return Err(format!(
                "process {pid} exited without reporting the {what}'s outcome"
            ));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no outcome from process {pid} within {}",
                humantime::format_duration(timeout)
            ));
        }
        std::thread::sleep(POLL);
    }
}
