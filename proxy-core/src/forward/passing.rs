//! Messages streamed past the stages: a message larger than one read that no stage needs
//! whole ([`Stage::needs`](crate::stage::Stage::needs)) goes on to the other side as its bytes
//! arrive, so a session holds at most a read buffer and a write queue of it, whatever its size.

use tokio::io::{AsyncRead, AsyncWrite};

use super::Forwarding;
use super::peer::Peer;
use crate::close::CloseReason;
use crate::codec::{Codec, CodecError};
use crate::context::SessionContext;
use crate::gate::{Direction, PauseReason, Side};
use crate::stage::{Protocol, StageChain};

// === impl Forwarding ===

impl<K, C, B> Forwarding<K, C, B>
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    /// Starts streaming the message `side`'s read buffer begins with when it is larger than a
    /// read, the codec can stream it and the chain does not need it; true once one streams.
    /// A codec that cannot book the message fails the side, as a message it cannot decode
    /// would.
    pub(super) fn start_stream<P: Protocol>(
        &mut self,
        side: Side,
        chain: &StageChain<P>,
        cx: &SessionContext,
    ) -> bool
    where
        K: Codec<P>,
    {
        let read_buffer = self.limits.read_buffer;
        let (peer_buf, gate, direction) = match side {
            Side::Client => (&self.client.read_buf, self.client.gate, Direction::Request),
            Side::Backend => (
                &self.backend.read_buf,
                self.backend.gate,
                Direction::Response,
            ),
        };
        // A paused side starts nothing new, as it decodes nothing new (an in-flight limit, a
        // quota's hold); a wait for the frame budget does not count, as a streamed message
        // takes none.
        if !gate.is_open_but_for(PauseReason::FrameBudget) {
            return false;
        }
        let large = self
            .codec
            .message_len(peer_buf)
            .is_some_and(|len| len > read_buffer);
        if !large {
            return false;
        }
        let mut stream = |head: &P::Head| chain.streams(direction, head, cx);
        let streamed = self.codec.stream_message(side, peer_buf, &mut stream);
        match side {
            Side::Client => begun(&mut self.client, streamed),
            Side::Backend => begun(&mut self.backend, streamed),
        }
    }

    /// Moves what has arrived of the message `side` streams onto the other side's write queue;
    /// true when bytes moved. Once its last byte has, the codec releases what it held back.
    pub(super) fn pass_stream<P: Protocol>(&mut self, side: Side) -> bool
    where
        K: Codec<P>,
    {
        let (moved, ended) = match side {
            Side::Client => pass(&mut self.client, &mut self.backend),
            Side::Backend => pass(&mut self.backend, &mut self.client),
        };
        if ended {
            match side {
                Side::Client => {
                    Codec::<P>::end_stream(&mut self.codec, side, &mut self.backend.outbound)
                }
                Side::Backend => {
                    Codec::<P>::end_stream(&mut self.codec, side, &mut self.client.outbound)
                }
            }
        }
        moved
    }

    /// Whether a message from either side is part-way through streaming past the stages.
    pub(super) fn passing_through(&self) -> bool {
        self.client.passing > 0 || self.backend.passing > 0
    }
}

/// Settles what [`Codec::stream_message`] said about `peer`'s message: true when it streams.
fn begun<Io: AsyncRead + AsyncWrite + Unpin>(
    peer: &mut Peer<Io>,
    streamed: Result<Option<usize>, CodecError>,
) -> bool {
    match streamed {
        Ok(Some(len)) => {
            peer.passing = len;
            // Nothing of it is assembled: what was reserved for it goes back.
            peer.grant = None;
            true
        }
        Ok(None) => false,
        Err(err) => {
            let side = peer.side();
            peer.fail(CloseReason::Protocol {
                side,
                detail: err.detail,
            });
            false
        }
    }
}

/// Moves what `from` has read of the message it streams onto `to`'s write queue: whether
/// bytes moved, and whether that was its last.
fn pass<A, B>(from: &mut Peer<A>, to: &mut Peer<B>) -> (bool, bool) {
    let n = from.passing.min(from.read_buf.len());
    if n == 0 {
        return (false, false);
    }
    to.outbound.push(from.read_buf.split_to(n).freeze());
    from.passing -= n;
    (true, from.passing == 0)
}
