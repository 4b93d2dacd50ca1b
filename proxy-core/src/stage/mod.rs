//! Stages: the pipeline a session's messages cross, in order, in both directions.
//!
//! A request from the client passes stages `0..n` (`on_request`), then goes to the backend; a
//! response from the backend passes stages `n..0` (`on_response`), then goes to the client. Each
//! stage decides a [`Flow`]: pass the message on (possibly changed), answer it itself, drop it,
//! close the session, or defer the decision to a future. While a stage defers, later messages in
//! that direction wait and reads pause, so order always holds.
//!
//! Stages are generic over a [`Protocol`]: raw TCP moves byte chunks ([`RawTcp`](crate::codec::RawTcp)),
//! `proxy-kafka` moves framed requests and responses. They are built per session by factories
//! ([`NewStage`]) that a [`StageRegistry`] creates from configuration.

mod chain;
mod factory;
mod options;
pub mod throttle;

#[cfg(test)]
mod chain_tests;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use smallvec::SmallVec;

pub use self::chain::{Emit, StageChain};
pub use self::factory::{BuildStage, NewStage, StageConfigError, StageRegistry, raw_tcp_registry};
pub use self::options::StageOptions;
use crate::close::CloseReason;
pub use crate::codec::Protocol;
use crate::context::SessionContext;
use crate::gate::Direction;

/// A session's stages, in request order. Two fit inline: a Kafka session's SASL and
/// address-rewrite stages cost no allocation of their own.
pub type Stages<P> = SmallVec<[Box<dyn Stage<P>>; 2]>;

/// A decision deferred to a future: the session keeps order and pauses reads until it resolves.
pub type Deferred<M, R> = Pin<Box<dyn Future<Output = Flow<M, R>> + Send>>;

/// What a stage does with a message of type `M` travelling one way; `R` is the type travelling
/// the other way, used to answer.
///
/// A deferred message keeps its place: what enters the same direction after it waits until
/// the future resolves, then moves on in order (and the driver pauses reads meanwhile).
///
/// ```
/// use std::task::{Context, Waker};
/// use bytes::Bytes;
/// use proxy_core::codec::RawTcp;
/// use proxy_core::stage::{Flow, Stage, StageChain, StageContext};
/// # use proxy_core::{CloseReason, SessionContext, route::Prerequisites, stage::Emit};
/// # #[derive(Default)]
/// # struct Out { backend: Vec<Bytes> }
/// # impl Emit<RawTcp> for Out {
/// #     fn to_backend(&mut self, msg: Bytes) -> Result<(), CloseReason> {
/// #         self.backend.push(msg);
/// #         Ok(())
/// #     }
/// #     fn to_client(&mut self, _: Bytes) -> Result<(), CloseReason> { Ok(()) }
/// # }
/// # let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
/// # let mut cx = SessionContext::new("doc".into(), addr, addr, Prerequisites::TCP, Default::default());
///
/// /// Looks something up before letting a `slow` chunk pass.
/// struct Lookup;
///
/// impl Stage<RawTcp> for Lookup {
///     fn kind(&self) -> &'static str {
///         "lookup"
///     }
///
///     fn on_request(&mut self, msg: Bytes, _cx: &mut StageContext<'_>) -> Flow<Bytes, Bytes> {
///         if !msg.starts_with(b"slow") {
///             return Flow::Forward(msg);
///         }
///         // The future owns what it needs: it outlives this call.
///         Flow::Defer(Box::pin(async move {
///             // ... await a lookup, a permit, a timer ...
///             Flow::Forward(msg)
///         }))
///     }
/// }
///
/// let mut chain = StageChain::<RawTcp>::new(vec![Box::new(Lookup)]);
/// let mut out = Out::default(); // collects what reaches the backend
/// chain.on_request(Bytes::from_static(b"slow 1"), &mut cx, &mut out)?;
/// chain.on_request(Bytes::from_static(b"fast 2"), &mut cx, &mut out)?;
/// // `fast 2` waits behind the deferred `slow 1`.
/// assert!(out.backend.is_empty());
///
/// // The driver polls deferred decisions as part of its loop.
/// let mut task = Context::from_waker(Waker::noop());
/// assert!(chain.poll_deferred(&mut task, &mut cx, &mut out).is_ready());
/// assert_eq!(out.backend, ["slow 1", "fast 2"]);
/// # Ok::<(), CloseReason>(())
/// ```
pub enum Flow<M, R> {
    /// Pass the message (possibly changed) to the next stage.
    Forward(M),
    /// Answer it: the answer travels back toward the message's sender, through the stages
    /// between this one and the sender.
    Respond(R),
    /// Swallow it.
    Drop,
    /// End the session.
    Close(CloseReason),
    /// Decide later; later messages in this direction wait until the future resolves.
    Defer(Deferred<M, R>),
}

impl<M, R> fmt::Debug for Flow<M, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Forward(_) => f.write_str("Forward"),
            Self::Respond(_) => f.write_str("Respond"),
            Self::Drop => f.write_str("Drop"),
            Self::Close(reason) => f.debug_tuple("Close").field(reason).finish(),
            Self::Defer(_) => f.write_str("Defer"),
        }
    }
}

/// What a stage may see and change of its session while handling a message.
#[derive(Debug)]
pub struct StageContext<'a> {
    session: &'a mut SessionContext,
}

impl<'a> StageContext<'a> {
    /// A stage's view of `session`: the chain makes one per call; tests of a stage make their
    /// own.
    pub fn new(session: &'a mut SessionContext) -> Self {
        Self { session }
    }

    /// The session's context.
    pub fn session(&self) -> &SessionContext {
        self.session
    }

    /// The session's context, for stages that learn something (a principal, say).
    pub fn session_mut(&mut self) -> &mut SessionContext {
        self.session
    }
}

/// One stage of one session's pipeline. Both hooks pass messages on by default.
///
/// A stage is made per session (by a [`NewStage`] factory), so it may keep per-session state
/// in `&mut self`. To test one, call its hooks directly with a [`StageContext`] of your own:
///
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use proxy_core::codec::RawTcp;
/// use proxy_core::route::Prerequisites;
/// use proxy_core::stage::{Flow, Stage, StageContext};
/// use proxy_core::SessionContext;
///
/// /// Answers `ping` itself; everything else goes on to the backend.
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
/// let addr = "127.0.0.1:1".parse()?;
/// let mut cx = SessionContext::new("doc".into(), addr, addr, Prerequisites::TCP, Arc::default());
/// let mut stage = Pong;
/// let flow = stage.on_request(Bytes::from_static(b"ping"), &mut StageContext::new(&mut cx));
/// assert!(matches!(flow, Flow::Respond(answer) if answer == "pong"));
/// let flow = stage.on_request(Bytes::from_static(b"hi"), &mut StageContext::new(&mut cx));
/// assert!(matches!(flow, Flow::Forward(msg) if msg == "hi"));
/// // Responses pass by default.
/// let flow = stage.on_response(Bytes::from_static(b"hello"), &mut StageContext::new(&mut cx));
/// assert!(matches!(flow, Flow::Forward(_)));
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub trait Stage<P: Protocol>: Send {
    /// The stage's kind, as configured; used in logs and close reasons.
    fn kind(&self) -> &'static str;

    /// A request on its way from the client to the backend.
    fn on_request(
        &mut self,
        msg: P::Request,
        _cx: &mut StageContext<'_>,
    ) -> Flow<P::Request, P::Response> {
        Flow::Forward(msg)
    }

    /// A response on its way from the backend to the client.
    fn on_response(
        &mut self,
        msg: P::Response,
        _cx: &mut StageContext<'_>,
    ) -> Flow<P::Response, P::Request> {
        Flow::Forward(msg)
    }

    /// Forwarding starts: the session is routed, and authenticated as far as it will be
    /// before its first message. A stage that learns something of the session from what is
    /// known by then (a tenant from the principal) records it here, so that everything the
    /// session reports from now on carries it. Nothing by default.
    fn on_start(&mut self, cx: &mut StageContext<'_>) {
        let _ = cx;
    }

    /// Whether this stage must see, as one whole message, the message travelling `direction`
    /// whose first bytes told `head`. A message larger than a read that no stage of the chain
    /// needs is streamed: its bytes go from one peer to the other as they arrive, no stage sees
    /// it, and the session never holds it whole. By default a stage sees every message; one
    /// that acts only on some kinds says so here, and is asked again for every such message
    /// (so the answer may follow the session's state, `cx`).
    fn needs(&self, direction: Direction, head: &P::Head, cx: &SessionContext) -> bool {
        let _ = (direction, head, cx);
        true
    }
}
