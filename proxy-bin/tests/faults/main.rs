//! Fault injection: Sluice between peers that misbehave (backends that stay silent, black-hole
//! or close at once, a client that reads slowly, many idle sessions, a Kafka broker that dies
//! mid-request or closes during SASL, one whose Metadata names node ids by the hundred and
//! hosts with line breaks), on real loopback sockets. Each test asserts what a user
//! sees: the bytes delivered or not, the session's close reason and fault, and that the proxy
//! serves a new session afterwards. Every wait is a bounded poll on an observable state.
//!
//! Also: a peer that resets has what it sent delivered first and the reset passed on
//! (`reset.rs`, plain, TLS in `tests/tests/tls/reset.rs`, Kafka framing, a child process in
//! `child.rs`); connection limits (`limits.rs`) and descriptor exhaustion under a low
//! `RLIMIT_NOFILE` (`descriptors.rs`); a Kafka client that pipelines without reading, paused at
//! `max_in_flight_requests` (`in_flight.rs`); anonymous clients that begin 100 MiB frames and
//! stall, held to the listener's frame budget and closed at the frame timeout
//! (`frame_budget.rs`).
//!
//! This file holds what the modules share: the `sluice` binary, a fresh echo round trip,
//! bounded polling and the admin endpoint's metrics.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of this test binary fail the test when the environment misbehaves"
)]

mod child;
mod descriptors;
mod frame_budget;
mod in_flight;
mod kafka_broker;
mod kafka_listener;
mod kafka_readiness;
mod limits;
mod memory;
mod misbehaving_broker;
mod reset;
mod silent_backend;

use std::net::SocketAddr;
use std::time::Duration;

use sluice_tests::process::{SluiceBinary, http_get};
use sluice_tests::{STEP_TIMEOUT, exchange, pattern};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

/// The `sluice` binary under test.
const SLUICE: SluiceBinary = SluiceBinary::new(env!("CARGO_BIN_EXE_sluice"));

/// A fresh session through `proxy` to an echo backend: 64 KiB there and back, byte-exact.
async fn echo_round_trip(proxy: SocketAddr) {
    let upload = pattern(64 * 1024, 99);
    let stream = timeout(STEP_TIMEOUT, TcpStream::connect(proxy))
        .await
        .expect("connected in time")
        .expect("the proxy accepts a new session");
    let got = timeout(STEP_TIMEOUT, exchange(stream, &upload))
        .await
        .expect("the echo came back in time");
    assert!(
        got == upload,
        "the new session's echo differs from its upload"
    );
}

/// Polls `done` every 10 ms until it holds, for at most [`STEP_TIMEOUT`]; panics with `what`
/// otherwise.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        sleep(Duration::from_millis(10)).await;
    }
}

/// The admin endpoint's `/metrics` text, fetched off the runtime's threads.
async fn metrics(admin: SocketAddr) -> String {
    tokio::task::spawn_blocking(move || http_get(admin, "/metrics").1)
        .await
        .unwrap()
}

/// The value of the sample whose series (name and labels) is exactly `series`, if present.
fn sample(metrics: &str, series: &str) -> Option<u64> {
    metrics.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}
