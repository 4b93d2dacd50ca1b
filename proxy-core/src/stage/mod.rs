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

pub use self::chain::{Emit, StageChain};
pub use self::factory::{BuildStage, NewStage, StageConfigError, StageRegistry, raw_tcp_registry};
pub use self::options::StageOptions;
use crate::close::CloseReason;
use crate::context::SessionContext;

/// The message types one protocol moves through its stages.
pub trait Protocol: Send + 'static {
    /// What the client sends.
    type Request: Send + 'static;
    /// What the backend sends.
    type Response: Send + 'static;
}

/// A decision deferred to a future: the session keeps order and pauses reads until it resolves.
pub type Deferred<M, R> = Pin<Box<dyn Future<Output = Flow<M, R>> + Send>>;

/// What a stage does with a message of type `M` travelling one way; `R` is the type travelling
/// the other way, used to answer.
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
}
