//! Connection limits from outside: at a listener's or the process's maximum, new connections
//! wait in the backlog and are served once a session ends; a source over its concurrent or
//! rate limit is refused (the source being the client a trusted PROXY header names), counted,
//! and other sources are unaffected.

use std::sync::atomic::Ordering;
use std::time::Duration;

use proxy_core::proxy_protocol::{ProxyProtocolMode, ProxyProtocolPolicy, TrustedNetworks};
use proxy_frontend::{ConnectionLimits, SourceRate};
use sluice_tests::proxy::{ProxyOptions, TestProxy};
use sluice_tests::{STEP_TIMEOUT, peers};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

/// Sends `bytes` and reads the echo back.
async fn echo(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).await.unwrap();
    let mut got = vec![0; bytes.len()];
    timeout(STEP_TIMEOUT, stream.read_exact(&mut got))
        .await
        .expect("an echo")
        .unwrap();
    assert_eq!(got, bytes);
}

/// Waits (bounded) until `check` holds.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        sleep(Duration::from_millis(10)).await;
    }
}

/// A connection that is not served: its bytes get no answer for a while.
async fn not_served(stream: &mut TcpStream) {
    stream.write_all(b"anyone?").await.unwrap();
    let mut byte = [0; 1];
    let read = timeout(Duration::from_millis(300), stream.read(&mut byte)).await;
    assert!(
        read.is_err(),
        "a connection over the limit was served: {read:?}"
    );
}

async fn waits_at_the_limit_and_is_served_after(proxy: TestProxy) {
    let mut first = TcpStream::connect(proxy.addr()).await.unwrap();
    echo(&mut first, b"one").await;
    let mut second = TcpStream::connect(proxy.addr()).await.unwrap();
    echo(&mut second, b"two").await;
    // The kernel completes the handshake (the backlog), but the proxy does not accept it.
    let mut third = TcpStream::connect(proxy.addr()).await.unwrap();
    not_served(&mut third).await;
    assert_eq!(proxy.sessions().len(), 2);
    until("the pause is counted", || {
        proxy
            .admission()
            .counts()
            .accept_paused
            .load(Ordering::Relaxed)
            >= 1
    })
    .await;
    // One session ends: the waiting connection is accepted and gets its answer.
    drop(first);
    let mut byte = [0; 7];
    timeout(STEP_TIMEOUT, third.read_exact(&mut byte))
        .await
        .expect("served once a slot was free")
        .unwrap();
    assert_eq!(&byte, b"anyone?");
    echo(&mut second, b"still fine").await;
}

// A listener at its max_connections accepts nothing more; the next connection is served as
// soon as a session ends (HAProxy's maxconn), and none is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_a_listeners_maximum_new_connections_wait_and_are_served_when_a_session_ends() {
    let backend = peers::echo().await;
    let proxy = TestProxy::start(ProxyOptions {
        connection_limits: ConnectionLimits {
            max_connections: Some(2),
            ..ConnectionLimits::default()
        },
        ..ProxyOptions::to([backend.addr()])
    })
    .await;
    waits_at_the_limit_and_is_served_after(proxy).await;
}

// The process-wide limit holds every listener the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_process_maximum_new_connections_wait_and_are_served_when_a_session_ends() {
    let backend = peers::echo().await;
    let proxy = TestProxy::start(ProxyOptions {
        max_connections: Some(2),
        ..ProxyOptions::to([backend.addr()])
    })
    .await;
    waits_at_the_limit_and_is_served_after(proxy).await;
}

fn v1_header(client: &str) -> Vec<u8> {
    format!("PROXY TCP4 {client} 127.0.0.1 40000 9192\r\n").into_bytes()
}

/// A connection behind the trusted load balancer for `client`; `None` when the proxy closed it.
async fn via_balancer(proxy: &TestProxy, client: &str) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    stream.write_all(&v1_header(client)).await.unwrap();
    stream.write_all(b"ping").await.unwrap();
    let mut got = [0; 4];
    match timeout(STEP_TIMEOUT, stream.read_exact(&mut got))
        .await
        .unwrap()
    {
        Ok(_) => {
            assert_eq!(&got, b"ping");
            Some(stream)
        }
        Err(_) => None,
    }
}

// Behind a load balancer every connection comes from its address: the per-source limit
// counts the client each trusted PROXY header names, so one client at its limit is refused
// while others behind the same balancer are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_at_its_limit_is_refused_by_the_address_its_proxy_header_names() {
    let backend = peers::echo().await;
    let mut proxy = TestProxy::start(ProxyOptions {
        proxy_protocol: ProxyProtocolPolicy {
            mode: ProxyProtocolMode::Required,
            trusted: TrustedNetworks::new(["127.0.0.1/32".parse().unwrap()]),
            ..ProxyProtocolPolicy::default()
        },
        connection_limits: ConnectionLimits {
            max_connections_per_source: Some(2),
            ..ConnectionLimits::default()
        },
        ..ProxyOptions::to([backend.addr()])
    })
    .await;
    let _a1 = via_balancer(&proxy, "192.0.2.1").await.expect("first of a");
    let a2 = via_balancer(&proxy, "192.0.2.1")
        .await
        .expect("second of a");
    assert!(
        via_balancer(&proxy, "192.0.2.1").await.is_none(),
        "a third of a was served"
    );
    let summary = loop {
        let summary = proxy.next_closed(STEP_TIMEOUT).await.unwrap();
        if summary.reason.label() == "source_connection_limit" {
            break summary;
        }
    };
    assert_eq!(summary.client_addr.ip().to_string(), "192.0.2.1");
    // Another client behind the same balancer is not affected.
    let _b = via_balancer(&proxy, "192.0.2.2")
        .await
        .expect("b is served");
    // A session of a's ends: a may connect again.
    drop(a2);
    until("a's session ended", || proxy.sessions().len() == 2).await;
    let _a3 = via_balancer(&proxy, "192.0.2.1")
        .await
        .expect("a after one ended");
    let counts = proxy.admission().counts();
    assert_eq!(counts.refused_source_connections.load(Ordering::Relaxed), 1);
}

// A source that opens connections faster than its rate is refused until its bucket refills;
// the listener keeps serving everyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_connecting_too_fast_is_refused_and_counted() {
    let backend = peers::echo().await;
    let mut proxy = TestProxy::start(ProxyOptions {
        connection_limits: ConnectionLimits {
            // A burst of three, then one a second.
            connection_rate_per_source: Some(SourceRate {
                per_second: 1,
                burst: 3,
            }),
            ..ConnectionLimits::default()
        },
        ..ProxyOptions::to([backend.addr()])
    })
    .await;
    // Four connections back to back: three from the burst, the fourth a second early.
    let mut streams = Vec::new();
    for _ in 0..4 {
        streams.push(TcpStream::connect(proxy.addr()).await.unwrap());
    }
    let (mut served, mut refused) = (0, 0);
    for stream in &mut streams {
        let _ = stream.write_all(b"hi").await;
        let mut got = [0; 2];
        match timeout(STEP_TIMEOUT, stream.read_exact(&mut got))
            .await
            .unwrap()
        {
            Ok(_) => served += 1,
            Err(_) => refused += 1,
        }
    }
    assert_eq!((served, refused), (3, 1));
    let summary = loop {
        let summary = proxy.next_closed(STEP_TIMEOUT).await.unwrap();
        if summary.reason.label() == "source_rate_limit" {
            break summary;
        }
    };
    assert!(
        summary
            .reason
            .to_string()
            .contains("connection_rate_per_source"),
        "{}",
        summary.reason
    );
    assert_eq!(
        proxy
            .admission()
            .counts()
            .refused_source_rate
            .load(Ordering::Relaxed),
        1
    );
}
