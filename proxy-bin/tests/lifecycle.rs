//! Lifecycle of the real binary under real signals: readiness, accept grace, drain, force-close,
//! a second signal, and child-process backends. Every wait is bounded.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "helpers of this test file fail the test when the environment misbehaves"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use sluice_tests::STEP_TIMEOUT;
use sluice_tests::process::{SluiceBinary, http_get, refused_port};
use sluice_tests::procfs::{children_of, process_gone, process_state};

const SLUICE: SluiceBinary = SluiceBinary::new(env!("CARGO_BIN_EXE_sluice"));

/// A backend that answers each line `req N` with `resp N` after `delay`, many per connection.
fn slow_responder(delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { return };
                    thread::sleep(delay);
                    let reply = line.replace("req", "resp");
                    if writeln!(writer, "{reply}").is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// One request on a fresh connection: `Ok(true)` answered, `Ok(false)` failed after connecting,
/// `Err` connect refused.
fn one_request(addr: SocketAddr, n: u64) -> Result<bool, std::io::Error> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    if writeln!(stream, "req {n}").is_err() {
        return Ok(false);
    }
    let mut line = String::new();
    let answered = BufReader::new(&stream).read_line(&mut line).is_ok()
        && line.trim_end() == format!("resp {n}");
    Ok(answered)
}

fn wait_ready(admin: SocketAddr) {
    for _ in 0..200 {
        if http_get(admin, "/readyz").0 == 200 {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("never ready: {:?}", http_get(admin, "/readyz"));
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Answered(Instant),
    FailedAfterConnect,
    Refused(Instant),
}

#[test]
fn sigterm_under_load_serves_every_request_in_flight_and_refuses_only_after_the_grace() {
    let backend = slow_responder(Duration::from_millis(200));
    let config = format!(
        "[[listener]]\nname = \"plain\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\ncluster = \"local\"\n\n\
         [cluster.local]\nbackends = [\"{backend}\"]\nready_requires = \"any\"\nprobe_interval = \"100ms\"\n\n\
         [admin]\nbind = \"127.0.0.1:0\"\n\n\
         [shutdown]\naccept_grace = \"2s\"\ndrain_timeout = \"10s\"\ntermination_grace_period = \"15s\"\n"
    );
    let sluice = SLUICE.run(&config, "load.toml");
    let admin = sluice.admin_addr();
    let addr = sluice.listening_addr();
    wait_ready(admin);
    assert_eq!(http_get(admin, "/livez"), (200, "ok\n".to_owned()));

    let stop = Arc::new(AtomicBool::new(false));
    let (record, outcomes) = mpsc::channel();
    let workers: Vec<_> = (0..8u64)
        .map(|worker| {
            let (stop, record) = (stop.clone(), record.clone());
            thread::spawn(move || {
                for i in 0..10_000u64 {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let outcome = match one_request(addr, worker * 100_000 + i) {
                        Ok(true) => Outcome::Answered(Instant::now()),
                        Ok(false) => Outcome::FailedAfterConnect,
                        Err(_) => Outcome::Refused(Instant::now()),
                    };
                    record.send(outcome).unwrap();
                    if matches!(outcome, Outcome::Refused(_)) {
                        thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(600));
    let sigterm_at = Instant::now();
    sluice.signal("-TERM");

    sluice.wait_for("shutdown: readiness failing");
    let (status, body) = http_get(admin, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body, "not ready: shutting down\n");
    assert!(
        one_request(addr, 7).unwrap(),
        "a connection during the accept grace was not served"
    );

    sluice.wait_for("shutdown: stop accepting");
    sluice.wait_for("stopped accepting");
    assert!(
        TcpStream::connect(addr).is_err(),
        "a connection after the grace was accepted"
    );
    sluice.wait_for("shutdown: draining");
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    sluice.wait_for("shutdown: stopping child backends");
    sluice.wait_for("shutdown: complete");
    let status = sluice.wait_exit();
    assert_eq!(status.code(), Some(0));

    drop(record);
    let outcomes: Vec<Outcome> = outcomes.try_iter().collect();
    let grace_end = sigterm_at + Duration::from_secs(2);
    let failed: Vec<_> = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::FailedAfterConnect))
        .collect();
    assert!(
        failed.is_empty(),
        "requests lost after their connection was accepted: {failed:?}"
    );
    let early_refusals = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Refused(at) if *at < grace_end))
        .count();
    assert_eq!(
        early_refusals, 0,
        "connections refused during the accept grace"
    );
    let served_in_grace = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Answered(at) if *at > sigterm_at && *at < grace_end))
        .count();
    assert!(
        served_in_grace > 0,
        "nothing was served during the accept grace"
    );
    assert!(
        outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Answered(_)))
            .count()
            > 20
    );
}

#[test]
fn readyz_is_503_while_the_only_backend_is_down_and_200_once_it_is_up() {
    let port = refused_port();
    let config = format!(
        "[[listener]]\nname = \"plain\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\ncluster = \"local\"\n\n\
         [cluster.local]\nbackends = [\"127.0.0.1:{port}\"]\nready_requires = \"any\"\nprobe_interval = \"100ms\"\nconnect_timeout = \"1s\"\n\n\
         [admin]\nbind = \"127.0.0.1:0\"\n\n[shutdown]\naccept_grace = \"0s\"\n"
    );
    let sluice = SLUICE.run(&config, "ready.toml");
    let admin = sluice.admin_addr();
    // Start-up and the first probe run concurrently: wait for both, in either order.
    sluice.find("sluice started");
    sluice.find("backend reachability");
    let (status, body) = http_get(admin, "/readyz");
    assert_eq!(
        (status, body.as_str()),
        (503, "not ready: cluster local: no backend reachable\n")
    );
    assert_eq!(
        http_get(admin, "/livez").0,
        200,
        "liveness never depends on backends"
    );
    let metrics = http_get(admin, "/metrics").1;
    assert!(
        metrics.contains("sluice_backend_reachable{cluster=\"local\"} 0"),
        "{metrics}"
    );

    let _backend = TcpListener::bind(("127.0.0.1", port)).unwrap();
    wait_ready(admin);
    let metrics = http_get(admin, "/metrics").1;
    assert!(
        metrics.contains("sluice_backend_reachable{cluster=\"local\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sluice_lifecycle_phase{phase=\"running\"} 1"),
        "{metrics}"
    );
    assert_eq!(sluice.terminate().code(), Some(0));
}

#[test]
fn a_second_sigterm_during_the_drain_exits_promptly() {
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend_addr = backend.local_addr().unwrap();
    let holder = thread::spawn(move || backend.accept().map(|(stream, _)| stream));
    let config = format!(
        "[[listener]]\nname = \"plain\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\ncluster = \"local\"\n\n\
         [cluster.local]\nbackends = [\"{backend_addr}\"]\n\n\
         [shutdown]\naccept_grace = \"0s\"\ndrain_timeout = \"600s\"\ntermination_grace_period = \"700s\"\n"
    );
    let sluice = SLUICE.run(&config, "second.toml");
    let mut client = TcpStream::connect(sluice.listening_addr()).unwrap();
    client.write_all(b"held").unwrap();
    let _backend_side = holder.join().unwrap().unwrap();

    sluice.signal("-TERM");
    sluice.wait_for("shutdown: draining");
    sluice.signal("-TERM");
    sluice.wait_for("shutdown: second signal, ending the drain");
    let forced = sluice.wait_for("shutdown: force-closing sessions still open");
    assert_eq!(forced["sessions"], 1);
    // Bounded by STEP_TIMEOUT (20 s), far below the 600 s drain it cut short.
    assert_eq!(sluice.wait_exit().code(), Some(0));
    let mut rest = Vec::new();
    client.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    let _ = client.read_to_end(&mut rest);
}

const STUBBORN_CHILD: &str = "trap '' TERM; cat; while :; do sleep 1; done";

fn exec_config(script: &str, stop_timeout: &str) -> String {
    format!(
        "[[listener]]\nname = \"tool\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\ncluster = \"child\"\nhalf_close_timeout = \"500ms\"\n\n\
         [cluster.child]\nexec = [\"/bin/sh\", \"-c\", \"{script}\"]\nchild_stop_timeout = \"{stop_timeout}\"\n\n\
         [shutdown]\naccept_grace = \"0s\"\ndrain_timeout = \"1s\"\n"
    )
}

fn echo_through(stream: &mut TcpStream, text: &[u8]) {
    stream.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    stream.write_all(text).unwrap();
    let mut back = vec![0u8; text.len()];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(back, text);
}

/// The child pid from a close line's `backend` field, `sh[1234]`.
fn child_pid(close: &serde_json::Value) -> u32 {
    let backend = close["backend.addr"].as_str().unwrap();
    backend
        .trim_end_matches(']')
        .rsplit('[')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn wait_gone(pid: u32, within: Duration) {
    let deadline = Instant::now() + within;
    while !process_gone(pid) {
        assert!(
            Instant::now() < deadline,
            "child {pid} still there, state {:?}",
            process_state(pid)
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_child_that_ignores_sigterm_is_killed_within_its_stop_time_and_reaped() {
    let sluice = SLUICE.run(&exec_config(STUBBORN_CHILD, "300ms"), "stubborn.toml");
    let mut client = TcpStream::connect(sluice.listening_addr()).unwrap();
    echo_through(&mut client, b"through a child");
    drop(client);
    let close = sluice.wait_for("session closed");
    let pid = child_pid(&close);
    // stdin closed → 300 ms → SIGTERM (ignored) → 300 ms → SIGKILL → reaped.
    wait_gone(pid, Duration::from_secs(5));
    assert_eq!(sluice.terminate().code(), Some(0));
}

#[test]
fn a_child_killed_from_outside_ends_only_its_own_session() {
    let mut sluice = SLUICE.run(&exec_config("exec cat", "300ms"), "killed.toml");
    let addr = sluice.listening_addr();
    let mut first = TcpStream::connect(addr).unwrap();
    let mut second = TcpStream::connect(addr).unwrap();
    echo_through(&mut first, b"one");
    echo_through(&mut second, b"two");
    let children = children_of(sluice.pid());
    assert_eq!(children.len(), 2, "{children:?}");

    let victim = children[0];
    std::process::Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .unwrap();
    // The victim's client sees the child's end as EOF; the other session keeps echoing.
    let mut lost = Vec::new();
    for (index, client) in [&mut first, &mut second].into_iter().enumerate() {
        client
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut byte = [0u8; 1];
        if matches!(client.read(&mut byte), Ok(0)) {
            lost.push(index);
        }
    }
    assert_eq!(lost.len(), 1, "exactly one session ends");
    let survivor = if lost[0] == 0 {
        &mut second
    } else {
        &mut first
    };
    echo_through(survivor, b"again");

    let close = sluice.wait_for("session closed");
    assert_eq!(child_pid(&close), victim);
    assert_eq!(close["fault"], "upstream", "{close}");
    wait_gone(victim, Duration::from_secs(5));
    assert!(
        sluice.try_exit().is_none(),
        "sluice itself must survive a dead child"
    );
    assert_eq!(sluice.terminate().code(), Some(0));
}

#[test]
fn shutdown_stops_children_that_ignore_sigterm_and_exits_zero() {
    let sluice = SLUICE.run(
        &exec_config(STUBBORN_CHILD, "300ms"),
        "shutdown-children.toml",
    );
    let mut client = TcpStream::connect(sluice.listening_addr()).unwrap();
    echo_through(&mut client, b"busy");
    let pid = children_of(sluice.pid())[0];
    sluice.signal("-TERM");
    sluice.wait_for("shutdown: force-closing sessions still open");
    let stopping = sluice.wait_for("shutdown: stopping child backends");
    assert!(stopping["children"].as_u64().is_some());
    sluice.wait_for("shutdown: complete");
    assert_eq!(sluice.wait_exit().code(), Some(0));
    wait_gone(pid, Duration::from_secs(5));
}

/// The runtime's worker threads, by their name in /proc (tokio names them
/// `tokio-rt-worker`), once `expected` of them are there or 5 s have passed: each thread names
/// itself when it first runs, which on a busy machine can be after the start line.
fn worker_threads(pid: u32, expected: usize) -> usize {
    let count = || {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.unwrap().path().join("comm")).ok())
            .filter(|comm| comm.trim() == "tokio-rt-worker")
            .count()
    };
    for _ in 0..100 {
        if count() == expected {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    count()
}

/// A plain TCP listener in front of `backend`, with `limits` appended.
fn threads_config(backend: SocketAddr, limits: &str) -> String {
    format!(
        "[[listener]]\nname = \"plain\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\n\
         cluster = \"local\"\n\n[cluster.local]\nbackends = [\"{backend}\"]\n{limits}"
    )
}

#[test]
fn limits_threads_sets_the_worker_threads_and_the_default_is_one_per_cpu() {
    let backend = sluice_tests::process::echo_backend();
    let config = |limits: &str| threads_config(backend, limits);
    let three = SLUICE.run(&config("\n[limits]\nthreads = 3\n"), "threads-3.toml");
    let started = three.wait_for("sluice started");
    assert_eq!(started["worker_threads"], 3, "{started}");
    assert_eq!(worker_threads(three.pid(), 3), 3);
    assert!(three.terminate().success());

    let default = SLUICE.run(&config(""), "threads-default.toml");
    let started = default.wait_for("sluice started");
    let cpus = thread::available_parallelism().unwrap().get();
    assert_eq!(started["worker_threads"], cpus, "{started}");
    // One CPU: the runtime runs on the main thread, with no workers of its own.
    let runtime_workers = if cpus == 1 { 0 } else { cpus };
    assert_eq!(
        worker_threads(default.pid(), runtime_workers),
        runtime_workers
    );
    assert!(default.terminate().success());
}

#[test]
fn with_one_thread_the_main_thread_serves_and_a_flooding_client_starves_no_other_session() {
    let backend = sluice_tests::process::echo_backend();
    let one = SLUICE.run(
        &threads_config(backend, "\n[limits]\nthreads = 1\n"),
        "threads-1.toml",
    );
    let started = one.wait_for("sluice started");
    assert_eq!(started["worker_threads"], 1, "{started}");
    assert_eq!(
        worker_threads(one.pid(), 0),
        0,
        "one thread is the main thread, no runtime worker beside it"
    );
    let addr = one.listening_addr();
    // A client that writes as fast as it can and never reads its echo: the proxy reads from it
    // until its queues reach their watermarks, then stops, and the client's writes block.
    let written = Arc::new(AtomicUsize::new(0));
    let flooding = Arc::new(AtomicBool::new(true));
    let flood = {
        let (written, flooding) = (written.clone(), flooding.clone());
        thread::spawn(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream
                .set_write_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let chunk = [b'x'; 64 * 1024];
            // At most 1 GiB, or until the writes block for half a second.
            for _ in 0..16 * 1024 {
                if !flooding.load(Ordering::Relaxed) || stream.write_all(&chunk).is_err() {
                    break;
                }
                written.fetch_add(chunk.len(), Ordering::Relaxed);
            }
            stream
        })
    };
    let deadline = Instant::now() + STEP_TIMEOUT;
    while written.load(Ordering::Relaxed) < 1024 * 1024 {
        assert!(
            Instant::now() < deadline,
            "the flooding client's bytes were not read"
        );
        thread::sleep(Duration::from_millis(5));
    }
    // Another client, on the same single thread, is answered all along.
    let mut other = TcpStream::connect(addr).unwrap();
    for n in 0..200 {
        echo_through(&mut other, format!("request {n}\n").as_bytes());
    }
    flooding.store(false, Ordering::Relaxed);
    let flooder = flood.join().unwrap();
    // The flooding session is still open, only paused; the other still answered.
    echo_through(&mut other, b"after the flood\n");
    drop(flooder);
    drop(other);
    // Both sessions end now, within a step and so long before `half_close_timeout` (60 s): the
    // flooding client's reset reaches a backend still blocked writing its echo, which is read
    // (and dropped) until it has taken the rest of the flood.
    for _ in 0..2 {
        one.wait_for("session closed");
    }
    assert!(one.terminate().success());
}
