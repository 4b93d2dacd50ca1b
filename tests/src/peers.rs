//! Backends a proxy forwards to in tests: an echo server, a server that answers once the client
//! has finished sending, a firehose that never stops sending, a server that answers and resets,
//! a recorder of what arrived and how it ended, and a port nobody listens on.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A server running on loopback until dropped.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl Server {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves each accepted connection with `handle`, until dropped.
    pub(crate) async fn spawn<F, Fut>(handle: F) -> Self
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a test server");
        let addr = listener.local_addr().expect("test server address");
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    () = token.cancelled() => break,
                    accepted = listener.accept() => {
                        if let Ok((stream, _)) = accepted {
                            connections.spawn(handle(stream));
                        }
                    }
                }
            }
            connections.abort_all();
        });
        Self { addr, stop }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Echoes every byte back; after the client's EOF, finishes echoing and sends EOF too.
pub async fn echo() -> Server {
    Server::spawn(|mut stream| async move {
        let (mut read, mut write) = stream.split();
        if tokio::io::copy(&mut read, &mut write).await.is_ok() {
            let _ = write.shutdown().await;
        }
    })
    .await
}

/// Reads until the client's EOF, then answers with `reply` and closes: the half-close case.
pub async fn reply_after_eof(reply: Vec<u8>) -> Server {
    let reply = Arc::new(reply);
    Server::spawn(move |mut stream| {
        let reply = reply.clone();
        async move {
            let mut request = Vec::new();
            if stream.read_to_end(&mut request).await.is_ok() {
                let _ = stream.write_all(&reply).await;
                let _ = stream.shutdown().await;
            }
        }
    })
    .await
}

/// Sends `chunk` over and over and never reads; counts the bytes the kernel accepted.
pub async fn firehose(chunk: Vec<u8>, sent: Arc<AtomicU64>) -> Server {
    let chunk = Arc::new(chunk);
    Server::spawn(move |mut stream| {
        let (chunk, sent) = (chunk.clone(), sent.clone());
        async move {
            while stream.write_all(&chunk).await.is_ok() {
                sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }
    })
    .await
}

/// Waits for the client's first bytes, answers with `answer` and closes with the request unread,
/// so the kernel resets the connection right after the answer: a server that rejects a request
/// and hangs up.
pub async fn answer_then_reset(answer: Vec<u8>) -> Server {
    let answer = Arc::new(answer);
    Server::spawn(move |mut stream| {
        let answer = answer.clone();
        async move {
            let mut first = [0; 1];
            if stream.peek(&mut first).await.is_ok() {
                let _ = stream.write_all(&answer).await;
            }
            // Dropped with the request unread: the kernel sends RST, not FIN.
        }
    })
    .await
}

/// What a [`recorder`] received on one connection, and how the connection ended: `None` for
/// an orderly EOF, the error's kind otherwise (a reset).
pub type Recorded = (Vec<u8>, Option<io::ErrorKind>);

/// Reads each connection to its end and reports what arrived and how it ended.
pub async fn recorder(reports: mpsc::UnboundedSender<Recorded>) -> Server {
    Server::spawn(move |mut stream| {
        let reports = reports.clone();
        async move {
            let mut got = Vec::new();
            let end = stream.read_to_end(&mut got).await.err().map(|e| e.kind());
            let _ = reports.send((got, end));
        }
    })
    .await
}

/// A loopback address nothing listens on: connecting to it is refused.
pub async fn refused_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a probe port");
    listener.local_addr().expect("probe port address")
    // Dropped here: the port is closed and connections to it are refused.
}

/// Reads a PROXY header (v1 or v2) and answers with the client address it named, as
/// `IP:PORT\n`, or `none\n` for a header without addresses; then echoes what follows.
pub async fn proxy_reporter() -> Server {
    Server::spawn(|mut stream| async move {
        let mut buf = Vec::new();
        let (reply, consumed) = loop {
            let mut chunk = [0u8; 512];
            let Ok(n) = stream.read(&mut chunk).await else {
                return;
            };
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            match ppp::HeaderResult::parse(&buf) {
                ppp::HeaderResult::V1(Ok(h)) => break (v1_source(&h.addresses), h.header.len()),
                ppp::HeaderResult::V2(Ok(h)) => break (v2_source(&h.addresses), h.len()),
                result if ppp::PartialResult::is_incomplete(&result) => {}
                _ => return,
            }
        };
        if stream
            .write_all(format!("{reply}\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
        let rest = buf.split_off(consumed);
        if stream.write_all(&rest).await.is_err() {
            return;
        }
        let (mut read, mut write) = stream.split();
        if tokio::io::copy(&mut read, &mut write).await.is_ok() {
            let _ = write.shutdown().await;
        }
    })
    .await
}

fn v1_source(addresses: &ppp::v1::Addresses) -> String {
    match addresses {
        ppp::v1::Addresses::Tcp4(a) => {
            SocketAddr::from((a.source_address, a.source_port)).to_string()
        }
        ppp::v1::Addresses::Tcp6(a) => {
            SocketAddr::from((a.source_address, a.source_port)).to_string()
        }
        ppp::v1::Addresses::Unknown => "none".into(),
    }
}

fn v2_source(addresses: &ppp::v2::Addresses) -> String {
    match addresses {
        ppp::v2::Addresses::IPv4(a) => {
            SocketAddr::from((a.source_address, a.source_port)).to_string()
        }
        ppp::v2::Addresses::IPv6(a) => {
            SocketAddr::from((a.source_address, a.source_port)).to_string()
        }
        _ => "none".into(),
    }
}
