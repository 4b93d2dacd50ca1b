//! The read gate: one per side of a session, open only while no pause reason holds.
//!
//! Reasons form a small set, so a resume for one reason never undoes another's pause: a side
//! paused both because its peer's write queue is full and because a stage is deferring stays
//! paused until both have been resumed.

use std::fmt;

pub use crate::value::{Direction, Side};

/// Why reading from a side is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PauseReason {
    /// The write queue toward this side is above its high watermark.
    Backpressure(Side),
    /// A stage is deferring a message travelling in this direction, so order must hold.
    StageDeferred(Direction),
    /// The session is draining: no new work is read.
    Draining,
    /// The client has as many requests awaiting their answers as the session allows
    /// ([`Codec::in_flight_limit_reached`](crate::codec::Codec::in_flight_limit_reached)):
    /// backpressure until an answer arrives, never a reason to close.
    InFlightLimit,
    /// The message this side is sending is larger than a read and the frame budget it is
    /// charged to ([`FrameBudget`](crate::forward::FrameBudget)) cannot hold it yet: reading
    /// resumes when other sessions' large messages complete and free their share.
    FrameBudget,
    /// A stage holds the client's reads until a deadline
    /// ([`SessionContext::hold_client_reads_until`](crate::SessionContext::hold_client_reads_until)):
    /// a Kafka quota's throttle, during which a broker would mute the connection.
    Quota,
}

impl PauseReason {
    /// Every reason, for iteration in logs and metrics.
    pub const ALL: [PauseReason; 8] = [
        Self::Backpressure(Side::Client),
        Self::Backpressure(Side::Backend),
        Self::StageDeferred(Direction::Request),
        Self::StageDeferred(Direction::Response),
        Self::Draining,
        Self::InFlightLimit,
        Self::FrameBudget,
        Self::Quota,
    ];

    /// A short, stable label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::Backpressure(Side::Client) => "backpressure_client",
            Self::Backpressure(Side::Backend) => "backpressure_backend",
            Self::StageDeferred(Direction::Request) => "stage_deferred_request",
            Self::StageDeferred(Direction::Response) => "stage_deferred_response",
            Self::Draining => "draining",
            Self::InFlightLimit => "in_flight_limit",
            Self::FrameBudget => "frame_budget",
            Self::Quota => "quota",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Self::Backpressure(Side::Client) => 1,
            Self::Backpressure(Side::Backend) => 1 << 1,
            Self::StageDeferred(Direction::Request) => 1 << 2,
            Self::StageDeferred(Direction::Response) => 1 << 3,
            Self::Draining => 1 << 4,
            Self::InFlightLimit => 1 << 5,
            Self::FrameBudget => 1 << 6,
            Self::Quota => 1 << 7,
        }
    }
}

/// The set of reasons a side's reads are paused for; open when empty.
///
/// The [`forward`](crate::forward::forward) driver keeps one per side and recomputes it after
/// every message; a driver of its own uses it the same way.
///
/// ```
/// use proxy_core::gate::Direction;
/// use proxy_core::{PauseReason, ReadGate, Side};
///
/// let mut gate = ReadGate::open();
/// gate.pause(PauseReason::Backpressure(Side::Backend));
/// gate.pause(PauseReason::StageDeferred(Direction::Request));
///
/// // Resuming one reason leaves the other in place: the side stays paused.
/// gate.resume(PauseReason::Backpressure(Side::Backend));
/// assert!(!gate.is_open());
/// assert_eq!(
///     gate.reasons().collect::<Vec<_>>(),
///     [PauseReason::StageDeferred(Direction::Request)]
/// );
/// gate.resume(PauseReason::StageDeferred(Direction::Request));
/// assert!(gate.is_open());
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadGate {
    reasons: u8,
}

// === impl ReadGate ===

impl ReadGate {
    /// A gate with no pause reason.
    pub fn open() -> Self {
        Self::default()
    }

    /// Adds a pause reason; pausing twice for one reason is the same as once.
    pub fn pause(&mut self, reason: PauseReason) {
        self.reasons |= reason.bit();
    }

    /// Removes one pause reason, leaving every other one in place.
    pub fn resume(&mut self, reason: PauseReason) {
        self.reasons &= !reason.bit();
    }

    /// Pauses for `reason` when `paused` holds, resumes it otherwise.
    pub fn set(&mut self, reason: PauseReason, paused: bool) {
        if paused {
            self.pause(reason);
        } else {
            self.resume(reason);
        }
    }

    /// True when no reason holds: the side may be read.
    pub fn is_open(&self) -> bool {
        self.reasons == 0
    }

    /// True when no reason other than `reason` holds the gate shut.
    pub fn is_open_but_for(&self, reason: PauseReason) -> bool {
        self.reasons & !reason.bit() == 0
    }

    /// True when `reason` is one of the reasons holding the gate shut.
    pub fn is_paused_for(&self, reason: PauseReason) -> bool {
        self.reasons & reason.bit() != 0
    }

    /// The reasons currently holding the gate shut.
    pub fn reasons(&self) -> impl Iterator<Item = PauseReason> + '_ {
        PauseReason::ALL
            .into_iter()
            .filter(|r| self.is_paused_for(*r))
    }

    /// The raw bit set, for lock-free publication in [`SessionStats`](crate::context::SessionStats).
    pub fn bits(&self) -> u8 {
        self.reasons
    }

    /// Rebuilds a gate from [`bits`](Self::bits).
    pub fn from_bits(bits: u8) -> Self {
        Self { reasons: bits }
    }
}

impl fmt::Debug for ReadGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.reasons()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_gate_is_open() {
        assert!(ReadGate::open().is_open());
    }

    #[test]
    fn open_but_for_one_reason_looks_past_that_reason_only() {
        let mut gate = ReadGate::open();
        assert!(gate.is_open_but_for(PauseReason::FrameBudget));
        gate.pause(PauseReason::FrameBudget);
        assert!(gate.is_open_but_for(PauseReason::FrameBudget));
        assert!(!gate.is_open());
        gate.pause(PauseReason::Quota);
        assert!(!gate.is_open_but_for(PauseReason::FrameBudget));
        assert!(
            gate.is_paused_for(PauseReason::FrameBudget),
            "looking changes nothing"
        );
    }

    #[test]
    fn resuming_one_reason_keeps_the_others() {
        let mut gate = ReadGate::open();
        gate.pause(PauseReason::Backpressure(Side::Backend));
        gate.pause(PauseReason::StageDeferred(Direction::Request));
        gate.resume(PauseReason::Backpressure(Side::Backend));
        assert!(!gate.is_open());
        assert!(gate.is_paused_for(PauseReason::StageDeferred(Direction::Request)));
        gate.resume(PauseReason::StageDeferred(Direction::Request));
        assert!(gate.is_open());
    }

    #[test]
    fn pausing_twice_for_one_reason_needs_one_resume() {
        let mut gate = ReadGate::open();
        gate.pause(PauseReason::Draining);
        gate.pause(PauseReason::Draining);
        gate.resume(PauseReason::Draining);
        assert!(gate.is_open());
    }

    #[test]
    fn resuming_a_reason_that_never_paused_changes_nothing() {
        let mut gate = ReadGate::open();
        gate.pause(PauseReason::Draining);
        gate.resume(PauseReason::Backpressure(Side::Client));
        assert!(gate.is_paused_for(PauseReason::Draining));
    }

    #[test]
    fn every_reason_has_its_own_bit() {
        let mut seen = 0u8;
        for reason in PauseReason::ALL {
            assert_eq!(seen & reason.bit(), 0, "{reason:?} shares a bit");
            seen |= reason.bit();
        }
    }

    #[test]
    fn set_follows_the_condition_and_bits_round_trip() {
        let mut gate = ReadGate::open();
        gate.set(PauseReason::Backpressure(Side::Client), true);
        gate.set(PauseReason::Draining, false);
        let copy = ReadGate::from_bits(gate.bits());
        assert_eq!(
            copy.reasons().collect::<Vec<_>>(),
            vec![PauseReason::Backpressure(Side::Client)]
        );
        gate.set(PauseReason::Backpressure(Side::Client), false);
        assert!(gate.is_open());
    }
}
