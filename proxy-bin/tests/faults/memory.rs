//! Memory under load, through the real `sluice` binary (its own process, so its resident
//! memory is its alone): a slow reader of a fast backend, and thousands of idle sessions.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sluice_tests::faulty::{Behavior, FaultyBackend};
use sluice_tests::footprint::{nofile_limits, open_fds, raise_nofile_limit, rss_kib};
use sluice_tests::process::Running;
use sluice_tests::{STEP_TIMEOUT, pattern, peers};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::{JoinSet, block_in_place};
use tokio::time::{Instant, sleep, timeout};

use crate::{SLUICE, echo_round_trip, metrics, sample};

const READ_BUFFER: u64 = 16 * 1024;
const HIGH_WATERMARK: u64 = 128 * 1024;

/// A config with the admin endpoint and one TCP listener per `(name, cluster backend)`, each
/// with the buffer limits above.
fn config(listeners: &[(&str, SocketAddr)]) -> String {
    let mut config = String::from("[admin]\nbind = \"127.0.0.1:0\"\n");
    for (index, (name, backend)) in listeners.iter().enumerate() {
        // Each on its own loopback address: two listeners may not both bind 127.0.0.1:0.
        let ip = index + 1;
        config += &format!(
            "\n[[listener]]\nname = \"{name}\"\nbind = \"127.0.0.{ip}:0\"\nprotocol = \"tcp\"\n\
             cluster = \"{name}\"\nread_buffer = \"{READ_BUFFER}B\"\n\
             high_watermark = \"{HIGH_WATERMARK}B\"\nlow_watermark = \"{}B\"\n\
             \n[cluster.{name}]\nbackends = [\"{backend}\"]\n",
            HIGH_WATERMARK / 2
        );
    }
    config
}

/// The address of listener `name` and the admin endpoint's, once `sluice` is serving.
fn addrs(sluice: &Running, name: &str) -> (SocketAddr, SocketAddr) {
    block_in_place(|| {
        sluice.find("sluice started");
        let addr = sluice.find_where("listening", "listener.name", name)["addr"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        (addr, sluice.admin_addr())
    })
}

/// Polls `/metrics` until `series` reads `value`, for at most [`STEP_TIMEOUT`].
async fn wait_for_sample(admin: SocketAddr, series: &str, value: u64) {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let now = sample(&metrics(admin).await, series);
        if now == Some(value) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{series} is {now:?}, not {value}"
        );
        sleep(Duration::from_millis(20)).await;
    }
}

/// Users depend on a slow reader costing the proxy one bounded buffer, not the whole stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_of_a_fast_backend_holds_at_most_the_high_watermark_plus_one_read() {
    let bound = HIGH_WATERMARK + READ_BUFFER;
    let chunk = pattern(16 * 1024, 3);
    let sent = Arc::new(AtomicU64::new(0));
    let firehose = peers::firehose(chunk.clone(), sent.clone()).await;
    let echo = peers::echo().await;
    let config = config(&[("slow", firehose.addr()), ("echo", echo.addr())]);
    let sluice = SLUICE.run(&config, "faults-slow-reader.toml");
    let (addr, admin) = addrs(&sluice, "slow");
    let (echo_addr, _) = addrs(&sluice, "echo");
    let rss_before = rss_kib(sluice.pid());
    let mut client = TcpStream::connect(addr).await.unwrap();

    // The client reads nothing until the backend is pushed back: the firehose's count stops
    // moving, and the proxy holds more than the low watermark toward the client (it paused at
    // the high one) and at most one read more than the high one.
    let low = HIGH_WATERMARK / 2;
    let mut last = u64::MAX;
    let mut unchanged = 0;
    let mut buffered = 0;
    for _ in 0..400 {
        sleep(Duration::from_millis(25)).await;
        let now = sent.load(Ordering::Relaxed);
        unchanged = if now == last { unchanged + 1 } else { 0 };
        last = now;
        if unchanged >= 8 {
            buffered = sample(&metrics(admin).await, "sluice_buffered_bytes").unwrap();
            if buffered > low {
                break;
            }
        }
    }
    assert!(
        unchanged >= 8 && buffered > low,
        "the backend was never pushed back: {last} bytes sent, {buffered} buffered"
    );
    assert!(
        buffered <= bound,
        "{buffered} bytes buffered while the client does not read, bound {bound}"
    );

    // Then it reads 32 MiB slowly, pausing a millisecond after every 64 KiB (the backend and
    // the proxy are far faster); every MiB, the proxy's gauge and resident memory are sampled.
    let total = 32 << 20;
    let mut buf = vec![0u8; chunk.len()];
    let (mut received, mut next_sample, mut next_pause) = (0usize, 0usize, 0usize);
    let (mut peak_buffered, mut peak_rss) = (buffered, rss_before);
    while received < total {
        let n = timeout(STEP_TIMEOUT, client.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the stream ended after {received} bytes");
        let offset = received % chunk.len();
        let expected = chunk.iter().cycle().skip(offset).take(n);
        assert!(
            buf[..n].iter().eq(expected),
            "bytes lost or reordered near byte {received}"
        );
        received += n;
        if received >= next_sample {
            next_sample += 1 << 20;
            let text = metrics(admin).await;
            peak_buffered = peak_buffered.max(sample(&text, "sluice_buffered_bytes").unwrap());
            peak_rss = peak_rss.max(rss_kib(sluice.pid()));
        }
        if received >= next_pause {
            next_pause += 64 * 1024;
            sleep(Duration::from_millis(1)).await;
        }
    }
    assert!(
        peak_buffered <= bound,
        "{peak_buffered} bytes buffered, bound {bound}"
    );
    // Resident memory grows by far less than the 32 MiB streamed (and the more the backend
    // sent meanwhile): the buffers, plus slack for the allocator and the runtime.
    let growth_kib = peak_rss.saturating_sub(rss_before);
    eprintln!(
        "slow reader: {} MiB read, peak buffered {peak_buffered} B (bound {bound} B), \
         RSS growth {growth_kib} KiB",
        total >> 20
    );
    assert!(
        growth_kib < 8 * 1024,
        "sluice's RSS grew by {growth_kib} KiB while streaming {} MiB",
        total >> 20
    );

    drop(client);
    wait_for_sample(admin, "sluice_sessions_active", 0).await;
    let closes = metrics(admin).await;
    assert_eq!(
        sample(
            &closes,
            "sluice_session_closes_total{reason=\"client_error\"}"
        )
        .unwrap_or(0)
            + sample(
                &closes,
                "sluice_session_closes_total{reason=\"client_closed\"}"
            )
            .unwrap_or(0),
        1,
        "{closes}"
    );
    echo_round_trip(echo_addr).await;
}

/// At most this many sessions are opened: the figure.
const IDLE_SESSIONS: usize = 10_000;

/// Descriptors kept free, in this process and in the proxy, for everything but the idle
/// sessions' sockets (the runtime, the other tests running alongside, the admin endpoint).
const FD_RESERVE: usize = 512;

/// Opens one session and makes sure its backend is connected: one byte there and back.
async fn open_idle(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"i").await.unwrap();
    let mut echo = [0u8; 1];
    stream.read_exact(&mut echo).await.unwrap();
    stream
}

/// Users depend on idle connections being cheap, and on new ones served beside thousands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_sessions_stay_open_cheaply_and_a_new_one_is_served() {
    // Each idle session is two descriptors in the proxy (client, backend) and two here (the
    // client's and the backend's end). Both processes share the hard limit: the largest count
    // that fits it, up to 10 000, is used. With a hard limit of 20 000, 10 000 sessions would
    // need 20 000 descriptors in the proxy alone, so 9 744 fit.
    let hard = usize::try_from(raise_nofile_limit()).unwrap_or(usize::MAX);
    let count = IDLE_SESSIONS.min(hard.saturating_sub(FD_RESERVE) / 2);
    assert!(
        count >= 1000,
        "a hard descriptor limit of {hard} is too small"
    );
    let mut backend = FaultyBackend::start(Behavior::Echo).await;
    let sluice = SLUICE.run(&config(&[("idle", backend.addr())]), "faults-idle.toml");
    let (addr, admin) = addrs(&sluice, "idle");
    let pid = sluice.pid();
    assert_eq!(
        nofile_limits(pid).0 as usize,
        hard,
        "the proxy inherits the raised limit"
    );
    // The runtime's threads and first allocations exist before the baseline.
    echo_round_trip(addr).await;
    wait_for_sample(admin, "sluice_sessions_active", 0).await;
    let rss_before = rss_kib(pid);

    // Each session moves one byte there and back (so its backend is connected and both its
    // read buffers exist, as in `loadgen idle`), then stays idle; the backend holds its end.
    backend.set(Behavior::EchoOnceThenHold);
    let started = Instant::now();
    let mut sessions = Vec::with_capacity(count);
    let mut opening = JoinSet::new();
    let mut next = 0;
    while sessions.len() < count {
        while opening.len() < 64 && next < count {
            opening.spawn(open_idle(addr));
            next += 1;
        }
        let opened = timeout(STEP_TIMEOUT, opening.join_next())
            .await
            .expect("a session opened in time")
            .expect("a session is opening")
            .expect("opening a session succeeded");
        sessions.push(opened);
    }
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        held.push(backend.next_held().await);
    }
    wait_for_sample(admin, "sluice_sessions_active", count as u64).await;
    let rss_after = rss_kib(pid);
    let per_session = rss_after.saturating_sub(rss_before) as f64 / count as f64;
    eprintln!(
        "idle sessions: {count}, RSS per session: {per_session:.1} KiB \
         (sluice {rss_before} -> {rss_after} KiB, {} fds, opened in {:.1?})",
        open_fds(pid),
        started.elapsed()
    );
    assert!(per_session < 64.0, "{per_session:.1} KiB per idle session");

    // A new session is served alongside them.
    backend.set(Behavior::Echo);
    echo_round_trip(addr).await;
    wait_for_sample(admin, "sluice_sessions_active", count as u64).await;

    // The backends reset their ends and the proxy closes every session. Closing in this order
    // leaves no TIME_WAIT on the ephemeral ports of the clients or of the proxy's backend
    // connections (20 000 of them would hold the port range for a minute, and tests that bind
    // chosen ports would fail meanwhile).
    for stream in &held {
        stream.set_zero_linger().unwrap();
    }
    drop(held);
    wait_for_sample(admin, "sluice_sessions_active", 0).await;
    drop(sessions);
}
