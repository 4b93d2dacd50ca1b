//! Passing a reset on to a peer that is itself blocked writing to us, and closing on a drained
//! client that sent more than was read, over real loopback TCP.

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use tokio::net::TcpStream;

use super::{close_when_sent, reset_when_sent};

/// How the echo peer's connection ended, and how many bytes it read before.
#[derive(Debug)]
struct PeerEnd {
    read: usize,
    reset: bool,
}

/// A peer that writes back everything it reads before it reads more (an echo on blocking
/// sockets): once nobody reads its answers, it stops reading too. Once a write fails it still
/// reads what had arrived before the connection ended, so `read` counts every byte delivered.
fn echo_peer(listener: TcpListener) -> thread::JoinHandle<PeerEnd> {
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept the proxy's connection");
        read_until_the_end(&mut stream, true)
    })
}

/// Reads until the connection ends, writing back what it reads while `echoing` and until a
/// write fails: every byte delivered is counted, and whether the end was a reset.
fn read_until_the_end(stream: &mut std::net::TcpStream, mut echoing: bool) -> PeerEnd {
    let mut buf = vec![0u8; 64 * 1024];
    let mut end = PeerEnd {
        read: 0,
        reset: false,
    };
    let is_reset = |err: &io::Error| {
        matches!(
            err.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
        )
    };
    // At most what the test writes (1 GiB) in reads of at least a byte: bounded.
    for _ in 0..(1usize << 30) {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                end.read += n;
                if echoing && let Err(err) = stream.write_all(&buf[..n]) {
                    end.reset |= is_reset(&err);
                    echoing = false;
                }
            }
            Err(err) => {
                end.reset |= is_reset(&err);
                break;
            }
        }
    }
    end
}

#[tokio::test]
async fn a_peer_blocked_writing_to_us_still_gets_every_byte_then_the_reset() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    let peer = echo_peer(listener);
    let stream = TcpStream::connect(addr).await.expect("connect to the peer");
    // Written without reading the answers: they fill our receive buffer and the peer's send
    // buffer, the peer blocks writing and stops reading, and our send buffer fills in turn.
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0usize;
    for _ in 0..16 * 1024 {
        match stream.try_write(&chunk) {
            Ok(n) => sent += n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                let writable =
                    tokio::time::timeout(Duration::from_millis(300), stream.writable()).await;
                if writable.is_err() {
                    break;
                }
            }
            Err(err) => panic!("writing to the echo peer: {err}"),
        }
    }
    assert!(sent > 0, "nothing could be written");
    // The bound is far longer than the test's own: the wait must end because the peer took
    // the bytes, not because the bound ran out.
    let passed_on = tokio::time::timeout(
        Duration::from_secs(30),
        reset_when_sent(stream, Duration::from_secs(600)),
    )
    .await;
    assert!(
        passed_on.is_ok(),
        "the reset waited on a peer that could not read until it was read from"
    );
    let end = tokio::task::spawn_blocking(move || peer.join())
        .await
        .expect("join the peer's thread")
        .expect("the peer's thread");
    assert_eq!(
        end.read, sent,
        "every byte written reached the peer: {end:?}"
    );
    assert!(end.reset, "the peer saw a reset, not a close: {end:?}");
}

/// A client the drain left with requests unread: it sends them, waits (its answers pile up
/// unsent on our side), then reads until its connection ends.
fn pipelining_client(listener: TcpListener, unread: usize) -> thread::JoinHandle<PeerEnd> {
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept the proxy's connection");
        stream
            .write_all(&vec![b'r'; unread])
            .expect("send requests the proxy will not read");
        thread::sleep(Duration::from_millis(500));
        read_until_the_end(&mut stream, false)
    })
}

#[tokio::test]
async fn a_drained_client_that_sent_more_gets_every_answer_then_a_clean_close() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    let unread = 16 * 1024;
    let client = pipelining_client(listener, unread);
    let stream = TcpStream::connect(addr)
        .await
        .expect("connect to the client");
    // Its requests have arrived, and stay unread.
    tokio::time::timeout(Duration::from_secs(30), stream.readable())
        .await
        .expect("the client's requests arrive")
        .expect("readable");
    // Answers written until the kernel holds no more: the client is not reading yet.
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0usize;
    for _ in 0..16 * 1024 {
        match stream.try_write(&chunk) {
            Ok(n) => sent += n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) => panic!("writing to the client: {err}"),
        }
    }
    assert!(sent > 0, "nothing could be written");
    let closed = tokio::time::timeout(
        Duration::from_secs(30),
        close_when_sent(stream, Duration::from_secs(600)),
    )
    .await;
    assert!(closed.is_ok(), "the close waited past the client's reading");
    let end = tokio::task::spawn_blocking(move || client.join())
        .await
        .expect("join the client's thread")
        .expect("the client's thread");
    assert_eq!(end.read, sent, "every answer reached the client: {end:?}");
    assert!(!end.reset, "the client saw a reset, not a close: {end:?}");
}
