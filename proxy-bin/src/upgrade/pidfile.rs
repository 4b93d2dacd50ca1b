//! The PID file (`--pid-file FILE`) and, next to it, the upgrade status file `FILE.status`
//! through which `sluice upgrade` learns how the upgrade it asked for ended.
//!
//! The status file holds `key=value` lines: `pid` (the process that ran the upgrade), `seq`
//! (counts triggers in that process), `trigger`, `outcome` (`started`, `succeeded`, `failed`
//! or `refused`), and `successor` and `reason` when known; a refusal names the attempt in
//! progress (`in_progress`), so the client that started that one keeps waiting for it. Both files are replaced atomically
//! (written aside, then renamed), so a reader never sees half a file.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

/// How an upgrade attempt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Started,
    Succeeded,
    Failed,
    Refused,
}

impl Outcome {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Refused => "refused",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Started, Self::Succeeded, Self::Failed, Self::Refused]
            .into_iter()
            .find(|o| o.label() == text)
    }

    /// Whether the attempt is over.
    pub(crate) fn is_final(self) -> bool {
        self != Self::Started
    }
}

/// One record of the status file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) pid: u32,
    pub(crate) seq: u64,
    pub(crate) trigger: String,
    pub(crate) outcome: Outcome,
    pub(crate) successor: Option<u32>,
    pub(crate) reason: Option<String>,
    /// For a refusal: the attempt under way.
    pub(crate) in_progress: Option<u64>,
}

impl Status {
    fn render(&self) -> String {
        let mut text = format!(
            "pid={}\nseq={}\ntrigger={}\noutcome={}\n",
            self.pid,
            self.seq,
            self.trigger,
            self.outcome.label()
        );
        if let Some(successor) = self.successor {
            let _ = writeln!(text, "successor={successor}");
        }
        if let Some(seq) = self.in_progress {
            let _ = writeln!(text, "in_progress={seq}");
        }
        if let Some(reason) = &self.reason {
            let _ = writeln!(text, "reason={}", one_line(reason));
        }
        text
    }

    fn parse(text: &str) -> Option<Self> {
        let value = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        };
        Some(Self {
            pid: value("pid")?.parse().ok()?,
            seq: value("seq")?.parse().ok()?,
            trigger: value("trigger")?.to_owned(),
            outcome: Outcome::parse(value("outcome")?)?,
            successor: value("successor").and_then(|s| s.parse().ok()),
            reason: value("reason").map(str::to_owned),
            in_progress: value("in_progress").and_then(|s| s.parse().ok()),
        })
    }
}

/// `text` with line breaks turned into `; `, for one-line fields.
pub(crate) fn one_line(text: &str) -> String {
    text.trim_end()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Where the status file of `pid_file` lives.
pub(crate) fn status_path(pid_file: &Path) -> PathBuf {
    let mut name = pid_file.as_os_str().to_owned();
    name.push(".status");
    PathBuf::from(name)
}

/// Replaces `path` with `text` atomically.
fn replace(path: &Path, text: &str) -> io::Result<()> {
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".tmp.{}", std::process::id()));
    let aside = PathBuf::from(aside);
    std::fs::write(&aside, text)?;
    std::fs::rename(&aside, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&aside);
    })
}

pub(crate) fn write_pid(pid_file: &Path, pid: u32) -> io::Result<()> {
    replace(pid_file, &format!("{pid}\n"))
}

pub(crate) fn read_pid(pid_file: &Path) -> io::Result<u32> {
    let text = std::fs::read_to_string(pid_file)?;
    text.trim().parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} does not hold a process id", pid_file.display()),
        )
    })
}

/// Removes the PID file if it still names `pid` (after a hand-off it names the successor).
pub(crate) fn remove_pid_if_ours(pid_file: &Path, pid: u32) {
    if read_pid(pid_file).is_ok_and(|found| found == pid) {
        let _ = std::fs::remove_file(pid_file);
    }
}

pub(crate) fn write_status(pid_file: &Path, status: &Status) -> io::Result<()> {
    replace(&status_path(pid_file), &status.render())
}

/// The status file's record, if there is a readable one.
pub(crate) fn read_status(pid_file: &Path) -> Option<Status> {
    Status::parse(&std::fs::read_to_string(status_path(pid_file)).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_with_a_one_line_reason() {
        let status = Status {
            pid: 42,
            seq: 3,
            trigger: "SIGHUP".into(),
            outcome: Outcome::Failed,
            successor: Some(43),
            reason: Some("config: 2 error(s):\n  a\n  b\n".into()),
            in_progress: Some(2),
        };
        let parsed = Status::parse(&status.render()).unwrap();
        assert_eq!(parsed.reason.as_deref(), Some("config: 2 error(s):; a; b"));
        assert_eq!(parsed.successor, Some(43));
        assert_eq!(parsed.outcome, Outcome::Failed);
        assert_eq!(parsed.in_progress, Some(2));
        assert!(Status::parse("pid=1\n").is_none());
    }

    #[test]
    fn pid_files_are_replaced_and_removed_only_by_their_owner() {
        let dir = std::env::temp_dir().join(format!("sluice-pidfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pid_file = dir.join("sluice.pid");
        write_pid(&pid_file, 7).unwrap();
        assert_eq!(read_pid(&pid_file).unwrap(), 7);
        remove_pid_if_ours(&pid_file, 8);
        assert_eq!(read_pid(&pid_file).unwrap(), 7);
        remove_pid_if_ours(&pid_file, 7);
        assert!(read_pid(&pid_file).is_err());
        assert_eq!(status_path(&pid_file), dir.join("sluice.pid.status"));
    }
}
