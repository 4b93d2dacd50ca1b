//! A peer that resets: everything it sent before the reset reaches the other peer, then the
//! reset is passed on (a clean close stays a clean close). Plain TCP through the in-process
//! proxy, and Kafka framing through the forwarder on real sockets.

use std::io::ErrorKind;

use proxy_core::close::CloseReason;
use proxy_core::context::SessionContext;
use proxy_core::forward::{ForwardLimits, Forwarded, Forwarder};
use proxy_core::route::Prerequisites;
use proxy_core::stage::StageChain;
use proxy_core::stop::StopSignal;
use proxy_kafka::{Kafka, KafkaCodec};
use sluice_tests::kafka_wire::frame;
use sluice_tests::proxy::{ProxyOptions, TestProxy};
use sluice_tests::{STEP_TIMEOUT, pattern, peers};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// How many times each race is tried: the loss this guards against showed up 5–6 times in 20.
const TRIES: usize = 20;

/// A client's request and everything it reads back until the end, and how that end came.
/// `read_late` makes the client start reading only after a pause, so the answer is still
/// queued in the proxy when the backend's reset arrives.
async fn request_and_read(
    addr: std::net::SocketAddr,
    request: &[u8],
    read_late: bool,
) -> (Vec<u8>, Option<ErrorKind>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if read_late {
        // A small receive window: the proxy's writes to this client soon wait on it.
        socket.set_recv_buffer_size(4096).unwrap();
    }
    let mut client = socket.connect(addr).await.unwrap();
    client.write_all(request).await.unwrap();
    if read_late {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut got = Vec::new();
    let end = timeout(STEP_TIMEOUT, client.read_to_end(&mut got))
        .await
        .expect("the session ended");
    (got, end.err().map(|e| e.kind()))
}

// A server that answers and hangs up with the request unread (the kernel resets after the
// answer): the client gets the whole answer every time, then the reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_answers_then_resets_gets_its_answer_to_the_client_every_time() {
    // Small enough for the server's kernel to send it all before the reset (a server's unsent
    // bytes die with its reset, proxy or not); more than a client with a small receive window
    // takes at once, so when it reads late much of the answer is still in the proxy when the
    // reset arrives.
    let answer = pattern(60 * 1024, 7);
    let backend = peers::answer_then_reset(answer.clone()).await;
    let mut proxy = TestProxy::start(ProxyOptions::to([backend.addr()])).await;
    for attempt in 0..TRIES {
        let read_late = attempt % 2 == 1;
        let (got, end) = request_and_read(proxy.addr(), b"a request nobody reads", read_late).await;
        assert!(
            got == answer,
            "attempt {attempt}: the client got {} of the answer's {} bytes",
            got.len(),
            answer.len()
        );
        assert_eq!(
            end,
            Some(ErrorKind::ConnectionReset),
            "attempt {attempt}: the reset was not passed on"
        );
        let summary = proxy.next_closed(STEP_TIMEOUT).await.unwrap();
        assert_eq!(
            summary.reason,
            CloseReason::BackendIo(ErrorKind::ConnectionReset)
        );
        assert_eq!(summary.bytes_from_backend, answer.len() as u64);
    }
    assert_eq!(proxy.closes().get("backend_error"), TRIES as u64);
}

// A client that uploads and then resets: the backend gets every byte, then a reset (not an
// orderly close it could mistake for a complete upload).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_uploads_then_resets_gets_its_bytes_and_its_reset_to_the_backend() {
    let (reports, mut recorded) = mpsc::unbounded_channel();
    let backend = peers::recorder(reports).await;
    let mut proxy = TestProxy::start(ProxyOptions::to([backend.addr()])).await;
    let upload = pattern(32 * 1024, 8);
    for attempt in 0..TRIES {
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        client.write_all(&upload).await.unwrap();
        client.set_zero_linger().unwrap();
        drop(client);
        let (got, end) = timeout(STEP_TIMEOUT, recorded.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(
            got == upload,
            "attempt {attempt}: the backend got {} of the upload's {} bytes",
            got.len(),
            upload.len()
        );
        assert_eq!(
            end,
            Some(ErrorKind::ConnectionReset),
            "attempt {attempt}: the reset was not passed on"
        );
        let summary = proxy.next_closed(STEP_TIMEOUT).await.unwrap();
        assert_eq!(
            summary.reason,
            CloseReason::ClientIo(ErrorKind::ConnectionReset)
        );
    }
    // An orderly close stays one: a client that half-closes gets an orderly end.
    let echo = peers::echo().await;
    let mut proxy = TestProxy::start(ProxyOptions::to([echo.addr()])).await;
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    client.write_all(b"bye").await.unwrap();
    client.shutdown().await.unwrap();
    let mut got = Vec::new();
    timeout(STEP_TIMEOUT, client.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"bye");
    let summary = proxy.next_closed(STEP_TIMEOUT).await.unwrap();
    assert_eq!(summary.reason, CloseReason::ClientClosed);
}

/// A Kafka response frame: length, correlation id (response header v0), `body`.
fn response(correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut out = ((4 + body.len()) as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&correlation_id.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A Kafka broker that answers the first request, starts answering the second (half a frame)
/// and resets with the rest of the connection unread: a broker killed mid-response.
async fn broker_that_resets_mid_response(listener: TcpListener, answer: Vec<u8>) {
    let (mut broker, _) = listener.accept().await.unwrap();
    let mut len = [0; 4];
    broker.read_exact(&mut len).await.unwrap();
    let mut request = vec![0; i32::from_be_bytes(len) as usize];
    broker.read_exact(&mut request).await.unwrap();
    let correlation_id = i32::from_be_bytes(request[4..8].try_into().unwrap());
    broker
        .write_all(&response(correlation_id, &answer))
        .await
        .unwrap();
    // Wait for the second request, then send the start of its answer only.
    let mut first = [0; 1];
    broker.peek(&mut first).await.unwrap();
    let partial = response(correlation_id + 1, &answer);
    broker
        .write_all(&partial[..partial.len() / 2])
        .await
        .unwrap();
    // Dropped with the second request unread: a reset.
}

// A Kafka broker that resets in the middle of a response: every response it completed before
// reaches the client, then the reset; the half response does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_responses_received_before_a_broker_reset_are_delivered() {
    let answer = pattern(8 * 1024, 9);
    for attempt in 0..TRIES {
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let back = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (front_addr, back_addr) = (front.local_addr().unwrap(), back.local_addr().unwrap());
        let broker = tokio::spawn(broker_that_resets_mid_response(back, answer.clone()));
        let session = tokio::spawn(async move {
            let (client, peer) = front.accept().await.unwrap();
            let backend = TcpStream::connect(back_addr).await.unwrap();
            let local = client.local_addr().unwrap();
            let mut cx = SessionContext::new(
                "kafka".into(),
                peer,
                local,
                Prerequisites::TCP,
                Default::default(),
            );
            let mut chain = StageChain::<Kafka>::new(Vec::new());
            let mut forwarder = Forwarder::new(
                client,
                backend,
                KafkaCodec::default(),
                ForwardLimits::default(),
            );
            let never = StopSignal::new();
            let Forwarded::Closed(reason) = forwarder.run(&mut chain, &mut cx, &never).await else {
                panic!("nobody asked the session to drain");
            };
            forwarder.close(&reason).await;
            reason
        });
        let mut client = TcpStream::connect(front_addr).await.unwrap();
        // Metadata v1 with an empty body: the broker here does not look inside.
        client.write_all(&frame(3, 1, 100, &[])).await.unwrap();
        client.write_all(&frame(3, 1, 101, &[])).await.unwrap();
        let mut got = Vec::new();
        let end = timeout(STEP_TIMEOUT, client.read_to_end(&mut got))
            .await
            .unwrap();
        assert!(
            got == response(100, &answer),
            "attempt {attempt}: the client got {} bytes, not the first response's {}",
            got.len(),
            answer.len() + 8
        );
        assert_eq!(
            end.err().map(|e| e.kind()),
            Some(ErrorKind::ConnectionReset),
            "attempt {attempt}"
        );
        let reason = timeout(STEP_TIMEOUT, session).await.unwrap().unwrap();
        assert_eq!(
            reason,
            CloseReason::BackendIo(ErrorKind::ConnectionReset),
            "attempt {attempt}"
        );
        broker.await.unwrap();
    }
}

// A broker that closes between requests ends the session: the client gets every answer, then
// EOF, without having to close first (Kafka has no half-open connection; a session left open
// would wait for the half-close timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_broker_closing_between_requests_ends_the_session_after_its_answers() {
    let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let back = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (front_addr, back_addr) = (front.local_addr().unwrap(), back.local_addr().unwrap());
    let broker = tokio::spawn(async move {
        let (mut broker, _) = back.accept().await.unwrap();
        let mut len = [0; 4];
        broker.read_exact(&mut len).await.unwrap();
        let mut request = vec![0; i32::from_be_bytes(len) as usize];
        broker.read_exact(&mut request).await.unwrap();
        let correlation_id = i32::from_be_bytes(request[4..8].try_into().unwrap());
        broker
            .write_all(&response(correlation_id, b"answer"))
            .await
            .unwrap();
        // An orderly close, nothing in flight.
    });
    let session = tokio::spawn(async move {
        let (client, peer) = front.accept().await.unwrap();
        let backend = TcpStream::connect(back_addr).await.unwrap();
        let local = client.local_addr().unwrap();
        let mut cx = SessionContext::new(
            "kafka".into(),
            peer,
            local,
            Prerequisites::TCP,
            Default::default(),
        );
        let mut chain = StageChain::<Kafka>::new(Vec::new());
        let never = StopSignal::new();
        proxy_core::forward::forward(
            client,
            backend,
            KafkaCodec::default(),
            &mut chain,
            &mut cx,
            ForwardLimits::default(),
            &never,
        )
        .await
    });
    let mut client = TcpStream::connect(front_addr).await.unwrap();
    client.write_all(&frame(3, 1, 7, &[])).await.unwrap();
    let reason = timeout(STEP_TIMEOUT, session)
        .await
        .expect("the session ended without the client closing")
        .unwrap();
    assert_eq!(reason, CloseReason::BackendClosed);
    let mut got = Vec::new();
    timeout(STEP_TIMEOUT, client.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, response(7, b"answer"));
    broker.await.unwrap();
}
