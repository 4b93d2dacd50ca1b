//! The handshake phases the machine hands out first: the PROXY header, then TLS (terminated
//! here, or its ClientHello read for passthrough); then whichever of `Negotiating` and
//! `Routing` the machine says comes next.

use bytes::BytesMut;
use proxy_core::close::CloseReason;
use proxy_core::context::{AuthMechanism, AuthState};
use proxy_core::io::{IntoTcp, PrefixedIo};
use proxy_core::route::Router;
use proxy_core::state::{FrontendEvent, FrontendState};
use proxy_core::upstream::Connect;
use proxy_kafka::sasl::ListenerSasl;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::{Span, debug, field};

use super::{Driver, ForwardingPhase, proxy_header};
use crate::tls::{self, ListenerTls};

impl<R: Router, C: Connect> Driver<'_, R, C> {
    /// Every phase from the PROXY header to routing; returns the forwarding phase, or why the
    /// session ended before it.
    pub(super) async fn phases(
        &mut self,
        mut client: TcpStream,
    ) -> Result<ForwardingPhase<'_>, CloseReason> {
        self.step(FrontendEvent::Begin)?;
        let mut early = BytesMut::new();
        if let FrontendState::AwaitingProxyHeader { deadline } = *self.machine.state() {
            let policy = &self.served.spec.proxy_protocol;
            let read = proxy_header::read(&mut client, self.cx, policy, deadline);
            let result = tokio::select! {
                () = self.served.stop.force_close.cancelled() => Err(CloseReason::Shutdown),
                result = read => result,
            };
            self.registration.set_client_addr(self.cx.client_addr());
            Span::current().record("client.addr", field::display(self.cx.client_addr()));
            early = result?;
            self.step(FrontendEvent::PhaseDone)?;
        } else {
            Span::current().record("client.addr", field::display(self.cx.client_addr()));
        }
        // The source is the client a trusted PROXY header named, else the peer.
        self.source = self
            .served
            .spec
            .admission
            .admit_source(self.cx.client_addr().ip(), Instant::now())?
            .map(Box::new);
        let spec = &self.served.spec;
        let (FrontendState::TlsHandshaking { deadline }, Some(tls)) =
            (self.machine.state(), &spec.tls)
        else {
            return self
                .after_handshakes(PrefixedIo::new(early.freeze(), client))
                .await;
        };
        let deadline = *deadline;
        match tls {
            ListenerTls::Passthrough { .. } => {
                let peek = tls::peek_sni(&mut client, early, deadline, self.cx);
                let hello = tokio::select! {
                    () = self.served.stop.force_close.cancelled() => Err(CloseReason::Shutdown),
                    hello = peek => hello,
                }?;
                self.step(FrontendEvent::PhaseDone)?;
                self.after_handshakes(PrefixedIo::new(hello.freeze(), client))
                    .await
            }
            ListenerTls::Terminate(termination) => {
                let io = PrefixedIo::new(early.freeze(), client);
                // Boxed: the handshake's state is large (about 3 KiB), and held inline it would
                // be allocated for every session's handshakes, plain ones included.
                let handshake = Box::pin(tls::terminate(io, termination, deadline, self.cx));
                let stream = tokio::select! {
                    () = self.served.stop.force_close.cancelled() => Err(CloseReason::Shutdown),
                    stream = handshake => stream,
                }?;
                if self.client_certificate_authenticates() {
                    self.step(FrontendEvent::Authenticated)?;
                } else {
                    self.step(FrontendEvent::PhaseDone)?;
                }
                // Boxed: a TLS stream is large, and held inline it would make every plain
                // session's handshakes as big as a TLS one's.
                Box::pin(self.after_handshakes(stream)).await
            }
        }
    }

    /// Whether the client's certificate stands in for SASL (`accept_mtls_principal`); if so,
    /// the session is authenticated by it.
    fn client_certificate_authenticates(&mut self) -> bool {
        let Some(ListenerSasl::Terminate(terminate)) = self
            .served
            .spec
            .kafka()
            .and_then(|kafka| kafka.sasl.as_ref())
        else {
            return false;
        };
        let principal = terminate
            .accept_mtls_principal
            .then(|| self.cx.tls().and_then(|tls| tls.principal.clone()))
            .flatten();
        let Some(principal) = principal else {
            return false;
        };
        debug!(auth.principal = %principal, "authenticated by the client certificate");
        self.cx.set_auth(AuthState::Authenticated {
            principal,
            mechanism: AuthMechanism::Mtls,
        });
        self.authenticated_at = Some(Instant::now());
        true
    }

    /// Whatever the machine says follows the handshakes: the negotiation, or routing.
    async fn after_handshakes<Io>(&mut self, client: Io) -> Result<ForwardingPhase<'_>, CloseReason>
    where
        Io: AsyncRead + AsyncWrite + IntoTcp + Unpin + Send + 'static,
    {
        if matches!(self.machine.state(), FrontendState::Negotiating { .. }) {
            // Boxed: only SASL-terminating sessions carry the negotiation's state.
            return Box::pin(self.negotiate_then_route(client)).await;
        }
        self.route_and_forward(client).await
    }
}
