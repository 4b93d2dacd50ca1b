//! Child-process backends: a cluster that is a program instead of addresses.
//!
//! Each session that routes to such a cluster spawns one child. [`ChildIo`] is the session's
//! transport: reads come from the child's stdout, writes go to its stdin, and `poll_shutdown`
//! closes stdin, which is the half-close a raw TCP session propagates. An early exit of the child
//! therefore looks like an ordinary backend close: stdout reads EOF and writes fail with
//! `BrokenPipe` (Rust leaves `SIGPIPE` ignored, so the write is an error, not a crash).
//!
//! # Design
//!
//! [`ChildReaper::spawn`] starts the program in its own process group and, next to it, one
//! *supervisor* task that owns the `tokio::process::Child` (without its pipes, which the
//! `ChildIo` owns). The supervisor waits for the first of:
//!
//! - the child exiting on its own: it is reaped at once, so a session that outlives its child
//!   never leaves a zombie behind;
//! - the `ChildIo` being dropped (it holds the sending half of a oneshot channel, so release is
//!   by ownership, not by a call someone could forget); its stdin closes with it;
//! - [`ChildReaper::stop_all`], broadcast to every supervisor through a `watch` channel.
//!
//! The stop sequence then runs against the process group: wait up to `stop_timeout` for the
//! child to exit on its own (its stdin is closed unless the session still holds the `ChildIo`),
//! `SIGTERM` the group, wait up to `stop_timeout`, `SIGKILL` the group, reap. After the leader is
//! reaped, whatever is left of its group (grandchildren such as `sh -c 'sleep 30 & cat'`) gets
//! the rest of the same sequence, so the whole group ends within about twice `stop_timeout`.
//! Waiting uses `Child::wait`, which is signal-driven and never blocks a runtime thread.
//!
//! Grandchildren are not our children: once killed they are reaped by whoever adopted them (the
//! init process), not by us.
//!
//! There is no `TaskTracker` (tokio-util is not a dependency of this crate): a `watch` channel
//! carries the number of live supervisors, decremented by a guard when a supervisor ends (even if
//! its task is dropped), and `stop_all` waits for it to reach zero.

mod io;
mod reaper;
mod stop;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use self::io::ChildIo;
pub use self::reaper::ChildReaper;

/// How to run a cluster's child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSpec {
    /// The program and its arguments, run without a shell. Non-empty (the config validates it;
    /// `spawn` refuses an empty one with `InvalidInput`).
    pub argv: Vec<String>,
    /// How long each phase of the stop sequence waits before escalating: after stdin closes,
    /// and again after `SIGTERM`.
    pub stop_timeout: Duration,
}
