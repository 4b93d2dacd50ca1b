//! One side of a forwarding session: its transport, read buffer, read gate and write queue.
//!
//! An error on a side is recorded, not returned: what that side sent before it failed is still
//! delivered to the other one, and the session ends with the error once it has been (see
//! [`Forwarding::settled_fault`](super::Forwarding)).

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::io::poll_read_buf;

use super::ForwardLimits;
use super::budget::FrameGrant;
use crate::close::CloseReason;
use crate::context::SessionContext;
use crate::gate::{ReadGate, Side};
use crate::io::WriteQueue;

/// A side starts with reads of this size and grows to the listener's `read_buffer` only once a
/// read fills its buffer: an idle or chatty session keeps a small buffer (memory per idle
/// session), a bulk transfer gets large reads (throughput).
const FIRST_READ: usize = 2048;

/// Spare read buffers kept per worker thread, at most; a buffer larger than
/// [`SPARE_MAX_CAPACITY`] (a streaming side's) is freed instead.
const SPARES_MAX: usize = 64;
const SPARE_MAX_CAPACITY: usize = 4 * FIRST_READ;

thread_local! {
    /// Empty read buffers that waiting sides of this thread's sessions gave back, for the next
    /// side that has bytes to read: idle sessions hold no read buffer (HAProxy returns its
    /// buffers to a pool the same way), and busy ones do not allocate one per read.
    static SPARES: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

fn take_spare() -> Option<BytesMut> {
    SPARES
        .try_with(|spares| spares.borrow_mut().pop())
        .ok()
        .flatten()
}

fn give_spare(buf: BytesMut) {
    if buf.capacity() > SPARE_MAX_CAPACITY {
        return;
    }
    // At thread exit the buffer is simply freed.
    let _ = SPARES.try_with(|spares| {
        let mut spares = spares.borrow_mut();
        if spares.len() < SPARES_MAX {
            spares.push(buf);
        }
    });
}

/// How far our write half toward a peer has been shut down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteHalf {
    Open,
    ShuttingDown,
    Shut,
}

/// One peer of the session.
pub(super) struct Peer<Io> {
    io: Io,
    side: Side,
    /// Bytes read from this peer and not yet decoded.
    pub(super) read_buf: BytesMut,
    pub(super) gate: ReadGate,
    /// Nothing more will be read from the peer: it sent EOF, or it failed.
    eof: bool,
    /// The peer itself sent EOF (rather than failing).
    sent_eof: bool,
    /// Why this side failed, kept until what it sent before has been delivered. Boxed: a
    /// fault is rare, and every idle session would carry room for one.
    pub(super) fault: Option<Box<CloseReason>>,
    /// Bytes waiting to be written to this peer.
    pub(super) outbound: WriteQueue,
    write: WriteHalf,
    /// Bytes were written since the transport was last flushed.
    needs_flush: bool,
    /// A read has filled the buffer: this side streams, so it reads `read_buffer` at a time.
    streaming: bool,
    /// The frame budget reserved for the message being assembled in `read_buf`.
    pub(super) grant: Option<FrameGrant>,
    /// Bytes still to come from this peer of a message streamed to the other side: they are
    /// passed on as read, not decoded.
    pub(super) passing: usize,
    /// A read found nothing during this poll of the session, and the task is registered to be
    /// woken when there is: reading again before the next poll would only register it again.
    read_waiting: bool,
    /// Closing the transport sends what shutting its write half down would (plain TCP: a
    /// FIN), and the session's owner closes it as soon as the session ends.
    close_sends_fin: bool,
}

// === impl Peer ===

impl<Io: AsyncRead + AsyncWrite + Unpin> Peer<Io> {
    pub(super) fn new(io: Io, side: Side) -> Self {
        Self {
            io,
            side,
            read_buf: BytesMut::new(),
            gate: ReadGate::open(),
            eof: false,
            sent_eof: false,
            fault: None,
            outbound: WriteQueue::default(),
            write: WriteHalf::Open,
            needs_flush: false,
            streaming: false,
            grant: None,
            passing: 0,
            read_waiting: false,
            close_sends_fin: false,
        }
    }

    /// Leaves a last half-close to the transport's close ([`Peer::close_sends_fin`]).
    pub(super) fn set_close_sends_fin(&mut self, yes: bool) {
        self.close_sends_fin = yes;
    }

    /// A new poll of the session: the task may have been woken for this side's bytes.
    pub(super) fn start_poll(&mut self) {
        self.read_waiting = false;
    }

    /// Reading stopped for a reason that only a wake changes: the peer ended, its gate is shut,
    /// or its read registered the task during this poll.
    pub(super) fn stopped_reading(&self) -> bool {
        self.eof || !self.gate.is_open() || self.read_waiting
    }

    /// Nothing buffered, nothing passing through, and the transport has been asked for bytes
    /// during this poll: until the task is woken there is nothing to decode, stream or read.
    pub(super) fn waits_for_bytes(&self) -> bool {
        self.read_waiting && self.read_buf.is_empty() && self.passing == 0
    }

    /// Which side of the session this peer is.
    pub(super) fn side(&self) -> Side {
        self.side
    }

    /// True once nothing more will be read from the peer.
    pub(super) fn read_closed(&self) -> bool {
        self.eof
    }

    /// True once the peer has sent EOF without failing: its half-close may be passed on.
    pub(super) fn closed_cleanly(&self) -> bool {
        self.sent_eof && self.fault.is_none()
    }

    /// True while bytes toward the peer wait to be written (or flushed) and still can be.
    pub(super) fn has_undelivered(&self) -> bool {
        self.fault.is_none() && (!self.outbound.is_empty() || self.needs_flush)
    }

    /// True once our write half toward the peer is shut.
    pub(super) fn write_is_shut(&self) -> bool {
        self.write == WriteHalf::Shut
    }

    /// True when the peer has sent EOF and our write half toward it is shut.
    pub(super) fn is_finished(&self) -> bool {
        self.eof && self.write == WriteHalf::Shut
    }

    /// Reads once into the buffer: `Ready(true)` for bytes, `Ready(false)` for EOF or a read
    /// error (recorded as the side's fault), `Pending` when nothing is available or the peer
    /// already ended. Cancel safe: bytes land in the persistent buffer.
    pub(super) fn poll_fill(
        &mut self,
        task: &mut Context<'_>,
        cx: &SessionContext,
        limits: &ForwardLimits,
    ) -> Poll<bool> {
        if self.eof || self.read_waiting {
            return Poll::Pending;
        }
        let want = if self.streaming {
            limits.read_buffer
        } else {
            FIRST_READ.min(limits.read_buffer)
        };
        // A streaming side whose last read filled its buffer, and whose bytes have all been cut
        // off and queued, has no room left: it reserves a full read below (which takes the old
        // allocation back once the queue has written it), rather than a small spare or the
        // stack, which would make every other read a small one.
        let small = !self.streaming && self.read_buf.capacity() == 0;
        if small && let Some(spare) = take_spare() {
            self.read_buf = spare;
        }
        let (read, space) = if small && self.read_buf.capacity() == 0 {
            // No buffer (new, or released while quiet): the read goes to the stack first, so
            // waiting for bytes allocates nothing.
            let mut scratch = [0u8; FIRST_READ];
            let scratch = &mut scratch[..want.min(FIRST_READ)];
            let space = scratch.len();
            let mut filled = ReadBuf::new(scratch);
            let read = match Pin::new(&mut self.io).poll_read(task, &mut filled) {
                Poll::Ready(Ok(())) => {
                    if !filled.filled().is_empty() {
                        self.read_buf.reserve(want);
                        self.read_buf.extend_from_slice(filled.filled());
                    }
                    Poll::Ready(Ok(filled.filled().len()))
                }
                Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
                Poll::Pending => Poll::Pending,
            };
            (read, space)
        } else {
            // Topped up below a quarter of a read, so reads stay large; `reserve` reclaims the
            // old allocation when every chunk cut from it has been written.
            if self.read_buf.capacity() - self.read_buf.len() < want / 4 {
                self.read_buf.reserve(want);
            }
            let space = self.read_buf.capacity() - self.read_buf.len();
            (
                poll_read_buf(Pin::new(&mut self.io), task, &mut self.read_buf),
                space,
            )
        };
        match read {
            Poll::Pending => {
                self.read_waiting = true;
                if !self.streaming {
                    // A waiting side holds no buffer, and a busy one gets one back without
                    // allocating. A streaming side keeps its large buffer: it will read again
                    // soon, and reallocating it each time the socket runs dry costs throughput.
                    self.release_read_buf();
                }
                Poll::Pending
            }
            Poll::Ready(Ok(0)) => {
                self.eof = true;
                self.sent_eof = true;
                if !self.read_buf.is_empty() || self.passing > 0 {
                    self.fail(CloseReason::Protocol {
                        side: self.side,
                        detail: "connection closed in the middle of a message".into(),
                    });
                }
                self.release_read_buf();
                Poll::Ready(false)
            }
            Poll::Ready(Ok(n)) => {
                self.streaming |= n >= space;
                cx.stats().add_read(self.side, n);
                Poll::Ready(true)
            }
            Poll::Ready(Err(err)) => {
                self.eof = true;
                self.fail(self.io_error(&err));
                self.release_read_buf();
                Poll::Ready(false)
            }
        }
    }

    /// A read buffer that keeps nothing goes back to the worker's spares: a side waiting for
    /// bytes holds none, and a connection that ends does not free one for the next to
    /// allocate. One that keeps part of a message stays.
    fn release_read_buf(&mut self) {
        if self.read_buf.is_empty() && self.read_buf.capacity() > 0 {
            give_spare(std::mem::take(&mut self.read_buf));
        }
    }

    /// Records why this side failed (the first reason wins) and stops reading from it.
    pub(super) fn fail(&mut self, reason: CloseReason) {
        self.eof = true;
        self.fault.get_or_insert_with(|| Box::new(reason));
    }

    /// Records a failed write: bytes toward this peer can no longer be delivered. A peer that
    /// went away (reset, broken pipe) may still have sent something before it did, which is
    /// read to its end; after any other error nothing more is read either.
    fn fail_write(&mut self, err: &io::Error) {
        let reason = self.io_error(err);
        self.outbound.clear();
        self.needs_flush = false;
        self.write = WriteHalf::Shut;
        if !is_gone(err.kind()) {
            self.eof = true;
        }
        self.fault.get_or_insert_with(|| Box::new(reason));
    }

    /// Writes queued bytes until the queue empties or the transport pushes back. A write error
    /// is recorded as this side's fault (and counts as progress: the session moves on).
    pub(super) fn poll_flush_queue(&mut self, task: &mut Context<'_>) -> Result<bool, CloseReason> {
        if self.fault.is_some() && self.write == WriteHalf::Shut {
            // Failed earlier: whatever a stage still sends this way cannot be delivered.
            self.outbound.clear();
            return Ok(false);
        }
        if self.write != WriteHalf::Open && !self.outbound.is_empty() {
            return Err(CloseReason::AnswerAfterShutdown(self.side));
        }
        let mut progress = false;
        while !self.outbound.is_empty() {
            match self.outbound.poll_write_to(Pin::new(&mut self.io), task) {
                Poll::Pending => break,
                Poll::Ready(Ok(0)) => {
                    self.fail_write(&io::ErrorKind::WriteZero.into());
                    return Ok(true);
                }
                Poll::Ready(Ok(_)) => {
                    progress = true;
                    self.needs_flush = true;
                }
                Poll::Ready(Err(err)) => {
                    self.fail_write(&err);
                    return Ok(true);
                }
            }
        }
        if self.needs_flush {
            match Pin::new(&mut self.io).poll_flush(task) {
                Poll::Ready(Ok(())) => self.needs_flush = false,
                Poll::Ready(Err(err)) => {
                    self.fail_write(&err);
                    return Ok(true);
                }
                Poll::Pending => {}
            }
        }
        Ok(progress)
    }

    /// Shuts our write half down once everything queued has been written. `last`: nothing but
    /// this shutdown stands between the session and its end, so a transport whose close sends
    /// the same FIN is left to its close (one system call fewer per connection).
    pub(super) fn poll_shutdown_write(&mut self, task: &mut Context<'_>, last: bool) -> bool {
        if self.write == WriteHalf::Shut || !self.outbound.is_empty() || self.needs_flush {
            return false;
        }
        if last && self.close_sends_fin {
            self.write = WriteHalf::Shut;
            return true;
        }
        self.write = WriteHalf::ShuttingDown;
        match Pin::new(&mut self.io).poll_shutdown(task) {
            Poll::Pending => false,
            Poll::Ready(Ok(())) => {
                self.write = WriteHalf::Shut;
                true
            }
            // The peer is already gone: there is nothing left to shut down.
            Poll::Ready(Err(err)) if err.kind() == io::ErrorKind::NotConnected => {
                self.write = WriteHalf::Shut;
                true
            }
            Poll::Ready(Err(err)) => {
                self.fail_write(&err);
                true
            }
        }
    }

    /// The transport, once forwarding is over (to pass a reset on, or to close it).
    pub(super) fn into_io(self) -> Io {
        self.io
    }

    /// The close reason for an I/O error on this side. A peer that already sent EOF and then
    /// refuses our bytes simply went away: that is an orderly close by that peer.
    fn io_error(&self, err: &io::Error) -> CloseReason {
        let gone = is_gone(err.kind());
        match (self.side, self.sent_eof && gone) {
            (Side::Client, true) => CloseReason::ClientClosed,
            (Side::Backend, true) => CloseReason::BackendClosed,
            (Side::Client, false) => CloseReason::ClientIo(err.kind()),
            (Side::Backend, false) => CloseReason::BackendIo(err.kind()),
        }
    }
}

/// Errors that say the peer went away (as opposed to a local failure).
fn is_gone(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use tokio::io::AsyncWriteExt as _;

    use super::*;
    use crate::test_support::cx;

    #[tokio::test]
    async fn a_waiting_side_holds_no_buffer_and_a_reading_one_reuses_a_spare() {
        let (mut client, proxy_side) = tokio::io::duplex(64 * 1024);
        let mut peer = Peer::new(proxy_side, Side::Client);
        let cx = cx();
        let limits = ForwardLimits::default();
        let mut task = Context::from_waker(Waker::noop());
        assert_eq!(
            peer.read_buf.capacity(),
            0,
            "nothing held before the first read"
        );
        assert_eq!(peer.poll_fill(&mut task, &cx, &limits), Poll::Pending);
        assert_eq!(peer.read_buf.capacity(), 0, "nor while waiting for it");

        client.write_all(b"a request").await.expect("write");
        peer.start_poll();
        assert_eq!(peer.poll_fill(&mut task, &cx, &limits), Poll::Ready(true));
        assert!(peer.read_buf.capacity() >= FIRST_READ);
        // Decoded and passed on: the chunk keeps its bytes, the waiting side keeps nothing.
        let message = peer.read_buf.split().freeze();
        assert_eq!(peer.poll_fill(&mut task, &cx, &limits), Poll::Pending);
        // Within the same poll the side is not read again: its task waits to be woken.
        assert_eq!(peer.poll_fill(&mut task, &cx, &limits), Poll::Pending);
        assert_eq!(peer.read_buf.capacity(), 0);
        assert_eq!(&message[..], b"a request");
        drop(message);

        // The next read takes the spare back (this test's thread is the runtime's only one).
        let spares = SPARES.with(|spares| spares.borrow().len());
        assert!(spares >= 1);
        client.write_all(b"part").await.expect("write");
        assert_eq!(
            peer.poll_fill(&mut task, &cx, &limits),
            Poll::Pending,
            "not before a new poll"
        );
        peer.start_poll();
        assert_eq!(peer.poll_fill(&mut task, &cx, &limits), Poll::Ready(true));
        assert_eq!(SPARES.with(|spares| spares.borrow().len()), spares - 1);
        // Part of a message is kept while the rest is awaited.
        assert_eq!(peer.poll_fill(&mut task, &cx, &limits), Poll::Pending);
        assert_eq!(&peer.read_buf[..], b"part");
    }

    #[tokio::test]
    async fn a_side_that_ended_gives_its_buffer_back_unless_it_holds_part_of_a_message() {
        let cx = cx();
        let limits = ForwardLimits::default();
        let mut task = Context::from_waker(Waker::noop());
        let spares = || SPARES.with(|spares| spares.borrow().len());

        // A whole message, then EOF in the same read loop: the emptied buffer is a spare.
        let (mut client, proxy_side) = tokio::io::duplex(64 * 1024);
        let mut peer = Peer::new(proxy_side, Side::Client);
        client.write_all(b"bye").await.expect("write");
        client.shutdown().await.expect("shutdown");
        assert_eq!(peer.poll_fill(&mut task, &cx, &limits), Poll::Ready(true));
        let message = peer.read_buf.split().freeze();
        let before = spares();
        assert_eq!(peer.poll_fill(&mut task, &cx, &limits), Poll::Ready(false));
        assert_eq!(peer.read_buf.capacity(), 0);
        assert_eq!(spares(), before + 1);
        assert_eq!(&message[..], b"bye");

        // EOF in the middle of a message: the bytes stay with the fault.
        let (mut client, proxy_side) = tokio::io::duplex(64 * 1024);
        let mut peer = Peer::new(proxy_side, Side::Client);
        client.write_all(b"half a").await.expect("write");
        client.shutdown().await.expect("shutdown");
        assert_eq!(peer.poll_fill(&mut task, &cx, &limits), Poll::Ready(true));
        let before = spares();
        assert_eq!(peer.poll_fill(&mut task, &cx, &limits), Poll::Ready(false));
        assert_eq!(&peer.read_buf[..], b"half a");
        assert!(peer.fault.is_some());
        assert_eq!(spares(), before);
    }

    #[tokio::test]
    async fn a_streaming_side_keeps_reading_whole_buffers_into_the_allocation_it_had() {
        let (mut client, proxy_side) = tokio::io::duplex(1024 * 1024);
        let mut peer = Peer::new(proxy_side, Side::Client);
        let cx = cx();
        let limits = ForwardLimits::default();
        let mut task = Context::from_waker(Waker::noop());
        // A small spare on hand, as a busy worker has: a streaming side must not take it.
        give_spare(BytesMut::with_capacity(FIRST_READ));
        client
            .write_all(&vec![7u8; 8 * limits.read_buffer])
            .await
            .expect("write");
        // The first read is small, fills its buffer, and makes the side a streaming one.
        assert_eq!(peer.poll_fill(&mut task, &cx, &limits), Poll::Ready(true));
        drop(peer.read_buf.split());
        let mut allocation = None;
        for read in 1..=4 {
            assert_eq!(peer.poll_fill(&mut task, &cx, &limits), Poll::Ready(true));
            assert!(
                peer.read_buf.len() >= limits.read_buffer,
                "read {read} is {} bytes, not a whole `read_buffer`",
                peer.read_buf.len()
            );
            // Cut off and written (dropped): the next read takes the allocation back from its
            // start. (The first whole read went in after the small one, further in.)
            let chunk = peer.read_buf.split().freeze();
            let at = chunk.as_ptr();
            if read > 1 {
                assert_eq!(*allocation.get_or_insert(at), at, "read {read} reallocated");
            }
            drop(chunk);
        }
    }
}
