//! Anonymous clients that each begin a 100 MiB Kafka frame and never finish it, through the
//! real binary (its own process, so its resident memory is its alone): the listener's frame
//! budget holds two such frames, the other sessions wait with one read each, the gauges show
//! what is held, the frame timeout closes each holder in turn, and a new client is served.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use sluice_tests::STEP_TIMEOUT;
use sluice_tests::faulty::broker::FaultyBroker;
use sluice_tests::footprint::rss_kib;
use sluice_tests::kafka_wire::free_port_block;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

use crate::kafka_listener::{admin, api_versions_answered, config};
use crate::{SLUICE, metrics, sample};

const MIB: u64 = 1024 * 1024;
/// Each client's frame, as declared.
const FRAME: u64 = 100 * MIB;
const CLIENTS: usize = 8;
/// The listener's budget: two declared frames (each with its 4-byte prefix) and a little.
const BUDGET: u64 = 2 * FRAME + MIB;
/// What the proxy may grow by beyond the budget: a read buffer per waiting session, its
/// runtime and allocator slack. Without the budget it would grow by 8 × 100 MiB.
const SLACK_KIB: u64 = 48 * 1024;
const FRAME_TIMEOUT: Duration = Duration::from_secs(2);

/// Declares a frame of [`FRAME`] bytes and sends all of it but the last byte, as fast as the
/// proxy reads; the connection is left open, the frame unfinished.
async fn begin_frame_and_stall(proxy: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    let len = i32::try_from(FRAME).unwrap();
    stream.write_all(&len.to_be_bytes()).await.unwrap();
    let chunk = vec![0x5a_u8; MIB as usize];
    let mut left = FRAME - 1;
    while left > 0 {
        let n = left.min(MIB) as usize;
        if stream.write_all(&chunk[..n]).await.is_err() {
            break;
        }
        left -= n as u64;
    }
    stream
}

/// Users depend on anonymous clients being unable to make the proxy hold more than its budget
/// for frames (issue 23): 8 × 100 MiB frames begun and never finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_clients_beginning_huge_frames_stay_within_the_frame_budget() {
    let broker = FaultyBroker::start((Ipv4Addr::LOCALHOST, 0).into(), None).await;
    let bootstrap = free_port_block(2);
    let sluice = SLUICE.run(
        &config(
            bootstrap,
            broker.addr(),
            &format!(
                "max_frame_size = \"100MiB\"\nframe_budget = {BUDGET}\nframe_timeout = \"{}s\"",
                FRAME_TIMEOUT.as_secs()
            ),
            "\n[limits]\nframe_budget = \"1GiB\"\n",
        ),
        "faults-frame-budget.toml",
    );
    let admin = admin(&sluice);
    let proxy: SocketAddr = (Ipv4Addr::LOCALHOST, bootstrap).into();
    let rss_before = rss_kib(sluice.pid());

    let attackers: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(begin_frame_and_stall(proxy)))
        .collect();

    // Two frames are granted and arrive nearly whole; the other six wait.
    let (mut peak_rss, mut peak_buffered, mut peak_used) = (0, 0, 0);
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let text = metrics(admin).await;
        let used = sample(&text, "sluice_frame_budget_used_bytes{listener=\"kafka\"}").unwrap();
        let buffered = sample(&text, "sluice_buffered_bytes").unwrap();
        assert!(
            used <= BUDGET,
            "{used} bytes reserved of a {BUDGET}-byte budget"
        );
        peak_used = peak_used.max(used);
        peak_buffered = peak_buffered.max(buffered);
        peak_rss = peak_rss.max(rss_kib(sluice.pid()));
        if buffered >= 2 * (FRAME - 2 * MIB) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the granted frames never arrived: {buffered} bytes buffered, {used} reserved"
        );
        sleep(Duration::from_millis(50)).await;
    }
    let text = metrics(admin).await;
    assert_eq!(peak_used, 2 * (FRAME + 4), "two whole frames reserved");
    assert_eq!(
        sample(&text, "sluice_sessions_paused{reason=\"frame_budget\"}"),
        Some(CLIENTS as u64 - 2),
        "{text}"
    );
    assert!(
        sample(&text, "sluice_frame_budget_waits_total{listener=\"kafka\"}").unwrap() >= 6,
        "{text}"
    );
    assert!(
        peak_buffered <= BUDGET + CLIENTS as u64 * 2 * MIB,
        "the gauge shows {peak_buffered} bytes held"
    );
    let growth = peak_rss.saturating_sub(rss_before);
    eprintln!(
        "frame budget: {CLIENTS} clients × {} MiB frames, budget {} MiB; peak {} MiB buffered, \
         RSS growth {} MiB",
        FRAME / MIB,
        BUDGET / MIB,
        peak_buffered / MIB,
        growth / 1024
    );
    assert!(
        growth <= BUDGET / 1024 + SLACK_KIB,
        "sluice's RSS grew by {growth} KiB with a {BUDGET}-byte budget"
    );

    // The frame timeout closes each holder in turn, as the client's fault; each waiting
    // session is granted the share given back and times out in its turn too.
    let closed = "sluice_session_closes_total{reason=\"frame_timeout\"}";
    let rounds = CLIENTS as u32 / 2 + 2;
    let deadline = Instant::now() + FRAME_TIMEOUT * rounds + STEP_TIMEOUT;
    loop {
        let text = metrics(admin).await;
        peak_rss = peak_rss.max(rss_kib(sluice.pid()));
        if sample(&text, closed) == Some(CLIENTS as u64) {
            assert_eq!(
                sample(&text, "sluice_frame_budget_used_bytes{listener=\"kafka\"}"),
                Some(0)
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every stalled frame timed out: {text}"
        );
        sleep(Duration::from_millis(100)).await;
    }
    let growth = peak_rss.saturating_sub(rss_before);
    assert!(
        growth <= BUDGET / 1024 + SLACK_KIB,
        "sluice's RSS grew by {growth} KiB while the budget turned over"
    );
    for attacker in attackers {
        let _ = timeout(STEP_TIMEOUT, attacker).await;
    }

    // A new client is served.
    api_versions_answered(proxy, 7).await;
}
