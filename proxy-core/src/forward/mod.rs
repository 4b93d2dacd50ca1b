//! The forwarding driver: moves a session's messages between client and backend through its
//! stage chain, one task per session, no locks.
//!
//! Each side has one bounded read buffer, one [`ReadGate`] and one [`WriteQueue`] of bytes
//! waiting to be written to it. A side is read only while its gate is open. The gate closes when
//! the queue a side feeds rises to the high watermark and opens again once it falls to the low
//! watermark, while a stage defers a message that side sent, and when a stage's answers to that
//! side pile up. So a slow peer costs at most `high_watermark + read_buffer` bytes per direction.
//!
//! Half-close travels independently in each direction: after a side's EOF, everything it sent is
//! delivered, then the other side's write half is shut down, and the opposite direction keeps
//! flowing until it ends too.
//!
//! A side that fails (a reset, a broken pipe, a malformed or truncated message) is delivered
//! before it is acted on: every whole message it sent before the failure is written to the
//! other side, and only then does the session end with that side's reason. A server that
//! answers and hangs up with the request unread (the kernel then resets) gets its answer to
//! the client. [`Forwarder::into_parts`] hands the transports back so the caller can pass the
//! reset on.

mod assembly;
mod budget;
mod forwarder;
mod gates;
mod passing;
mod peer;

#[cfg(test)]
mod assembly_tests;
#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod fin_tests;
#[cfg(test)]
mod hold_tests;
#[cfg(test)]
mod passing_tests;
#[cfg(test)]
mod tests;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};

pub use self::budget::FrameBudget;
pub use self::forwarder::{Forwarded, Forwarder};
use self::peer::Peer;
use crate::close::{CloseReason, InternalError};
use crate::codec::{Codec, CodecError};
use crate::context::SessionContext;
use crate::gate::{Direction, ReadGate, Side};
use crate::io::WriteQueue;
use crate::stage::{Emit, Protocol, StageChain};
use crate::stop::StopSignal;

/// How many rounds of progress one poll may make before yielding to other sessions.
const ROUNDS_PER_POLL: usize = 32;

/// Buffer bounds and timeouts of a forwarding session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardLimits {
    /// The most bytes read from a side at once.
    pub read_buffer: usize,
    /// Bytes queued toward a peer at which the side feeding it stops being read.
    pub high_watermark: usize,
    /// Bytes queued toward a peer at which the side feeding it is read again.
    pub low_watermark: usize,
    /// How long the session may move no byte before it is closed.
    pub idle_timeout: Duration,
    /// Once one side has sent EOF, how long the session may move no byte before it is closed
    /// (HAProxy's `timeout client-fin`/`server-fin`): a peer that went away must not keep its
    /// half of the session open until the idle timeout.
    pub half_close_timeout: Duration,
    /// How long the client may take to send the rest of a message it has begun, counted while
    /// its reads are open (a pause the proxy imposes does not count against it): a client that
    /// trickles a large frame cannot hold its buffer, and its share of the
    /// [`FrameBudget`], for the whole idle timeout. Protocols whose messages are whatever was
    /// read (raw TCP) never leave one unfinished.
    pub frame_timeout: Duration,
}

impl Default for ForwardLimits {
    fn default() -> Self {
        Self {
            read_buffer: 32 * 1024,
            high_watermark: 256 * 1024,
            low_watermark: 128 * 1024,
            idle_timeout: Duration::from_secs(3600),
            half_close_timeout: Duration::from_secs(60),
            frame_timeout: Duration::from_secs(60),
        }
    }
}

/// Forwards between `client` and `backend` until the session ends, and says why it ended.
///
/// A drain from `stop` asks the session to end at its next request boundary, if its protocol
/// has them ([`CloseReason::DrainCompleted`]): reads from the client pause there and the
/// session closes once every answer is written. A forced close ends the session at once with
/// [`CloseReason::Shutdown`]; the caller raises it at the drain deadline. A driver that walks
/// a state machine through `Draining` uses [`Forwarder`] instead, which stops when the drain
/// starts.
pub async fn forward<P, K, C, B>(
    client: C,
    backend: B,
    codec: K,
    chain: &mut StageChain<P>,
    cx: &mut SessionContext,
    limits: ForwardLimits,
    stop: &StopSignal,
) -> CloseReason
where
    P: Protocol,
    K: Codec<P>,
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    chain.start(cx);
    let mut forwarder = Forwarder::new(client, backend, codec, limits);
    match forwarder.run(chain, cx, stop).await {
        Forwarded::Closed(reason) => reason,
        Forwarded::DrainRequested => forwarder.drain(chain, cx, None, stop).await,
    }
}

/// One forwarding session's I/O state.
struct Forwarding<K, C, B> {
    client: Peer<C>,
    backend: Peer<B>,
    codec: K,
    /// Shared by a listener's sessions: an idle session need not carry its own copy.
    limits: Arc<ForwardLimits>,
    /// Which side sent EOF first: it names an orderly close.
    first_eof: Option<Side>,
    /// Which side failed first: its fault ends the session once what it sent is delivered.
    first_fault: Option<Side>,
    last_activity: Instant,
    /// The proxy is draining: stop at the next request boundary.
    draining: bool,
    /// What messages larger than one read are charged to; `None`: nothing bounds them beyond
    /// the codec's maximum.
    budget: Option<FrameBudget>,
    /// When the client began the message it has not finished, counted from when its reads
    /// last opened; `None` while it stands between messages or is paused.
    frame_started: Option<Instant>,
    /// Until when a stage holds the client's reads (a quota); `None` once it has passed.
    client_hold: Option<Instant>,
    /// The gates as last published, and since when: time paused is added per reason when
    /// they change.
    published: PublishedGates,
}

/// The read gates as last published, for the time spent paused per reason.
#[derive(Debug, Clone, Copy)]
struct PublishedGates {
    client: ReadGate,
    backend: ReadGate,
    since: Instant,
}

impl PublishedGates {
    fn open() -> Self {
        Self {
            client: ReadGate::open(),
            backend: ReadGate::open(),
            since: Instant::now(),
        }
    }
}

/// Where the chain's output goes: encoded onto the write queues.
struct Outbound<'a, K> {
    codec: &'a mut K,
    to_client: &'a mut WriteQueue,
    to_backend: &'a mut WriteQueue,
}

impl<P: Protocol, K: Codec<P>> Emit<P> for Outbound<'_, K> {
    fn to_backend(&mut self, msg: P::Request) -> Result<(), CloseReason> {
        self.codec
            .encode_request(msg, self.to_backend)
            .map_err(encode_error)
    }

    fn to_client(&mut self, msg: P::Response) -> Result<(), CloseReason> {
        self.codec
            .encode_response(msg, self.to_client)
            .map_err(encode_error)
    }
}

/// A message the proxy cannot encode is the proxy's own failure (a stage changed it into
/// something its version cannot carry), not a peer's.
fn encode_error(err: CodecError) -> CloseReason {
    CloseReason::Internal(InternalError::Encode(err))
}

// === impl Forwarding ===

impl<K, C, B> Forwarding<K, C, B>
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    fn poll<P: Protocol>(
        &mut self,
        task: &mut Context<'_>,
        chain: &mut StageChain<P>,
        cx: &mut SessionContext,
        mut idle: Pin<&mut Sleep>,
    ) -> Poll<CloseReason>
    where
        K: Codec<P>,
    {
        self.client.start_poll();
        self.backend.start_poll();
        for _ in 0..ROUNDS_PER_POLL {
            match self.round(task, chain, cx) {
                Err(reason) => {
                    self.account_paused(cx, true);
                    return Poll::Ready(reason);
                }
                Ok(Round::Done) => {
                    self.publish(cx);
                    self.account_paused(cx, true);
                    let first = self.first_eof.unwrap_or(Side::Client);
                    return Poll::Ready(match first {
                        Side::Client => CloseReason::ClientClosed,
                        Side::Backend => CloseReason::BackendClosed,
                    });
                }
                Ok(Round::Progress { rests }) => {
                    self.last_activity = Instant::now();
                    if rests {
                        return self.wait(task, cx, idle.as_mut());
                    }
                }
                Ok(Round::Blocked) => return self.wait(task, cx, idle.as_mut()),
            }
        }
        // Still busy: let other sessions run, and come back at once.
        self.publish(cx);
        task.waker().wake_by_ref();
        Poll::Pending
    }

    /// Ends a poll that has nothing more to do until the task is woken, or the idle timer
    /// fires.
    fn wait(
        &mut self,
        task: &mut Context<'_>,
        cx: &SessionContext,
        idle: Pin<&mut Sleep>,
    ) -> Poll<CloseReason> {
        self.publish(cx);
        let polled = self.poll_idle(task, idle);
        if polled.is_ready() {
            self.account_paused(cx, true);
        }
        polled
    }

    /// One pass over deferred stages, both read sides, both write sides and half-closes.
    fn round<P: Protocol>(
        &mut self,
        task: &mut Context<'_>,
        chain: &mut StageChain<P>,
        cx: &mut SessionContext,
    ) -> Result<Round, CloseReason>
    where
        K: Codec<P>,
    {
        let resolved = chain
            .poll_deferred(task, cx, &mut self.outbound())?
            .is_ready();
        self.take_client_hold(cx);
        self.update_gates(chain);
        let mut progress = self.read_side(Side::Client, task, chain, cx)?;
        progress |= self.read_side(Side::Backend, task, chain, cx)?;
        progress |= self.client.poll_flush_queue(task)?;
        progress |= self.backend.poll_flush_queue(task)?;
        self.update_gates(chain);
        let shut = self.poll_half_close(task, chain);
        if let Some(reason) = self.settled_fault() {
            return Err(reason);
        }
        if self.client.is_finished() && self.backend.is_finished() {
            return Ok(Round::Done);
        }
        // A protocol with request boundaries has no half-open state: a server that closed
        // between requests ended the session once the client has everything it sent.
        if self.codec.at_request_boundary().is_some()
            && self.backend.closed_cleanly()
            && self.client.write_is_shut()
        {
            return Ok(Round::Done);
        }
        if self.drained(chain) {
            return Err(CloseReason::DrainCompleted);
        }
        Ok(if resolved || shut {
            Round::Progress { rests: false }
        } else if progress {
            Round::Progress {
                rests: self.rests_until_woken(chain),
            }
        } else {
            Round::Blocked
        })
    }

    /// After a round that moved bytes: true when another round could do nothing until the task
    /// is woken, so the poll may end without one. Each side stopped reading because its read
    /// registered the task, or it ended, or its gate is shut for a reason only a wake can lift
    /// (backpressure is ruled out by the empty queues, a deferral by the idle chain); every
    /// write queue is empty; no stage defers, as a deferral made this round was never polled.
    fn rests_until_woken<P: Protocol>(&self, chain: &StageChain<P>) -> bool
    where
        K: Codec<P>,
    {
        self.client.stopped_reading()
            && self.backend.stopped_reading()
            // Written and flushed: a TLS transport may hold the last answer until flushed.
            && !self.client.has_undelivered()
            && !self.backend.has_undelivered()
            && !chain.is_stalled(Direction::Request)
            && !chain.is_stalled(Direction::Response)
    }

    /// Draining, and between requests: no partial request read, every request answered, every
    /// answer written, no stage holding a message.
    fn drained<P: Protocol>(&self, chain: &StageChain<P>) -> bool
    where
        K: Codec<P>,
    {
        self.draining
            && !self.passing_through()
            && self.codec.at_request_boundary() == Some(true)
            && self.client.read_buf.is_empty()
            && self.backend.read_buf.is_empty()
            && self.client.outbound.is_empty()
            && self.backend.outbound.is_empty()
            && !chain.is_stalled(Direction::Request)
            && !chain.is_stalled(Direction::Response)
    }

    /// Reads and decodes `side`'s bytes into the chain while that side's gate is open.
    fn read_side<P: Protocol>(
        &mut self,
        side: Side,
        task: &mut Context<'_>,
        chain: &mut StageChain<P>,
        cx: &mut SessionContext,
    ) -> Result<bool, CloseReason>
    where
        K: Codec<P>,
    {
        let waits = match side {
            Side::Client => self.client.waits_for_bytes(),
            Side::Backend => self.backend.waits_for_bytes(),
        };
        if waits {
            // As the last pass over this side left it: no message begun, nothing to track.
            return Ok(false);
        }
        let mut progress = false;
        let mut decoded = false;
        loop {
            // A message streaming from this side is passed on as it arrives, never decoded;
            // a large one that may stream starts to.
            let mut streamed = false;
            if self.passing(side) > 0 && self.pass_stream::<P>(side) {
                progress = true;
                streamed = true;
                // Its last byte is a message's end, as a decoded message's is.
                decoded |= self.passing(side) == 0;
            }
            if self.passing(side) == 0 && self.start_stream(side, chain, cx) {
                progress |= self.pass_stream::<P>(side);
                streamed = true;
                decoded = true;
            }
            // Streamed bytes fill the other side's queue as decoded messages do: without the
            // gates recomputed, a side streaming a large message would read on past the high
            // watermark, up to a whole poll's budget of reads.
            if streamed {
                self.update_gates(chain);
            }
            self.reserve_message::<P>(side, task);
            if !self.gate_open(side) {
                break;
            }
            if self.passing(side) == 0 && self.decode_one(side, chain, cx)? {
                self.update_gates(chain);
                progress = true;
                decoded = true;
                continue;
            }
            // What is left is part of a message: its size may have just become known.
            self.reserve_message::<P>(side, task);
            if !self.gate_open(side) {
                break;
            }
            let filled = match side {
                Side::Client => self.client.poll_fill(task, cx, &self.limits),
                Side::Backend => self.backend.poll_fill(task, cx, &self.limits),
            };
            match filled {
                Poll::Ready(true) => progress = true,
                Poll::Ready(false) => {
                    let first = *self.first_eof.get_or_insert(side);
                    // A server that hangs up with requests unanswered failed them: not an
                    // orderly close (what it answered is still delivered first), and the
                    // backend's fault unless the codec knows the request it hung up on was
                    // the client's error. Not when the client hung up first: a broker closes
                    // when it reads the end its client sent, with whatever was left unanswered.
                    if side == Side::Backend
                        && first == Side::Backend
                        && self.backend.closed_cleanly()
                        && self.codec.at_request_boundary() == Some(false)
                    {
                        let reason = self.codec.backend_hung_up_on_client().map_or(
                            CloseReason::BackendIo(std::io::ErrorKind::UnexpectedEof),
                            CloseReason::from,
                        );
                        self.backend.fail(reason);
                    }
                    progress = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        if side == Side::Client {
            self.track_frame_start(decoded);
        }
        Ok(progress)
    }

    fn passing(&self, side: Side) -> usize {
        match side {
            Side::Client => self.client.passing,
            Side::Backend => self.backend.passing,
        }
    }

    fn gate_open(&self, side: Side) -> bool {
        match side {
            Side::Client => self.client.gate.is_open(),
            Side::Backend => self.backend.gate.is_open(),
        }
    }

    /// Decodes one message from `side`'s read buffer and hands it to the chain; false when the
    /// buffer holds no whole message. A message that cannot be decoded is that side's fault:
    /// nothing more is read from it, and what it sent before is still delivered.
    fn decode_one<P: Protocol>(
        &mut self,
        side: Side,
        chain: &mut StageChain<P>,
        cx: &mut SessionContext,
    ) -> Result<bool, CloseReason>
    where
        K: Codec<P>,
    {
        match side {
            Side::Client => match self.codec.decode_request(&mut self.client.read_buf) {
                Ok(Some(msg)) => {
                    chain.on_request(msg, cx, &mut self.outbound())?;
                    self.take_client_hold(cx);
                }
                Ok(None) => return Ok(false),
                Err(err) => {
                    self.client.fail(protocol_error(side, err));
                    return Ok(false);
                }
            },
            Side::Backend => match self.codec.decode_response(&mut self.backend.read_buf) {
                Ok(Some(msg)) => {
                    chain.on_response(msg, cx, &mut self.outbound())?;
                    self.take_client_hold(cx);
                }
                Ok(None) => return Ok(false),
                Err(err) => {
                    self.backend.fail(protocol_error(side, err));
                    return Ok(false);
                }
            },
        }
        Ok(true)
    }

    /// Merges a hold a stage set into the one in force (the later deadline wins).
    fn take_client_hold(&mut self, cx: &mut SessionContext) {
        if let Some(until) = cx.take_client_hold() {
            self.client_hold = Some(self.client_hold.map_or(until, |held| held.max(until)));
        }
    }

    fn peer_closed_cleanly(&self, side: Side) -> bool {
        match side {
            Side::Client => self.client.closed_cleanly(),
            Side::Backend => self.backend.closed_cleanly(),
        }
    }

    /// The reason the session ends with, once a side has failed and everything it sent before
    /// has reached the other side (or the other side failed too, so nothing more can).
    fn settled_fault(&mut self) -> Option<CloseReason> {
        if self.first_fault.is_none() {
            self.first_fault = match (&self.client.fault, &self.backend.fault) {
                (Some(_), _) => Some(Side::Client),
                (None, Some(_)) => Some(Side::Backend),
                (None, None) => None,
            };
        }
        // A side that went away is read to its end first: it may have answered before it did.
        match self.first_fault? {
            Side::Client if self.client.read_closed() && !self.backend.has_undelivered() => {
                self.client.fault.take().map(|fault| *fault)
            }
            Side::Backend if self.backend.read_closed() && !self.client.has_undelivered() => {
                self.backend.fault.take().map(|fault| *fault)
            }
            _ => None,
        }
    }

    fn outbound(&mut self) -> Outbound<'_, K> {
        Outbound {
            codec: &mut self.codec,
            to_client: &mut self.client.outbound,
            to_backend: &mut self.backend.outbound,
        }
    }

    /// Shuts down a side's write half once the other side has ended and everything it sent
    /// (and every answer a stage could still give) has been written. A side that failed is not
    /// passed on as a half-close: the session ends with its fault instead.
    fn poll_half_close<P: Protocol>(
        &mut self,
        task: &mut Context<'_>,
        chain: &StageChain<P>,
    ) -> bool {
        let to_backend_done = self.peer_closed_cleanly(Side::Client)
            && !chain.is_stalled(Direction::Request)
            && (!chain.has_answered(Side::Backend) || self.backend.read_closed());
        let to_client_done = self.peer_closed_cleanly(Side::Backend)
            && !chain.is_stalled(Direction::Response)
            && (!chain.has_answered(Side::Client) || self.client.read_closed());
        // The session ends once both sides ended and both write halves are shut: the last
        // shutdown is the one made when everything else is.
        let both_ended = self.client.read_closed() && self.backend.read_closed();
        let mut progress = false;
        if to_backend_done {
            let last = both_ended && self.client.write_is_shut();
            progress |= self.backend.poll_shutdown_write(task, last);
        }
        if to_client_done {
            let last = both_ended && self.backend.write_is_shut();
            progress |= self.client.poll_shutdown_write(task, last);
        }
        progress
    }

    /// Registers the idle timer; the session ends when nothing has moved for the idle timeout,
    /// or for the half-close timeout once a side has sent EOF or failed (a failed side's bytes
    /// that the other side will not take end with the failure).
    fn poll_idle(
        &mut self,
        task: &mut Context<'_>,
        mut idle: Pin<&mut Sleep>,
    ) -> Poll<CloseReason> {
        let (timeout, reason) = match self.first_eof.or(self.first_fault) {
            Some(_) if self.limits.half_close_timeout < self.limits.idle_timeout => (
                self.limits.half_close_timeout,
                CloseReason::HalfCloseTimeout,
            ),
            _ => (self.limits.idle_timeout, CloseReason::IdleTimeout),
        };
        // Re-armed lazily (when it fires) as activity moves the deadline later; only a switch to
        // the shorter half-close timeout, a message begun, or a hold moves it earlier.
        let frame_deadline = self.frame_deadline();
        let deadline = self.last_activity + timeout;
        let deadline = frame_deadline.map_or(deadline, |frame| frame.min(deadline));
        let deadline = self.client_hold.map_or(deadline, |held| held.min(deadline));
        if idle.deadline() > deadline {
            idle.as_mut().reset(deadline);
        }
        while idle.as_mut().poll(task).is_ready() {
            let now = Instant::now();
            if self.client_hold.is_some_and(|held| held <= now) {
                // The hold is over: a round reopens the gate and reads again.
                self.client_hold = None;
                idle.as_mut().reset(self.last_activity + timeout);
                task.waker().wake_by_ref();
                return Poll::Pending;
            }
            if frame_deadline.is_some_and(|frame| frame <= now) {
                return Poll::Ready(CloseReason::FrameTimeout);
            }
            let deadline = self.last_activity + timeout;
            if deadline <= now {
                let fault = match self.first_fault {
                    Some(Side::Client) => self.client.fault.take(),
                    Some(Side::Backend) => self.backend.fault.take(),
                    None => None,
                };
                return Poll::Ready(fault.map_or(reason, |fault| *fault));
            }
            let next = frame_deadline.map_or(deadline, |frame| frame.min(deadline));
            idle.as_mut()
                .reset(self.client_hold.map_or(next, |held| held.min(next)));
        }
        Poll::Pending
    }

    /// Makes the buffered byte counts and gates visible to observers.
    fn publish(&mut self, cx: &SessionContext) {
        let stats = cx.stats();
        // A message being assembled is queued toward the other side as much as one waiting to
        // be written: both count.
        stats.set_buffered(
            Side::Client,
            self.client.outbound.len() + self.backend.read_buf.len(),
        );
        stats.set_buffered(
            Side::Backend,
            self.backend.outbound.len() + self.client.read_buf.len(),
        );
        stats.set_gate(Side::Client, self.client.gate);
        stats.set_gate(Side::Backend, self.backend.gate);
        self.account_paused(cx, false);
    }

    /// Adds the time since the last publication to every reason that held a gate then, once
    /// the gates change or the session ends: no clock read while they stay as they were.
    fn account_paused(&mut self, cx: &SessionContext, ending: bool) {
        let last = self.published;
        let unchanged = last.client == self.client.gate && last.backend == self.backend.gate;
        if unchanged && !(ending && !(last.client.is_open() && last.backend.is_open())) {
            return;
        }
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(last.since);
        let live = cx.live_resources();
        for reason in last.client.reasons().chain(last.backend.reasons()) {
            live.add_paused(reason, elapsed);
        }
        self.published = PublishedGates {
            client: self.client.gate,
            backend: self.backend.gate,
            since: now,
        };
    }
}

/// The outcome of one round.
enum Round {
    /// Bytes moved; `rests` when another round could move none before a wake.
    Progress {
        rests: bool,
    },
    Blocked,
    Done,
}

fn protocol_error(side: Side, err: crate::codec::CodecError) -> CloseReason {
    CloseReason::Protocol {
        side,
        detail: err.detail,
    }
}
