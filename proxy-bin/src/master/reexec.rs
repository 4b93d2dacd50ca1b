//! The master re-executing itself when its binary was replaced on disk, so that the process
//! Kubernetes or systemd watches keeps its PID and runs the new code (HAProxy's master does the
//! same on reload).
//!
//! When: only once a worker started from the new file has taken over — that file has then
//! proven it starts and serves — and only when the new file says it can resume a master (an
//! older version could not, and would start a second worker beside the running ones).
//!
//! How: `execve` of the same path with the same arguments, the master's state in
//! [`RESUME_ENV`] and [`RESUME_PID_FILE_ENV`]. The PID, the children and the subreaper setting
//! survive `execve`. The signals the master handles are blocked across it, so one that
//! arrives in between stays pending until the new image has its handlers, instead of killing
//! the master (`--master`) or being dropped (PID 1 ignores signals it has no handler for).

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, SigmaskHow, Signal as NixSignal, sigprocmask};
use rustix::process::Pid;
use tracing::{info, warn};

/// Set for a master started by `execve` of its predecessor image: its state (see [`Resume`]).
pub(crate) const RESUME_ENV: &str = "SLUICE_MASTER_RESUME";
/// The PID file of a resumed master (a path need not be UTF-8, so apart from the state).
pub(crate) const RESUME_PID_FILE_ENV: &str = "SLUICE_MASTER_RESUME_PID_FILE";

/// The hidden subcommand a new binary answers with [`PROBE_ANSWER`] when it can resume a
/// master; see [`can_resume`].
pub(crate) const PROBE_COMMAND: &str = "master-resume-probe";
/// The probe's answer: the version of the [`RESUME_ENV`] format this binary reads.
pub(crate) const PROBE_ANSWER: &str = "sluice-master-resume 1";

/// How long a new binary may take to answer the probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A file by identity, not by name: replacing a binary (a package upgrade, `mv`) gives the
/// path a new inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    pub(crate) fn of(path: &Path) -> Option<Self> {
        std::fs::metadata(path).ok().map(|meta| Self {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// The file this process runs (deleted or not).
    pub(crate) fn running() -> Option<Self> {
        Self::of(Path::new("/proc/self/exe"))
    }

    /// The file process `pid` runs.
    pub(crate) fn run_by(pid: Pid) -> Option<Self> {
        Self::of(&PathBuf::from(format!(
            "/proc/{}/exe",
            pid.as_raw_nonzero()
        )))
    }
}

/// What a master hands to the image that replaces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resume {
    pub(crate) current: Pid,
    pub(crate) live: HashSet<Pid>,
    /// The master chose the PID file (none was given), and removes its status file at exit.
    pub(crate) private: bool,
    pub(crate) pid_file: PathBuf,
}

impl Resume {
    /// `v1 current=PID live=PID,PID private=0|1`.
    fn encode(&self) -> String {
        let mut live: Vec<i32> = self
            .live
            .iter()
            .map(|pid| pid.as_raw_nonzero().get())
            .collect();
        live.sort_unstable();
        let live: Vec<String> = live.iter().map(i32::to_string).collect();
        format!(
            "v1 current={} live={} private={}",
            self.current.as_raw_nonzero(),
            live.join(","),
            u8::from(self.private)
        )
    }

    fn decode(text: &str, pid_file: PathBuf) -> Option<Self> {
        let mut words = text.split_whitespace();
        if words.next()? != "v1" {
            return None;
        }
        let pid = |text: &str| text.parse::<i32>().ok().and_then(Pid::from_raw);
        let (mut current, mut live, mut private) = (None, None, None);
        for word in words {
            match word.split_once('=')? {
                ("current", value) => current = Some(pid(value)?),
                ("live", value) => {
                    live = Some(value.split(',').map(pid).collect::<Option<HashSet<_>>>()?);
                }
                ("private", "0") => private = Some(false),
                ("private", "1") => private = Some(true),
                _ => return None,
            }
        }
        let (current, mut live) = (current?, live?);
        live.insert(current);
        Some(Self {
            current,
            live,
            private: private?,
            pid_file,
        })
    }

    /// The state a predecessor image left in the environment, if this master is a resumed one.
    pub(crate) fn from_env() -> anyhow::Result<Option<Self>> {
        let Some(state) = std::env::var_os(RESUME_ENV) else {
            return Ok(None);
        };
        let pid_file = std::env::var_os(RESUME_PID_FILE_ENV)
            .map(PathBuf::from)
            .ok_or_else(|| anyhow::anyhow!("{RESUME_ENV} is set without {RESUME_PID_FILE_ENV}"))?;
        state
            .to_str()
            .and_then(|text| Self::decode(text, pid_file))
            .map(Some)
            .ok_or_else(|| anyhow::anyhow!("{RESUME_ENV} holds no master state: {state:?}"))
    }
}

/// The signals the master handles: blocked across `execve`, unblocked once handled again.
fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in [
        NixSignal::SIGCHLD,
        NixSignal::SIGTERM,
        NixSignal::SIGINT,
        NixSignal::SIGUSR2,
        NixSignal::SIGHUP,
        NixSignal::SIGUSR1,
    ] {
        set.add(signal);
    }
    set
}

/// Lets the handled signals in, once their handlers are installed: any that arrived during
/// `execve` are delivered now.
pub(crate) fn unblock_handled_signals() -> anyhow::Result<()> {
    sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&handled_signals()), None)
        .map_err(|err| anyhow::anyhow!("cannot unblock the master's signals: {err}"))
}

/// Whether `binary` can resume a master: it answers the probe within [`PROBE_TIMEOUT`].
pub(crate) fn can_resume(binary: &Path) -> Result<(), String> {
    let mut child = Command::new(binary)
        .arg(PROBE_COMMAND)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| format!("cannot run it: {err}"))?;
    let deadline = Instant::now() + PROBE_TIMEOUT;
    // Bounded by the deadline; the master's single thread waits here (a few milliseconds for
    // a binary that answers), its signals queue meanwhile.
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {PROBE_TIMEOUT:?}"));
            }
            Err(err) => return Err(format!("cannot wait for it: {err}")),
        }
    };
    let mut said = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut said);
    }
    if status.success() && said.trim() == PROBE_ANSWER {
        Ok(())
    } else {
        Err(format!(
            "it does not support resuming a master ({status}); an older version?"
        ))
    }
}

/// Replaces this process's image with `binary`, keeping the PID and the children. Returns
/// only if `execve` failed, with the signals unblocked again.
pub(crate) fn exec(binary: &Path, args: &[OsString], state: &Resume) -> anyhow::Error {
    let blocked = handled_signals();
    if let Err(err) = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), None) {
        return anyhow::anyhow!("cannot block the master's signals: {err}");
    }
    info!(
        binary = %binary.display(),
        worker.pid = state.current.as_raw_nonzero().get(),
        "master: re-executing the new binary"
    );
    let err = Command::new(binary)
        .args(args)
        .env(RESUME_ENV, state.encode())
        .env(RESUME_PID_FILE_ENV, &state.pid_file)
        .exec();
    if let Err(unblock) = unblock_handled_signals() {
        warn!(error = %unblock, "master: signals stay blocked");
    }
    anyhow::Error::new(err).context(format!("cannot execute {}", binary.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(raw: i32) -> Pid {
        Pid::from_raw(raw).unwrap()
    }

    #[test]
    fn the_state_survives_the_environment() {
        let state = Resume {
            current: pid(42),
            live: HashSet::from([pid(42), pid(7), pid(1000)]),
            private: true,
            pid_file: PathBuf::from("/run/sluice/sluice.pid"),
        };
        let text = state.encode();
        assert_eq!(text, "v1 current=42 live=7,42,1000 private=1");
        assert_eq!(
            Resume::decode(&text, state.pid_file.clone()),
            Some(state.clone())
        );
        // The current worker is always live, even if an encoder forgot it.
        let decoded = Resume::decode("v1 current=9 live=3 private=0", PathBuf::new()).unwrap();
        assert_eq!(decoded.live, HashSet::from([pid(3), pid(9)]));
        assert!(!decoded.private);
    }

    #[test]
    fn a_state_it_cannot_read_is_refused() {
        for text in [
            "",
            "v2 current=1 live=1 private=0",
            "v1 current=0 live=1 private=0",
            "v1 current=1 live=x private=0",
            "v1 live=1 private=0",
            "v1 current=1 live=1 private=2",
            "v1 current=1 live=1 private=0 extra=1",
        ] {
            assert_eq!(Resume::decode(text, PathBuf::new()), None, "{text:?}");
        }
    }

    #[test]
    fn this_binary_answers_the_probe_it_sends() {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from(["sluice", PROBE_COMMAND]).unwrap();
        assert!(matches!(
            cli.command,
            crate::cli::Command::MasterResumeProbe
        ));
    }

    #[test]
    fn a_binary_without_the_probe_cannot_resume_a_master() {
        let refused = can_resume(Path::new("/bin/true")).unwrap_err();
        assert!(refused.contains("does not support"), "{refused}");
        let missing = can_resume(Path::new("/nonexistent/sluice")).unwrap_err();
        assert!(missing.contains("cannot run it"), "{missing}");
    }

    #[test]
    fn a_replaced_file_has_a_new_identity() {
        let dir = std::env::temp_dir().join(format!("sluice-fileid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("binary");
        std::fs::write(&path, b"one").unwrap();
        let first = FileId::of(&path).unwrap();
        assert_eq!(FileId::of(&path), Some(first));
        let aside = dir.join("binary.new");
        std::fs::write(&aside, b"two").unwrap();
        std::fs::rename(&aside, &path).unwrap();
        assert_ne!(FileId::of(&path), Some(first));
        assert!(FileId::running().is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
