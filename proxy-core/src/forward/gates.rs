//! Recomputing a session's read gates from its write queues and its stage chain.
//!
//! Called after every message, so a burst decoded from one read can never outrun a pause:
//! reading from a side stops as soon as the queue it feeds reaches the high watermark (and
//! starts again once it is back at the low watermark), while a stage defers a message it sent,
//! and while answers it caused wait behind a deferral in the other lane. Reading from the client
//! also stops while it has as many requests unanswered as its codec allows: the request that
//! reaches the limit is the last one read, and the answer that brings it below reopens reads.
//! And it stops while a stage holds it until a deadline (a quota's throttle).

use tokio::io::{AsyncRead, AsyncWrite};

use super::Forwarding;
use crate::codec::Codec;
use crate::gate::{Direction, PauseReason, ReadGate, Side};
use crate::stage::{Protocol, StageChain};

// === impl Forwarding ===

impl<K, C, B> Forwarding<K, C, B>
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    /// Recomputes every pause reason from the queues and the chain.
    pub(super) fn update_gates<P: Protocol>(&mut self, chain: &StageChain<P>)
    where
        K: Codec<P>,
    {
        // Draining, a client between requests reads nothing more: what it sent is answered,
        // then the session closes. (A partly read request is read to its end first.) Protocols
        // without request boundaries (raw TCP) keep flowing until their peers end them.
        // A request streaming to the backend is partly read too.
        let hold_client = self.draining
            && self.codec.at_request_boundary().is_some()
            && self.client.read_buf.is_empty()
            && self.client.passing == 0;
        self.client.gate.set(PauseReason::Draining, hold_client);
        // A request streaming to the backend is read to its end: the backend cannot answer
        // it, and bring the count down, before it has all of it.
        self.client.gate.set(
            PauseReason::InFlightLimit,
            self.client.passing == 0 && self.codec.in_flight_limit_reached(),
        );
        // A stage's hold (a quota): the clock is read only while one is set.
        if self
            .client_hold
            .is_some_and(|until| until <= tokio::time::Instant::now())
        {
            self.client_hold = None;
        }
        self.client
            .gate
            .set(PauseReason::Quota, self.client_hold.is_some());
        let (high, low) = (self.limits.high_watermark, self.limits.low_watermark);
        let to_client = self.client.outbound.len();
        let to_backend = self.backend.outbound.len();
        let client = &mut self.client.gate;
        let backend = &mut self.backend.gate;
        hysteresis(
            client,
            PauseReason::Backpressure(Side::Backend),
            to_backend,
            high,
            low,
        );
        hysteresis(
            backend,
            PauseReason::Backpressure(Side::Client),
            to_client,
            high,
            low,
        );
        // A side whose own messages are answered by stages feeds its own queue too.
        if chain.has_answered(Side::Client) {
            hysteresis(
                client,
                PauseReason::Backpressure(Side::Client),
                to_client,
                high,
                low,
            );
        }
        if chain.has_answered(Side::Backend) {
            hysteresis(
                backend,
                PauseReason::Backpressure(Side::Backend),
                to_backend,
                high,
                low,
            );
        }
        // A side is paused while its lane is deferred, and while answers it caused wait in the
        // other lane.
        client.set(
            PauseReason::StageDeferred(Direction::Request),
            chain.is_stalled(Direction::Request),
        );
        client.set(
            PauseReason::StageDeferred(Direction::Response),
            chain.has_waiting(Direction::Response),
        );
        backend.set(
            PauseReason::StageDeferred(Direction::Response),
            chain.is_stalled(Direction::Response),
        );
        backend.set(
            PauseReason::StageDeferred(Direction::Request),
            chain.has_waiting(Direction::Request),
        );
    }
}

/// Pauses at `high` and resumes at `low`; between the two the gate keeps what it had.
fn hysteresis(gate: &mut ReadGate, reason: PauseReason, queued: usize, high: usize, low: usize) {
    if queued >= high {
        gate.pause(reason);
    } else if queued <= low {
        gate.resume(reason);
    }
}
