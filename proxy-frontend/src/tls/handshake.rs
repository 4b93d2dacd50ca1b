//! The `TlsHandshaking` phase: terminating TLS, or peeking at the ClientHello for passthrough.
//!
//! One deadline covers the whole phase (reading the ClientHello and completing the handshake).
//! A plaintext client, a failed handshake and a stalled one all end the session with
//! `CloseReason::Tls { side: Client, .. }` naming what happened; nothing here panics.

use std::io;

use bytes::{Bytes, BytesMut};
use proxy_core::close::CloseReason;
use proxy_core::context::{AuthMechanism, AuthState, PeerCertificates, SessionContext, TlsFacts};
use proxy_core::gate::Side;
use proxy_core::io::PrefixedIo;
use proxy_core::tls::{ClientHelloError, peek_client_hello};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::debug;

use super::TlsTermination;
use super::principal::principal;

fn failed(detail: impl Into<std::borrow::Cow<'static, str>>) -> CloseReason {
    CloseReason::Tls {
        side: Side::Client,
        detail: detail.into(),
    }
}

/// The rustls reason inside an I/O error, or the error itself.
fn describe(err: &io::Error) -> String {
    match err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => tls.to_string(),
        None => err.to_string(),
    }
}

/// Terminates TLS on `io`, recording SNI, ALPN, version, cipher and the client's principal in
/// `cx`; the certificate chain is released once the principal is derived.
pub(crate) async fn terminate(
    io: PrefixedIo<TcpStream>,
    tls: &TlsTermination,
    deadline: Instant,
    cx: &mut SessionContext,
) -> Result<TlsStream<PrefixedIo<TcpStream>>, CloseReason> {
    let acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io);
    let start = match timeout_at(deadline, acceptor).await {
        Err(_) => return Err(failed("handshake timed out")),
        Ok(Err(err)) => return Err(failed(describe(&err))),
        Ok(Ok(start)) => start,
    };
    let sni: Option<Box<str>> = start.client_hello().server_name().map(Box::from);
    cx.set_sni(sni.clone());
    let stream = match timeout_at(deadline, start.into_stream(tls.server.current())).await {
        Err(_) => return Err(failed("handshake timed out")),
        Ok(Err(err)) => return Err(failed(describe(&err))),
        Ok(Ok(stream)) => stream,
    };
    let (_, connection) = stream.get_ref();
    let mut facts = TlsFacts {
        sni,
        alpn: connection.alpn_protocol().map(Box::from),
        version: connection.protocol_version().map(|v| match v {
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
            other => format!("{other:?}").into(),
        }),
        cipher: connection
            .negotiated_cipher_suite()
            .map(|suite| format!("{:?}", suite.suite()).into()),
        principal: None,
    };
    if let Some(chain) = connection.peer_certificates() {
        let chain: Vec<Bytes> = chain
            .iter()
            .map(|c| Bytes::copy_from_slice(c.as_ref()))
            .collect();
        let leaf_principal = chain
            .first()
            .and_then(|leaf| principal(leaf, tls.principal));
        cx.set_peer_certificates(PeerCertificates(chain));
        if let Some(name) = &leaf_principal {
            cx.set_auth(AuthState::Authenticated {
                principal: name.as_str().into(),
                mechanism: AuthMechanism::Mtls,
            });
        }
        facts.principal = leaf_principal.map(Box::from);
        cx.release_peer_certificates();
    }
    debug!(tls.sni = ?facts.sni, tls.version = ?facts.version, tls.principal = ?facts.principal, "tls established");
    cx.set_tls(facts);
    Ok(stream)
}

/// Reads until `buf` (bytes already read) holds a whole ClientHello, records its SNI, and
/// returns every byte read so the handshake reaches the backend untouched.
pub(crate) async fn peek_sni(
    stream: &mut TcpStream,
    mut buf: BytesMut,
    deadline: Instant,
    cx: &mut SessionContext,
) -> Result<BytesMut, CloseReason> {
    loop {
        match peek_client_hello(&buf) {
            Ok(Some(hello)) => {
                debug!(tls.sni = ?hello.sni, "client hello for passthrough");
                cx.set_sni(hello.sni.map(Box::from));
                return Ok(buf);
            }
            Ok(None) => {}
            Err(ClientHelloError::NotTls) => return Err(failed("not a TLS ClientHello")),
            Err(err) => return Err(failed(err.to_string())),
        }
        buf.reserve(4096);
        match timeout_at(deadline, stream.read_buf(&mut buf)).await {
            Err(_) => return Err(failed("ClientHello not received before the deadline")),
            Ok(Ok(0)) => return Err(failed("connection closed before a whole ClientHello")),
            Ok(Ok(_)) => {}
            Ok(Err(err)) => return Err(CloseReason::ClientIo(err.kind())),
        }
    }
}
