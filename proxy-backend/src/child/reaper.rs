//! `ChildReaper`: spawns children in their own process groups and stops and reaps them.

use std::io;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustix::process::Pid;
use tokio::process::Command;
use tokio::sync::{oneshot, watch};
use tokio::time::timeout;
use tracing::{Instrument, debug, warn};

use super::stop::Supervisor;
use super::{ChildIo, ChildSpec};

/// What `stop_all` allows on top of twice the largest `stop_timeout`: reaping after `SIGKILL`
/// and scheduling.
const STOP_ALL_SLACK: Duration = Duration::from_secs(1);

/// Stops and reaps children. A cheap, cloneable handle; the binary keeps one for the process.
#[derive(Debug, Clone, Default)]
pub struct ChildReaper {
    // Shared by every clone and every supervisor task. It holds only synchronisation primitives
    // (watch channels and an atomic), no session state, so this `Arc` is the handle itself, as a
    // `TaskTracker` would be.
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Children alive or being stopped: one per running supervisor. A `watch` so that `stop_all`
    /// can wait for zero without polling.
    live: watch::Sender<usize>,
    /// Bumped by every `stop_all`; each supervisor subscribes when its child is spawned, so a
    /// bump reaches exactly the children live at that moment.
    stop: watch::Sender<u64>,
    /// The largest `stop_timeout` of any child spawned so far, in nanoseconds: bounds `stop_all`.
    max_stop_timeout: AtomicU64,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            live: watch::Sender::new(0),
            stop: watch::Sender::new(0),
            max_stop_timeout: AtomicU64::new(0),
        }
    }
}

/// One unit of `live`, given back when dropped: when the supervisor ends, or when its task is
/// dropped with the runtime.
#[derive(Debug)]
struct LiveSlot(Arc<Shared>);

impl Drop for LiveSlot {
    fn drop(&mut self) {
        self.0.live.send_modify(|n| *n = n.saturating_sub(1));
    }
}

// === impl ChildReaper ===

impl ChildReaper {
    /// A reaper with no children.
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns `spec.argv` (no shell) in its own process group, stdin and stdout piped, stderr
    /// inherited, and returns the session's transport and the child's pid.
    ///
    /// Must be called within a tokio runtime: the child's supervisor runs there. Fails with
    /// `InvalidInput` for an empty `argv`, and with whatever spawning the program returned.
    pub fn spawn(&self, spec: &ChildSpec) -> io::Result<(ChildIo, u32)> {
        let Some((program, args)) = spec.argv.split_first() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "child argv is empty",
            ));
        };
        let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let mut child = Command::new(program)
            .args(args)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Only a backstop for a supervisor dropped mid-way (its runtime shutting down); the
            // supervisor's own guard takes the rest of the process group down with it.
            .kill_on_drop(true)
            .spawn()?;
        // On any error below, dropping `child` kills it and tokio reaps it in the background.
        let (Some(stdin), Some(stdout), Some(pid)) =
            (child.stdin.take(), child.stdout.take(), child.id())
        else {
            return Err(io::Error::other(
                "spawned child is missing its pipes or pid",
            ));
        };
        let pgid = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| io::Error::other("child pid is not a valid process group id"))?;

        let (release, released) = oneshot::channel();
        let (exit_tx, exit_rx) = oneshot::channel();
        let stop = self.shared.stop.subscribe();
        self.shared.live.send_modify(|n| *n += 1);
        let slot = LiveSlot(Arc::clone(&self.shared));
        let nanos = u64::try_from(spec.stop_timeout.as_nanos()).unwrap_or(u64::MAX);
        self.shared
            .max_stop_timeout
            .fetch_max(nanos, Ordering::Relaxed);

        debug!(child.pid = pid, child.program = %program, "spawned child");
        let supervisor = Supervisor::new(child, pgid, program.clone(), spec.stop_timeout, exit_tx);
        runtime.spawn(
            async move {
                let _slot = slot;
                supervisor.run(released, stop).await;
            }
            // The session's span, so the stop lines sit under the session that owned the child.
            .in_current_span(),
        );
        Ok((ChildIo::new(stdin, stdout, release, exit_rx), pid))
    }

    /// How many children are alive or being stopped right now.
    pub fn live(&self) -> usize {
        *self.shared.live.borrow()
    }

    /// Stops every live child with the stop sequence and waits until all are reaped, stops
    /// already in progress included. Gives up (with a warning) after twice the largest
    /// `stop_timeout` plus a second; the stops themselves carry on.
    ///
    /// A child whose session still holds its `ChildIo` cannot have its stdin closed from here,
    /// so its first grace period is only its chance to finish on its own before `SIGTERM`.
    pub async fn stop_all(&self) {
        let mut live = self.shared.live.subscribe();
        let largest = Duration::from_nanos(self.shared.max_stop_timeout.load(Ordering::Relaxed));
        let bound = largest.saturating_mul(2).saturating_add(STOP_ALL_SLACK);
        self.shared.stop.send_modify(|g| *g = g.wrapping_add(1));
        debug!(live = self.live(), ?bound, "stopping all children");
        // `wait_for` returns a read guard on the count; it is dropped at once, never held.
        let reaped = async { live.wait_for(|n| *n == 0).await.is_ok() };
        match timeout(bound, reaped).await {
            Ok(_) => debug!("all children reaped"),
            Err(_) => warn!(
                live = self.live(),
                ?bound,
                "children still running after stop_all"
            ),
        }
    }
}
