//! The supervisor of one child: reaps it when it exits and runs the stop sequence against its
//! process group when the session lets go of it or `stop_all` asks.

use std::io;
use std::process::ExitStatus;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};
use tokio::process::Child;
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, sleep_until, timeout};
use tracing::{debug, warn};

/// How often a process group that outlived its leader is checked for emptiness.
const GROUP_POLL: Duration = Duration::from_millis(20);

/// Owns one child process (its pipes belong to the `ChildIo`) until it and its group are gone.
#[derive(Debug)]
pub(super) struct Supervisor {
    child: Child,
    /// The child's pid, which is also its process group id (it was spawned with `setpgid(0, 0)`).
    pgid: Pid,
    /// `argv[0]`, for the log lines.
    program: String,
    /// Each phase of the stop sequence waits this long before escalating.
    stop_timeout: Duration,
    /// Cleared once the group is gone. While set, dropping the supervisor (its task cancelled
    /// by a runtime shutting down) sends `SIGKILL` to the group, so nothing outlives it.
    armed: bool,
    /// Tells the session how the child ended, so a crash reads as a backend failure and not as
    /// an orderly EOF. Taken by the first reap.
    exit: Option<oneshot::Sender<ExitStatus>>,
}

/// What ended the supervisor's wait.
enum Trigger {
    /// The child exited (and was reaped) on its own.
    Exited(io::Result<ExitStatus>),
    /// The session dropped its `ChildIo`, closing the child's stdin.
    Released,
    /// `ChildReaper::stop_all`.
    StopAll,
}

/// What the process group has been sent so far; the sequence only escalates.
#[derive(Debug, Clone, Copy)]
enum Sent {
    Nothing,
    Term { at: Instant },
    Kill,
}

// === impl Supervisor ===

impl Supervisor {
    pub(super) fn new(
        child: Child,
        pgid: Pid,
        program: String,
        stop_timeout: Duration,
        exit: oneshot::Sender<ExitStatus>,
    ) -> Self {
        Self {
            child,
            pgid,
            program,
            stop_timeout,
            armed: true,
            exit: Some(exit),
        }
    }

    /// Waits for the child to exit, the session to release it or `stop_all`; then stops the
    /// child and sweeps its process group.
    pub(super) async fn run(
        mut self,
        released: oneshot::Receiver<()>,
        mut stop: watch::Receiver<u64>,
    ) {
        // The reaper keeps the sender alive while this task runs; should it ever go, that is
        // not a request to stop.
        let stop_all = async move {
            if stop.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        // All three are cancel safe (`Child::wait` documents it); losing branches are dropped.
        let trigger = tokio::select! {
            biased;
            status = self.child.wait() => Trigger::Exited(status),
            _ = released => Trigger::Released,
            () = stop_all => Trigger::StopAll,
        };
        let sent = match trigger {
            Trigger::Exited(status) => {
                self.reaped(status);
                Sent::Nothing
            }
            Trigger::Released => {
                debug!(child.pid = self.pgid.as_raw_nonzero().get(), child.program = %self.program, "stopping released child");
                self.stop_leader().await
            }
            Trigger::StopAll => {
                debug!(child.pid = self.pgid.as_raw_nonzero().get(), child.program = %self.program, "stopping child for stop_all");
                self.stop_leader().await
            }
        };
        self.sweep_group(sent).await;
        self.armed = false;
    }

    /// Grace period → `SIGTERM` → grace period → `SIGKILL`, until the child is reaped.
    async fn stop_leader(&mut self) -> Sent {
        if let Ok(status) = timeout(self.stop_timeout, self.child.wait()).await {
            self.reaped(status);
            return Sent::Nothing;
        }
        debug!(child.pid = self.pgid.as_raw_nonzero().get(), child.program = %self.program, "child still running; sending SIGTERM");
        self.signal(Signal::TERM);
        let at = Instant::now();
        if let Ok(status) = timeout(self.stop_timeout, self.child.wait()).await {
            self.reaped(status);
            return Sent::Term { at };
        }
        warn!(
            child.pid = self.pgid.as_raw_nonzero().get(),
            child.program = %self.program,
            stop_timeout = ?self.stop_timeout,
            "child ignored SIGTERM; sending SIGKILL",
        );
        self.signal(Signal::KILL);
        // SIGKILL cannot be ignored; the wait ends as soon as the kernel has torn it down.
        let status = self.child.wait().await;
        self.reaped(status);
        Sent::Kill
    }

    /// After the leader is reaped: whatever is left of its process group gets the rest of the
    /// sequence (SIGTERM, then SIGKILL once `stop_timeout` has passed since the SIGTERM).
    ///
    /// The group id is the reaped leader's pid. It cannot be reused while any member is left,
    /// and an empty group ends the sweep; the only gap is between reaping and the first check,
    /// which would need the kernel to hand out the same pid again within microseconds.
    async fn sweep_group(&self, sent: Sent) {
        let deadline = match sent {
            // The whole group already got SIGKILL.
            Sent::Kill => return,
            Sent::Term { at } => at + self.stop_timeout,
            Sent::Nothing => {
                if !self.group_alive() {
                    return;
                }
                debug!(child.pid = self.pgid.as_raw_nonzero().get(), child.program = %self.program, "child's process group outlived it; sending SIGTERM");
                self.signal(Signal::TERM);
                Instant::now() + self.stop_timeout
            }
        };
        // Killed members count until their new parent (init) reaps them, so an init that does
        // not reap costs this wait and a harmless SIGKILL.
        while self.group_alive() {
            let now = Instant::now();
            if now >= deadline {
                warn!(
                    child.pid = self.pgid.as_raw_nonzero().get(),
                    child.program = %self.program,
                    "child's process group outlived SIGTERM; sending SIGKILL",
                );
                self.signal(Signal::KILL);
                return;
            }
            sleep_until(deadline.min(now + GROUP_POLL)).await;
        }
    }

    /// Whether any process is left in the child's group (zombies included). Any answer but
    /// "yes" (no such group, or not ours to signal) means there is nothing more to do.
    fn group_alive(&self) -> bool {
        test_kill_process_group(self.pgid).is_ok()
    }

    fn signal(&self, signal: Signal) {
        match kill_process_group(self.pgid, signal) {
            // ESRCH: the group is already gone, which is what we wanted.
            Ok(()) | Err(rustix::io::Errno::SRCH) => {}
            Err(error) => {
                debug!(child.pid = self.pgid.as_raw_nonzero().get(), ?signal, %error, "signalling child's process group failed");
            }
        }
    }

    fn reaped(&mut self, status: io::Result<ExitStatus>) {
        match status {
            Ok(status) => {
                debug!(child.pid = self.pgid.as_raw_nonzero().get(), child.program = %self.program, %status, "child reaped");
                if let Some(exit) = self.exit.take() {
                    // The session may be gone already; then nobody needs to know.
                    let _ = exit.send(status);
                }
            }
            Err(error) => {
                warn!(child.pid = self.pgid.as_raw_nonzero().get(), child.program = %self.program, %error, "waiting for child failed");
            }
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if self.armed {
            self.signal(Signal::KILL);
        }
    }
}
