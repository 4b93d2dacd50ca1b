//! A raw TCP proxy built from `proxy-core` alone, with a stage of its own.
//!
//! ```text
//! cargo run -p proxy-core --example tcp_proxy -- --listen 127.0.0.1:9000 --backend 127.0.0.1:9001
//! cargo run -p proxy-core --example tcp_proxy -- --self-test
//! ```
//!
//! The `Guard` stage answers `FLUSHALL` itself (the backend never sees it), ends the session on
//! `SHUTDOWN`, and masks the word `secret` in what the backend sends back. A raw TCP stage sees
//! byte chunks exactly as they were read, so a word split across two reads goes unnoticed: a
//! real line protocol would cut lines in its own `proxy_core::codec::Codec`.
#![expect(clippy::print_stdout, reason = "an example reports to its user")]

use std::error::Error;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proxy_core::CloseReason;
use proxy_core::close::ConnectFailure;
use proxy_core::codec::{RawCodec, RawTcp};
use proxy_core::context::{LiveResources, Resource, SessionContext};
use proxy_core::forward::{ForwardLimits, forward};
use proxy_core::route::Prerequisites;
use proxy_core::stage::{Flow, Stage, StageChain, StageContext};
use proxy_core::stop::StopSignal;
use proxy_core::upstream::BackendTarget;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_util::task::TaskTracker;

type BoxError = Box<dyn Error + Send + Sync>;

/// Every wait in this example is bounded by this.
const WAIT: Duration = Duration::from_secs(5);
const SECRET: &[u8] = b"secret";
const REFUSAL: &[u8] = b"-ERR FLUSHALL is refused by the proxy\n";

// === impl Guard ===

/// The example's stage. It keeps no state, so one value per session costs nothing.
#[derive(Debug)]
struct Guard;

impl Stage<RawTcp> for Guard {
    fn kind(&self) -> &'static str {
        "guard"
    }

    fn on_request(&mut self, msg: Bytes, _cx: &mut StageContext<'_>) -> Flow<Bytes, Bytes> {
        if find(&msg, b"SHUTDOWN").is_some() {
            // `forward` returns this reason and drops both connections.
            return Flow::Close(CloseReason::Stage {
                stage: "guard",
                reason: "the client asked for SHUTDOWN".into(),
            });
        }
        if find(&msg, b"FLUSHALL").is_some() {
            // The answer travels back to the client through the stages before this one; the
            // request itself is never written to the backend.
            return Flow::Respond(Bytes::from_static(REFUSAL));
        }
        // Passing the chunk on moves it: the bytes read are the bytes written, no copy.
        Flow::Forward(msg)
    }

    fn on_response(&mut self, msg: Bytes, _cx: &mut StageContext<'_>) -> Flow<Bytes, Bytes> {
        let Some(mut at) = find(&msg, SECRET) else {
            return Flow::Forward(msg);
        };
        // Only a chunk that changes is copied.
        let mut masked = msg.to_vec();
        while let Some(found) = find(&masked[at..], SECRET) {
            masked[at + found..at + found + SECRET.len()].fill(b'*');
            at += found + SECRET.len();
        }
        Flow::Forward(Bytes::from(masked))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// === one session ===

/// Connects to the backend, builds the session's context and stage chain, and forwards until
/// the session ends. `shutdown` ends it early.
async fn serve(
    client: TcpStream,
    peer: SocketAddr,
    backend_addr: SocketAddr,
    live: Arc<LiveResources>,
    shutdown: StopSignal,
) -> io::Result<CloseReason> {
    // The context owns everything known about the connection; `live` counts contexts alive,
    // so a leak is visible (the self-test checks it).
    let local = client.local_addr()?;
    let mut cx = SessionContext::new("tcp_proxy".into(), peer, local, Prerequisites::TCP, live);
    let backend = match timeout(WAIT, TcpStream::connect(backend_addr)).await {
        Ok(Ok(backend)) => backend,
        Ok(Err(err)) => return Ok(unavailable(ConnectFailure::Io(err.kind()))),
        Err(_) => return Ok(unavailable(ConnectFailure::TimedOut)),
    };
    cx.set_backend(BackendTarget::Addr(backend_addr));
    // One chain per session: a stage may keep per-session state.
    let mut chain = StageChain::<RawTcp>::new(vec![Box::new(Guard)]);
    // Raw TCP has no request boundary to drain at: the accept loop closes sessions at once
    // (`force_close`) rather than asking them to drain.
    let reason = forward(
        client,
        backend,
        RawCodec,
        &mut chain,
        &mut cx,
        ForwardLimits::default(),
        &shutdown,
    )
    .await;
    let stats = cx.stats().snapshot();
    eprintln!(
        "session {} closed: {reason} ({} bytes from the client, {} from the backend)",
        cx.id(),
        stats.bytes_from_client,
        stats.bytes_from_backend
    );
    Ok(reason)
}

fn unavailable(last: ConnectFailure) -> CloseReason {
    CloseReason::BackendUnavailable { attempts: 1, last }
}

// === the accept loop ===

async fn run(listen: SocketAddr, backend: SocketAddr) -> Result<(), BoxError> {
    let listener = TcpListener::bind(listen).await?;
    eprintln!(
        "proxying {} to {backend}; Ctrl-C stops",
        listener.local_addr()?
    );
    let shutdown = StopSignal::new();
    // Every session task is tracked, so none outlives the proxy.
    let sessions = TaskTracker::new();
    let live = Arc::new(LiveResources::default());
    let mut ctrl_c = pin!(tokio::signal::ctrl_c());
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    let session = serve(client, peer, backend, live.clone(), shutdown.clone());
                    sessions.spawn(async move {
                        if let Err(err) = session.await {
                            eprintln!("session from {peer} failed: {err}");
                        }
                    });
                }
                // One failed accept (out of file descriptors, say) never ends the loop.
                Err(err) => {
                    eprintln!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    shutdown.force_close();
    sessions.close();
    timeout(WAIT, sessions.wait()).await?;
    Ok(())
}

// === the self-test ===

async fn self_test() -> Result<(), BoxError> {
    // An echo server stands in for the backend: anything it receives comes back.
    let backend = TcpListener::bind("127.0.0.1:0").await?;
    let backend_addr = backend.local_addr()?;
    let echo = tokio::spawn(async move {
        let (mut conn, _) = backend.accept().await?;
        let (mut from, mut to) = conn.split();
        tokio::io::copy(&mut from, &mut to).await
    });
    let proxy = TcpListener::bind("127.0.0.1:0").await?;
    let proxy_addr = proxy.local_addr()?;
    let live = Arc::new(LiveResources::default());
    let session = tokio::spawn({
        let live = live.clone();
        async move {
            let (client, peer) = proxy.accept().await?;
            serve(client, peer, backend_addr, live, StopSignal::new()).await
        }
    });

    let mut client = timeout(WAIT, TcpStream::connect(proxy_addr)).await??;
    exchange(&mut client, b"hello secret\n", b"hello ******\n").await?;
    exchange(&mut client, b"FLUSHALL\n", REFUSAL).await?;
    // Had the backend seen FLUSHALL, its echo would arrive before this one.
    exchange(&mut client, b"ping\n", b"ping\n").await?;
    client.write_all(b"SHUTDOWN\n").await?;
    let reason = timeout(WAIT, session).await???;
    if !matches!(reason, CloseReason::Stage { stage: "guard", .. }) {
        return Err(
            format!("expected the guard to close the session, it ended with: {reason}").into(),
        );
    }
    // The proxy dropped both connections: the echo server sees its client go.
    timeout(WAIT, echo).await???;
    if live.live(Resource::Session) != 0 {
        return Err("a session context outlived its session".into());
    }
    Ok(())
}

/// Sends `send` and checks that exactly `expect` comes back.
async fn exchange(client: &mut TcpStream, send: &[u8], expect: &[u8]) -> Result<(), BoxError> {
    client.write_all(send).await?;
    let mut got = vec![0; expect.len()];
    timeout(WAIT, client.read_exact(&mut got)).await??;
    if got != expect {
        let (send, expect, got) = (ascii(send), ascii(expect), ascii(&got));
        return Err(format!("sent {send:?}: expected {expect:?}, got {got:?}").into());
    }
    Ok(())
}

fn ascii(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// === main ===

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--self-test"] => self_test().await.map(|()| println!("self-test passed")),
        ["--listen", listen, "--backend", backend] => match (listen.parse(), backend.parse()) {
            (Ok(listen), Ok(backend)) => run(listen, backend).await,
            _ => Err("--listen and --backend each take an IP address and a port".into()),
        },
        _ => {
            eprintln!("usage: tcp_proxy --listen ADDR:PORT --backend ADDR:PORT | --self-test");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tcp_proxy: {err}");
            ExitCode::FAILURE
        }
    }
}
