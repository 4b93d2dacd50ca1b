//! One session's ordered chain of stages, and the bookkeeping that keeps order under `Defer`.
//!
//! Each direction is a *lane*. While a stage in a lane defers, anything else entering that lane
//! waits behind it; the driver pauses reads on the side feeding a stalled lane, so at most a
//! message or two ever wait. An answer (`Respond`) enters the opposite lane at the answering
//! stage and travels back through the stages between it and the sender.

use std::collections::VecDeque;
use std::task::{Context, Poll};

use super::{Deferred, Flow, Protocol, Stage, StageContext, Stages};
use crate::close::CloseReason;
use crate::context::SessionContext;
use crate::gate::Direction;

/// Where messages leave the chain.
pub trait Emit<P: Protocol> {
    /// A request that passed every stage: send it to the backend. An error (a message that
    /// cannot be encoded) ends the session.
    fn to_backend(&mut self, msg: P::Request) -> Result<(), CloseReason>;
    /// A response that passed every stage (or an answer from one): send it to the client.
    fn to_client(&mut self, msg: P::Response) -> Result<(), CloseReason>;
}

/// A stage's deferred decision on a message at `stage`.
struct Pending<M, R> {
    stage: usize,
    decision: Deferred<M, R>,
}

/// One direction's queue discipline.
struct Lane<M, R> {
    /// Present only while the lane is stalled (a stage defers, or messages wait behind one):
    /// most sessions never defer, and an idle session should not carry the room.
    stall: Option<Box<Stall<M, R>>>,
}

/// A stalled lane: the deferred decision, and what entered behind it.
struct Stall<M, R> {
    deferred: Option<Pending<M, R>>,
    /// Messages that entered while the lane was deferred, with the position they entered at.
    waiting: VecDeque<(usize, M)>,
}

impl<M, R> Default for Lane<M, R> {
    fn default() -> Self {
        Self { stall: None }
    }
}

impl<M, R> Lane<M, R> {
    fn is_stalled(&self) -> bool {
        self.stall.is_some()
    }

    fn has_waiting(&self) -> bool {
        self.stall
            .as_ref()
            .is_some_and(|stall| !stall.waiting.is_empty())
    }

    /// The decision on a message at `stage` is deferred: the lane stalls until it resolves.
    fn defer(&mut self, stage: usize, decision: Deferred<M, R>) {
        self.stall().deferred = Some(Pending { stage, decision });
    }

    /// `msg` entered a stalled lane at `at`: it waits its turn.
    fn wait(&mut self, at: usize, msg: M) {
        self.stall().waiting.push_back((at, msg));
    }

    fn stall(&mut self) -> &mut Stall<M, R> {
        self.stall.get_or_insert_with(|| {
            Box::new(Stall {
                deferred: None,
                waiting: VecDeque::new(),
            })
        })
    }

    /// Polls the deferred decision: once it resolves, its stage and flow, and the lane stalls
    /// no longer unless messages wait.
    fn poll_deferred(&mut self, task: &mut Context<'_>) -> Option<(usize, Flow<M, R>)> {
        let stall = self.stall.as_mut()?;
        let pending = stall.deferred.as_mut()?;
        let Poll::Ready(flow) = pending.decision.as_mut().poll(task) else {
            return None;
        };
        let stage = pending.stage;
        stall.deferred = None;
        if stall.waiting.is_empty() {
            self.stall = None;
        }
        Some((stage, flow))
    }

    /// The next message that waited, once nothing defers; the lane stalls no longer once the
    /// last has left.
    fn next_waiting(&mut self) -> Option<(usize, M)> {
        let stall = self.stall.as_mut()?;
        if stall.deferred.is_some() {
            return None;
        }
        let next = stall.waiting.pop_front();
        if stall.waiting.is_empty() {
            self.stall = None;
        }
        next
    }
}

/// The stages of one session, in request order.
///
/// The [`forward`](crate::forward::forward) driver feeds it what it decodes and encodes what it
/// emits; a driver of its own (or a test) does the same through an [`Emit`].
///
/// ```
/// use std::net::SocketAddr;
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use proxy_core::codec::RawTcp;
/// use proxy_core::route::Prerequisites;
/// use proxy_core::stage::{Emit, Flow, Stage, StageChain, StageContext};
/// use proxy_core::{CloseReason, SessionContext};
///
/// /// Answers `ping` itself.
/// struct Pong;
///
/// impl Stage<RawTcp> for Pong {
///     fn kind(&self) -> &'static str {
///         "pong"
///     }
///
///     fn on_request(&mut self, msg: Bytes, _cx: &mut StageContext<'_>) -> Flow<Bytes, Bytes> {
///         if msg == "ping" {
///             Flow::Respond(Bytes::from_static(b"pong"))
///         } else {
///             Flow::Forward(msg)
///         }
///     }
/// }
///
/// /// Where messages leave the chain: here, two lists.
/// #[derive(Default)]
/// struct Out {
///     to_backend: Vec<Bytes>,
///     to_client: Vec<Bytes>,
/// }
///
/// impl Emit<RawTcp> for Out {
///     fn to_backend(&mut self, msg: Bytes) -> Result<(), CloseReason> {
///         self.to_backend.push(msg);
///         Ok(())
///     }
///
///     fn to_client(&mut self, msg: Bytes) -> Result<(), CloseReason> {
///         self.to_client.push(msg);
///         Ok(())
///     }
/// }
///
/// let addr = SocketAddr::from(([127, 0, 0, 1], 1));
/// let mut cx = SessionContext::new("doc".into(), addr, addr, Prerequisites::TCP, Arc::default());
/// let mut chain = StageChain::<RawTcp>::new(vec![Box::new(Pong)]);
/// let mut out = Out::default();
/// chain.on_request(Bytes::from_static(b"ping"), &mut cx, &mut out)?;
/// chain.on_request(Bytes::from_static(b"hello"), &mut cx, &mut out)?;
/// chain.on_response(Bytes::from_static(b"world"), &mut cx, &mut out)?;
/// assert_eq!(out.to_backend, ["hello"]);
/// assert_eq!(out.to_client, ["pong", "world"]);
/// # Ok::<(), CloseReason>(())
/// ```
pub struct StageChain<P: Protocol> {
    stages: Stages<P>,
    /// Positions count stages passed: a request at `i` goes to stage `i` next.
    requests: Lane<P::Request, P::Response>,
    /// A response at `i` goes to stage `i - 1` next; at 0 it goes to the client.
    responses: Lane<P::Response, P::Request>,
    /// A stage has answered a request: the client's own messages feed the client's queue.
    answered_client: bool,
    /// A stage has answered a response: the backend's own messages feed the backend's queue.
    answered_backend: bool,
}

impl<P: Protocol> std::fmt::Debug for StageChain<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: Vec<_> = self.stages.iter().map(|s| s.kind()).collect();
        f.debug_struct("StageChain")
            .field("stages", &kinds)
            .field("requests_stalled", &self.requests.is_stalled())
            .field("responses_stalled", &self.responses.is_stalled())
            .finish()
    }
}

// === impl StageChain ===

impl<P: Protocol> From<Stages<P>> for StageChain<P> {
    /// A chain of `stages`, the first seeing requests first; up to two cost no allocation.
    fn from(stages: Stages<P>) -> Self {
        Self {
            stages,
            requests: Lane::default(),
            responses: Lane::default(),
            answered_client: false,
            answered_backend: false,
        }
    }
}

impl<P: Protocol> StageChain<P> {
    /// A chain of `stages`, the first seeing requests first.
    pub fn new(stages: Vec<Box<dyn Stage<P>>>) -> Self {
        Self::from(Stages::from_vec(stages))
    }

    /// True once a stage has answered a message from `side` back to it.
    pub fn has_answered(&self, side: crate::gate::Side) -> bool {
        match side {
            crate::gate::Side::Client => self.answered_client,
            crate::gate::Side::Backend => self.answered_backend,
        }
    }

    /// True when a stage is deferring in `direction` (or messages wait behind one).
    pub fn is_stalled(&self, direction: Direction) -> bool {
        match direction {
            Direction::Request => self.requests.is_stalled(),
            Direction::Response => self.responses.is_stalled(),
        }
    }

    /// True when messages wait in `direction` behind a deferral.
    pub fn has_waiting(&self, direction: Direction) -> bool {
        match direction {
            Direction::Request => self.requests.has_waiting(),
            Direction::Response => self.responses.has_waiting(),
        }
    }

    /// Tells every stage, in order, that forwarding starts ([`Stage::on_start`]).
    pub fn start(&mut self, cx: &mut SessionContext) {
        for stage in &mut self.stages {
            stage.on_start(&mut StageContext::new(cx));
        }
    }

    /// Whether the message travelling `direction` whose first bytes told `head` may be
    /// streamed past the chain: no stage needs it whole ([`Stage::needs`]), and nothing waits
    /// in its lane, which it would overtake.
    pub fn streams(&self, direction: Direction, head: &P::Head, cx: &SessionContext) -> bool {
        !self.is_stalled(direction)
            && !self
                .stages
                .iter()
                .any(|stage| stage.needs(direction, head, cx))
    }

    /// A request read from the client enters the chain.
    pub fn on_request(
        &mut self,
        msg: P::Request,
        cx: &mut SessionContext,
        emit: &mut impl Emit<P>,
    ) -> Result<(), CloseReason> {
        self.enter_requests(0, msg, cx, emit)
    }

    /// A response read from the backend enters the chain.
    pub fn on_response(
        &mut self,
        msg: P::Response,
        cx: &mut SessionContext,
        emit: &mut impl Emit<P>,
    ) -> Result<(), CloseReason> {
        let end = self.stages.len();
        self.enter_responses(end, msg, cx, emit)
    }

    /// Polls deferred decisions; `Ready` when at least one resolved and its lane moved on.
    ///
    /// Cancel safety: a deferred future stays stored until it resolves, so dropping the call
    /// loses nothing.
    pub fn poll_deferred(
        &mut self,
        task: &mut Context<'_>,
        cx: &mut SessionContext,
        emit: &mut impl Emit<P>,
    ) -> Poll<Result<(), CloseReason>> {
        let mut resolved = false;
        if let Some((stage, flow)) = self.requests.poll_deferred(task) {
            resolved = true;
            self.after_request_stage(stage, flow, cx, emit)?;
        }
        if let Some((stage, flow)) = self.responses.poll_deferred(task) {
            resolved = true;
            self.after_response_stage(stage, flow, cx, emit)?;
        }
        if !resolved {
            return Poll::Pending;
        }
        self.release_waiting(cx, emit)?;
        Poll::Ready(Ok(()))
    }

    /// Lets messages that waited behind a resolved deferral move on, in order, until a lane
    /// defers again or empties.
    fn release_waiting(
        &mut self,
        cx: &mut SessionContext,
        emit: &mut impl Emit<P>,
    ) -> Result<(), CloseReason> {
        loop {
            let mut moved = false;
            while let Some((at, msg)) = self.requests.next_waiting() {
                self.run_requests(at, msg, cx, emit)?;
                moved = true;
            }
            while let Some((at, msg)) = self.responses.next_waiting() {
                self.run_responses(at, msg, cx, emit)?;
                moved = true;
            }
            if !moved {
                return Ok(());
            }
        }
    }

    fn enter_requests(
        &mut self,
        at: usize,
        msg: P::Request,
        cx: &mut SessionContext,
        emit: &mut impl Emit<P>,
    ) -> Result<(), CloseReason> {
        if self.requests.is_stalled() {
            self.requests.wait(at, msg);
            return Ok(());
        }
        self.run_requests(at, msg, cx, emit)
    }

    fn enter_responses(
        &mut self,
        at: usize,
        msg: P::Response,
        cx: &mut SessionContext,
        emit: &mut impl Emit<P>,
    ) -> Result<(), CloseReason> {
        if self.responses.is_stalled() {
            self.responses.wait(at, msg);
            return Ok(());
        }
        self.run_responses(at, msg, cx, emit)
    }

    /// Runs a request from position `at` without checking the lane: the caller has.
    fn run_requests(
        &mut self,
        at: usize,
        msg: P::Request,
        cx: &mut SessionContext,
        emit: &mut impl Emit<P>,
    ) -> Result<(), CloseReason> {
        let Some(stage) = self.stages.get_mut(at) else {
            return emit.to_backend(msg);
        };
        let flow = stage.on_request(msg, &mut StageContext::new(cx));
        self.after_request_stage(at, flow, cx, emit)
    }

    fn run_responses(
        &mut self,
        at: usize,
        msg: P::Response,
        cx: &mut SessionContext,
        emit: &mut impl Emit<P>,
    ) -> Result<(), CloseReason> {
        let Some(index) = at.checked_sub(1) else {
            return emit.to_client(msg);
        };
        let Some(stage) = self.stages.get_mut(index) else {
            return emit.to_client(msg);
        };
        let flow = stage.on_response(msg, &mut StageContext::new(cx));
        self.after_response_stage(index, flow, cx, emit)
    }

    /// Acts on what request stage `stage` decided.
    fn after_request_stage(
        &mut self,
        stage: usize,
        flow: Flow<P::Request, P::Response>,
        cx: &mut SessionContext,
        emit: &mut impl Emit<P>,
    ) -> Result<(), CloseReason> {
        match flow {
            Flow::Forward(msg) => self.run_requests(stage + 1, msg, cx, emit),
            Flow::Respond(answer) => {
                self.answered_client = true;
                self.enter_responses(stage, answer, cx, emit)
            }
            Flow::Drop => Ok(()),
            Flow::Close(reason) => Err(reason),
            Flow::Defer(decision) => {
                self.requests.defer(stage, decision);
                Ok(())
            }
        }
    }

    /// Acts on what response stage `stage` decided.
    fn after_response_stage(
        &mut self,
        stage: usize,
        flow: Flow<P::Response, P::Request>,
        cx: &mut SessionContext,
        emit: &mut impl Emit<P>,
    ) -> Result<(), CloseReason> {
        match flow {
            Flow::Forward(msg) => self.run_responses(stage, msg, cx, emit),
            Flow::Respond(answer) => {
                self.answered_backend = true;
                self.enter_requests(stage + 1, answer, cx, emit)
            }
            Flow::Drop => Ok(()),
            Flow::Close(reason) => Err(reason),
            Flow::Defer(decision) => {
                self.responses.defer(stage, decision);
                Ok(())
            }
        }
    }
}
