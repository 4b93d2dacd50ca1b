//! Messages being assembled: a message larger than one read is charged to the session's
//! [`FrameBudget`](super::FrameBudget) before the rest of it is read, and the client must finish
//! a message it has begun within the frame timeout.

use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::peer::Peer;
use super::{Forwarding, FrameBudget};
use crate::close::CloseReason;
use crate::codec::Codec;
use crate::gate::{PauseReason, Side};
use crate::stage::Protocol;

// === impl Forwarding ===

impl<K, C, B> Forwarding<K, C, B>
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    /// Holds a reservation for the message `side`'s read buffer begins with while it is larger
    /// than one read and a read's worth of it has arrived, and pauses reading from `side` while
    /// the budget cannot grant one (the
    /// task is woken when room is given back). A message no budget could ever hold fails the
    /// side. Gives the reservation back once the message has been decoded.
    pub(super) fn reserve_message<P: Protocol>(&mut self, side: Side, task: &mut Context<'_>)
    where
        K: Codec<P>,
    {
        let Some(budget) = &self.budget else {
            return;
        };
        let read_buffer = self.limits.read_buffer;
        match side {
            Side::Client => {
                let len = message_len::<P, _, _>(&self.codec, &self.client);
                reserve(budget, len, read_buffer, &mut self.client, task);
            }
            Side::Backend => {
                let len = message_len::<P, _, _>(&self.codec, &self.backend);
                reserve(budget, len, read_buffer, &mut self.backend, task);
            }
        }
    }

    /// Starts the frame timeout's clock when the client's reads leave part of a message in
    /// its buffer (again after each message decoded), and stops it while the client stands
    /// between messages, has ended, or is paused: a pause is the proxy's doing, not the
    /// client's.
    pub(super) fn track_frame_start(&mut self, decoded: bool) {
        let partial = self.client.gate.is_open()
            && !self.client.read_closed()
            && (!self.client.read_buf.is_empty() || self.client.passing > 0);
        self.frame_started = match (partial, self.frame_started) {
            (false, _) => None,
            (true, Some(started)) if !decoded => Some(started),
            (true, _) => Some(Instant::now()),
        };
    }

    /// When the client's unfinished message times out, if it has one.
    pub(super) fn frame_deadline(&self) -> Option<Instant> {
        self.frame_started
            .map(|started| started + self.limits.frame_timeout)
    }
}

/// The length of the message `peer`'s buffer begins with, if it is a message: the bytes of
/// one streaming past are not, and nothing is assembled for it.
fn message_len<P: Protocol, K: Codec<P>, Io>(codec: &K, peer: &Peer<Io>) -> Option<usize> {
    (peer.passing == 0)
        .then(|| codec.message_len(&peer.read_buf))
        .flatten()
}

/// [`Forwarding::reserve_message`] for one peer, whose buffer begins with a message of `len`
/// bytes when the codec knows it.
fn reserve<Io: AsyncRead + AsyncWrite + Unpin>(
    budget: &FrameBudget,
    len: Option<usize>,
    read_buffer: usize,
    peer: &mut Peer<Io>,
    task: &mut Context<'_>,
) {
    // A side paused for another reason reads nothing meanwhile: its message is judged when it
    // may read again, by then perhaps one that streams and needs no share at all.
    if !peer.gate.is_open_but_for(PauseReason::FrameBudget) && !peer.read_closed() {
        return;
    }
    // Charged once a read's worth of the message has arrived, not when its length has: a
    // client that sends a large length and nothing more (again, on many connections) would
    // otherwise hold shares of the budget that other sessions' large messages wait for, having
    // sent a few bytes for each. Until then the side reads as it would a small message.
    let Some(need) = len.filter(|&len| {
        len > read_buffer && peer.read_buf.len() >= read_buffer && !peer.read_closed()
    }) else {
        peer.grant = None;
        peer.gate.resume(PauseReason::FrameBudget);
        return;
    };
    if peer
        .grant
        .as_ref()
        .is_some_and(|grant| grant.bytes() >= need)
    {
        peer.gate.resume(PauseReason::FrameBudget);
        return;
    }
    peer.grant = None;
    if !budget.can_ever_hold(need) {
        let side = peer.side();
        peer.fail(CloseReason::Protocol {
            side,
            detail: format!(
                "a message of {need} bytes is larger than the frame budget of {} bytes",
                budget.limit()
            )
            .into(),
        });
        return;
    }
    match budget.poll_reserve(need, task) {
        Poll::Ready(grant) => {
            peer.grant = Some(grant);
            peer.gate.resume(PauseReason::FrameBudget);
        }
        Poll::Pending => peer.gate.pause(PauseReason::FrameBudget),
    }
}
