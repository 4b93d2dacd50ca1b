//! The old process's side of a hand-off: start the successor in its own process group, pass it
//! the listening sockets, and wait — bounded by `upgrade_timeout` — for `ready`. Any other
//! outcome (it exits, reports an error, closes the connection, or is too slow) kills its
//! process group, reaps it, and returns the reason; the caller keeps serving.

use std::ffi::OsString;
use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustix::process::{Pid, Signal};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{UnixListener, UnixStream};
use tokio::process::{Child, Command};
use tracing::{debug, warn};

use super::handoff::{self, Offered, SOCKET_ENV};
use crate::generation::{self, GENERATION_ENV};

/// How long a successor that closed the connection gets to exit before it is killed.
const EXIT_WAIT: Duration = Duration::from_secs(2);

/// How long a successor told `go` has to confirm that it accepts; it only has to start its
/// listener tasks.
const SERVING_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a successor that closed the connection after `go` is given to show it exited:
/// one of an older version closes it and runs on.
const EXITED_AFTER_GO_WAIT: Duration = Duration::from_millis(500);

/// How often starting a binary that is busy being written (`ETXTBSY`) is retried.
const SPAWN_ATTEMPTS: u32 = 10;

/// Everything needed to start one successor.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) binary: PathBuf,
    pub(crate) args: Vec<OsString>,
    pub(crate) timeout: Duration,
    pub(crate) offered: Arc<Vec<Offered>>,
    /// Distinguishes this attempt's socket path from earlier ones.
    pub(crate) seq: u64,
}

/// A successor that reported ready and waits for `go`.
#[derive(Debug)]
pub(crate) struct ReadySuccessor {
    pid: u32,
    stream: UnixStream,
    child: Child,
    guard: KillGuard,
}

/// Why an attempt failed.
#[derive(Debug)]
enum Failure {
    Spawn(io::Error),
    ExitedBeforeConnect(io::Result<ExitStatus>),
    ExitedAfterGo(io::Result<ExitStatus>),
    NotServing(Duration),
    Handshake(String),
    Reported(String),
    Closed,
    TimedOut(Duration, Stage),
}

/// How far a handshake got, for the reason of a timeout.
#[derive(Debug, Clone, Copy)]
enum Stage {
    Connecting,
    Sending,
    AwaitingReady,
}

/// Kills the successor's process group on drop unless disarmed.
#[derive(Debug)]
struct KillGuard {
    pgid: Option<Pid>,
}

/// The Unix socket path the successor connects to; removed on drop.
#[derive(Debug)]
struct Rendezvous {
    path: PathBuf,
    listener: UnixListener,
}

/// Starts a successor and waits until it is ready; on failure, the reason in one line.
pub(crate) async fn start(request: Request) -> Result<ReadySuccessor, String> {
    let rendezvous = Rendezvous::bind(request.seq)
        .map_err(|err| format!("cannot create the hand-off socket: {err}"))?;
    let mut child = spawn(&request, &rendezvous).await.map_err(|err| {
        format!(
            "{}",
            Failure::Spawn(io::Error::new(
                err.kind(),
                format!("{}: {err}", request.binary.display())
            ))
        )
    })?;
    let Some(pid) = child.id() else {
        return Err("the successor exited at once".into());
    };
    let guard = KillGuard {
        pgid: i32::try_from(pid).ok().and_then(Pid::from_raw),
    };
    debug!(successor.pid = pid, "upgrade: successor started");
    let mut stage = Stage::Connecting;
    let handshake = handshake(&rendezvous, &mut child, pid, &request.offered, &mut stage);
    let failure = match tokio::time::timeout(request.timeout, handshake).await {
        Ok(Ok(stream)) => {
            return Ok(ReadySuccessor {
                pid,
                stream,
                child,
                guard,
            });
        }
        Ok(Err(failure)) => failure,
        Err(_) => Failure::TimedOut(request.timeout, stage),
    };
    Err(abandon(child, guard, pid, failure).await)
}

async fn handshake(
    rendezvous: &Rendezvous,
    child: &mut Child,
    pid: u32,
    offered: &[Offered],
    stage: &mut Stage,
) -> Result<UnixStream, Failure> {
    let mut stream = tokio::select! {
        accepted = rendezvous.listener.accept() => {
            accepted.map_err(|err| Failure::Handshake(format!("accept: {err}")))?.0
        }
        status = child.wait() => return Err(Failure::ExitedBeforeConnect(status)),
    };
    *stage = Stage::Sending;
    check_peer(&stream, pid).map_err(Failure::Handshake)?;
    handoff::send_sockets(&mut stream, offered)
        .await
        .map_err(|err| Failure::Handshake(format!("sending sockets: {err}")))?;
    *stage = Stage::AwaitingReady;
    let mut pending = Vec::new();
    let line = handoff::read_line(&mut stream, &mut pending)
        .await
        .map_err(|err| Failure::Handshake(format!("reading: {err}")))?;
    match line.as_deref() {
        Some("ready") => Ok(stream),
        Some(line) => match line.strip_prefix("error ") {
            Some(reason) => Err(Failure::Reported(reason.to_owned())),
            None => Err(Failure::Handshake(format!("unexpected message {line:?}"))),
        },
        None => Err(Failure::Closed),
    }
}

/// Only the successor (or a process in its group, such as a wrapper's child) may take the
/// sockets: anyone who can reach the socket path could otherwise connect first.
fn check_peer(stream: &UnixStream, pid: u32) -> Result<(), String> {
    let peer = rustix::net::sockopt::socket_peercred(stream)
        .map_err(|err| format!("cannot read the peer's credentials: {err}"))?;
    let group = rustix::process::getpgid(Some(peer.pid))
        .map_err(|err| format!("cannot read the peer's process group: {err}"))?;
    let peer_pid = peer.pid.as_raw_nonzero().get();
    if peer.uid != rustix::process::getuid()
        || u32::try_from(group.as_raw_nonzero().get()) != Ok(pid)
    {
        return Err(format!(
            "a process outside the successor's group (pid {peer_pid}) connected to the hand-off socket"
        ));
    }
    Ok(())
}

async fn spawn(request: &Request, rendezvous: &Rendezvous) -> io::Result<Child> {
    let mut command = Command::new(&request.binary);
    command
        .args(&request.args)
        .env(SOCKET_ENV, &rendezvous.path)
        .env(GENERATION_ENV, generation::next().to_string())
        // Socket activation was for this process only.
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDNAMES")
        .stdin(Stdio::null())
        // Its own group, so a rollback can kill it and anything it started.
        .process_group(0);
    let mut attempt = 1;
    loop {
        match command.spawn() {
            // A binary replaced a moment ago may still be open for writing somewhere.
            Err(err)
                if err.raw_os_error() == Some(rustix::io::Errno::TXTBSY.raw_os_error())
                    && attempt < SPAWN_ATTEMPTS =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            result => return result,
        }
    }
}

/// Kills and reaps a failed successor; returns the reason, preferring its own word.
async fn abandon(mut child: Child, guard: KillGuard, pid: u32, failure: Failure) -> String {
    let failure = match failure {
        // It closed the connection: give it a moment to exit, for its status.
        Failure::Closed => match tokio::time::timeout(EXIT_WAIT, child.wait()).await {
            Ok(status) => Failure::ExitedBeforeConnect(status),
            Err(_) => Failure::Closed,
        },
        other => other,
    };
    drop(guard);
    match tokio::time::timeout(EXIT_WAIT, child.wait()).await {
        Ok(Ok(status)) => debug!(successor.pid = pid, %status, "upgrade: successor reaped"),
        Ok(Err(err)) => {
            warn!(successor.pid = pid, error = %err, "upgrade: cannot reap the successor")
        }
        Err(_) => warn!(
            successor.pid = pid,
            "upgrade: successor did not exit after SIGKILL"
        ),
    }
    format!("successor (pid {pid}) {failure}")
}

// === impl Failure ===

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Spawn(err) => write!(f, "could not be started: {err}"),
            Self::ExitedBeforeConnect(Ok(status)) => {
                write!(f, "exited before it was ready ({status})")
            }
            Self::ExitedBeforeConnect(Err(err)) => write!(f, "exited before it was ready ({err})"),
            Self::ExitedAfterGo(Ok(status)) => {
                write!(f, "exited after it was told to take over ({status})")
            }
            Self::ExitedAfterGo(Err(err)) => {
                write!(f, "exited after it was told to take over ({err})")
            }
            Self::NotServing(timeout) => write!(
                f,
                "was told to take over but did not say it accepts within {}",
                humantime::format_duration(*timeout)
            ),
            Self::Handshake(why) => write!(f, "hand-off failed: {why}"),
            Self::Reported(reason) => write!(f, "failed: {reason}"),
            Self::Closed => f.write_str("closed the hand-off connection before it was ready"),
            Self::TimedOut(timeout, stage) => write!(
                f,
                "was not ready within upgrade_timeout ({}): {}",
                humantime::format_duration(*timeout),
                match stage {
                    Stage::Connecting => "it never connected to take the sockets",
                    Stage::Sending => "the sockets could not be sent",
                    Stage::AwaitingReady => "it had the sockets but never reported ready",
                }
            ),
        }
    }
}

// === impl ReadySuccessor ===

impl ReadySuccessor {
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Commits: tells the successor to start accepting, and waits until it says it does
    /// (`serving`). From `go` on both processes accept; on error the successor is killed like
    /// any failed successor and this process serves on, so a successor that dies taking over
    /// is a failed upgrade, not a success followed by silence.
    pub(crate) async fn go(mut self) -> Result<(), String> {
        if let Err(err) = self.stream.write_all(b"go\n").await {
            let failure = Failure::Handshake(format!("sending go: {err}"));
            return Err(abandon(self.child, self.guard, self.pid, failure).await);
        }
        let mut pending = Vec::new();
        let said = tokio::time::timeout(
            SERVING_TIMEOUT,
            handoff::read_line(&mut self.stream, &mut pending),
        )
        .await;
        let failure = match said {
            Ok(Ok(Some(line))) if line == "serving" => None,
            // Closed: it died, or it is of an older version, which closes the connection
            // after `go` and says nothing more.
            Ok(Ok(None)) => {
                match tokio::time::timeout(EXITED_AFTER_GO_WAIT, self.child.wait()).await {
                    Ok(status) => Some(Failure::ExitedAfterGo(status)),
                    Err(_) => None,
                }
            }
            Ok(Ok(Some(line))) => Some(Failure::Handshake(format!(
                "unexpected message {line:?} after go"
            ))),
            Ok(Err(err)) => Some(Failure::Handshake(format!("reading after go: {err}"))),
            Err(_) => Some(Failure::NotServing(SERVING_TIMEOUT)),
        };
        match failure {
            None => {
                self.guard.pgid = None;
                // Not killed on drop; tokio reaps it if it exits while we still run.
                drop(self.child);
                Ok(())
            }
            Some(failure) => Err(abandon(self.child, self.guard, self.pid, failure).await),
        }
    }
}

// === impl KillGuard ===

impl Drop for KillGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            match rustix::process::kill_process_group(pgid, Signal::KILL) {
                Ok(()) | Err(rustix::io::Errno::SRCH) => {}
                Err(err) => warn!(error = %err, "upgrade: cannot kill the successor's group"),
            }
        }
    }
}

// === impl Rendezvous ===

impl Rendezvous {
    fn bind(seq: u64) -> io::Result<Self> {
        // systemd's RuntimeDirectory= (the first, when there are several), else $TMPDIR.
        let dir = std::env::var("RUNTIME_DIRECTORY")
            .ok()
            .and_then(|dirs| dirs.split(':').next().map(PathBuf::from))
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or_else(std::env::temp_dir);
        let path = dir.join(format!("sluice-upgrade-{}-{seq}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        let rendezvous = Self { path, listener };
        std::fs::set_permissions(&rendezvous.path, std::fs::Permissions::from_mode(0o600))?;
        Ok(rendezvous)
    }
}

impl Drop for Rendezvous {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
