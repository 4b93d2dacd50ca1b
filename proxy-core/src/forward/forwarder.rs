//! A session's forwarding in two runs, for a driver that walks a state machine through
//! `Forwarding` and `Draining`: [`Forwarder::run`] stops when the proxy starts draining, and
//! [`Forwarder::drain`] finishes within the `Draining` state's deadline.

use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep, sleep, sleep_until};

use super::peer::Peer;
use super::{ForwardLimits, Forwarding, FrameBudget, PublishedGates};
use crate::close::CloseReason;
use crate::codec::Codec;
use crate::context::SessionContext;
use crate::gate::Side;
use crate::io::{IntoTcp, close_when_sent, reset_when_sent};
use crate::stage::{Protocol, StageChain};
use crate::stop::{StopSignal, StopWait, Stopping};

/// How a run of a [`Forwarder`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forwarded {
    /// The session ended, for this reason.
    Closed(CloseReason),
    /// The proxy started draining; the session goes on with [`Forwarder::drain`].
    DrainRequested,
}

/// One session's forwarding, driven in two runs: [`run`](Self::run) until the session ends or
/// the proxy starts draining, then [`drain`](Self::drain) until the session ends at a request
/// boundary or the drain deadline passes. Nothing is lost between the two: buffers, queues and
/// half-closes carry over.
pub struct Forwarder<K, C, B> {
    session: Forwarding<K, C, B>,
}

pin_project! {
    /// [`Forwarder::run`]'s future. A struct, not an async fn: an async fn would hold each
    /// reference twice (as its argument and in the closure it polls) and each pinned wait
    /// behind a pointer of its own, in every idle session.
    struct Run<'a, K, C, B, P: Protocol> {
        session: &'a mut Forwarding<K, C, B>,
        chain: &'a mut StageChain<P>,
        cx: &'a mut SessionContext,
        #[pin]
        idle: Sleep,
        stop: StopWait<'a>,
    }
}

impl<K, C, B, P> Future for Run<'_, K, C, B, P>
where
    P: Protocol,
    K: Codec<P>,
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    type Output = Forwarded;

    fn poll(self: Pin<&mut Self>, task: &mut Context<'_>) -> Poll<Forwarded> {
        let this = self.project();
        match this.stop.poll(task) {
            Some(Stopping::ForceClose) => {
                return Poll::Ready(Forwarded::Closed(CloseReason::Shutdown));
            }
            Some(Stopping::Drain) => return Poll::Ready(Forwarded::DrainRequested),
            None => {}
        }
        this.session
            .poll(task, this.chain, this.cx, this.idle)
            .map(Forwarded::Closed)
    }
}

impl<K, C, B> fmt::Debug for Forwarder<K, C, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Forwarder")
            .field("draining", &self.session.draining)
            .field("first_eof", &self.session.first_eof)
            .finish_non_exhaustive()
    }
}

impl<K, C, B> Forwarder<K, C, B>
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    /// Forwarding between `client` and `backend`, framed by `codec`, within `limits` (an
    /// `Arc` a listener's sessions share, or a `ForwardLimits` of this session's own).
    pub fn new(client: C, backend: B, codec: K, limits: impl Into<Arc<ForwardLimits>>) -> Self {
        Self {
            session: Forwarding {
                client: Peer::new(client, Side::Client),
                backend: Peer::new(backend, Side::Backend),
                codec,
                limits: limits.into(),
                first_eof: None,
                first_fault: None,
                last_activity: Instant::now(),
                draining: false,
                budget: None,
                frame_started: None,
                client_hold: None,
                published: PublishedGates::open(),
            },
        }
    }

    /// Leaves the last half-close of the session to closing the transports, for each side whose
    /// close sends what a shutdown of its write half would (plain TCP sends a FIN either way;
    /// TLS does not, as its shutdown sends `close_notify` first): one `shutdown(2)` fewer per
    /// connection. The caller closes the transports as soon as forwarding ends (drops the
    /// forwarder, or [`close`](Self::close)s it), or that side waits for its FIN until then.
    pub fn with_fin_on_close(mut self, client: bool, backend: bool) -> Self {
        self.session.client.set_close_sends_fin(client);
        self.session.backend.set_close_sends_fin(backend);
        self
    }

    /// Charges messages larger than one read to `budget` (a listener's, under the process's):
    /// reading a side pauses while its message does not fit.
    pub fn with_frame_budget(mut self, budget: FrameBudget) -> Self {
        self.session.budget = Some(budget);
        self
    }

    /// The client's and the backend's transports, once forwarding has ended.
    pub fn into_parts(self) -> (C, B) {
        let Forwarding {
            client, backend, ..
        } = self.session;
        (client.into_io(), backend.into_io())
    }

    /// Closes both transports once forwarding has ended with `reason`: a peer's reset is passed
    /// on to the other peer as a reset, once the bytes the resetting peer sent before have left
    /// this host (waiting at most the half-close timeout for a peer that does not read). After
    /// a drain the client's connection closes the same way, with a FIN rather than a reset:
    /// what it sent after its last answered request is read and dropped meanwhile. Every other
    /// end closes as usual. [`run`](Self::run) and [`drain`](Self::drain) have written
    /// those bytes before they return the reset's reason.
    pub async fn close(self, reason: &CloseReason)
    where
        C: IntoTcp,
        B: IntoTcp,
    {
        let within = self.session.limits.half_close_timeout;
        let (client, backend) = self.into_parts();
        match reason {
            CloseReason::BackendIo(io::ErrorKind::ConnectionReset) => {
                drop(backend);
                reset_when_sent(client, within).await;
            }
            CloseReason::ClientIo(io::ErrorKind::ConnectionReset) => {
                drop(client);
                reset_when_sent(backend, within).await;
            }
            CloseReason::DrainCompleted => {
                drop(backend);
                close_when_sent(client, within).await;
            }
            _ => {}
        }
    }

    /// Forwards until the session ends, or until `stop` asks it to drain
    /// ([`Forwarded::DrainRequested`]); a forced close ends it at once.
    pub fn run<'a, P>(
        &'a mut self,
        chain: &'a mut StageChain<P>,
        cx: &'a mut SessionContext,
        stop: &'a StopSignal,
    ) -> impl Future<Output = Forwarded> + 'a
    where
        P: Protocol,
        K: Codec<P>,
    {
        let idle = sleep(self.session.limits.idle_timeout);
        Run {
            session: &mut self.session,
            chain,
            cx,
            idle,
            stop: stop.wait(),
        }
    }

    /// Forwards while draining: a protocol with request boundaries stops reading requests at
    /// the next one and ends once every answer is written ([`CloseReason::DrainCompleted`]);
    /// one without (raw TCP) flows on. `deadline` (or a forced close from `stop`) ends the
    /// session at once with [`CloseReason::Shutdown`].
    pub async fn drain<P>(
        &mut self,
        chain: &mut StageChain<P>,
        cx: &mut SessionContext,
        deadline: Option<Instant>,
        stop: &StopSignal,
    ) -> CloseReason
    where
        P: Protocol,
        K: Codec<P>,
    {
        let session = &mut self.session;
        session.draining = true;
        let mut idle = pin!(sleep(session.limits.idle_timeout));
        let mut stop = stop.wait();
        let mut over = pin!(async {
            match deadline {
                Some(deadline) => sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        });
        poll_fn(|task| {
            if stop.poll(task) == Some(Stopping::ForceClose) || over.as_mut().poll(task).is_ready()
            {
                return Poll::Ready(CloseReason::Shutdown);
            }
            session.poll(task, chain, cx, idle.as_mut())
        })
        .await
    }
}
