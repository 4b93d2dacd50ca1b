//! The admin endpoint of the real binary against clients that hold connections: partial
//! request heads closed by `header_read_timeout`, kept-alive connections closed by
//! `idle_timeout`, and the least recently active connection evicted at `max_connections`, with
//! `/livez` answering throughout. Every wait is a bounded poll on what a client or `/metrics`
//! observes; nothing asserts how long something took. And `/metrics` itself: a TCP listener's
//! sessions and bytes, a dead first backend while sessions fail over, the build and the
//! process, OpenMetrics for a scraper that asks for it, and every metric docs/operations.md
//! documents, in a scrape the Prometheus project's own parser reads.
//!
//! Its own test binary: test (a) holds thousands of descriptors, which the fault-injection
//! binary's ten thousand idle sessions would leave no room for.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "helpers of this test file fail the test when the environment misbehaves"
)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use sluice_tests::STEP_TIMEOUT;
use sluice_tests::footprint::raise_nofile_limit;
use sluice_tests::process::{Running, SluiceBinary, echo_backend, http_get, refused_port};

const SLUICE: SluiceBinary = SluiceBinary::new(env!("CARGO_BIN_EXE_sluice"));

/// The issue's figure.
const PARTIAL_HEADS: usize = 3000;

/// Descriptors kept free in this process for everything but the partial heads.
const FD_RESERVE: usize = 256;

/// Sluice with a listener nobody uses and an `[admin]` table with `admin_keys`.
fn run(admin_keys: &str, name: &str) -> (Running, SocketAddr) {
    let config = format!(
        "[[listener]]\nname = \"plain\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\ncluster = \"local\"\n\n\
         [cluster.local]\nbackends = [\"127.0.0.1:{}\"]\n\n\
         [admin]\nbind = \"127.0.0.1:0\"\n{admin_keys}\n",
        refused_port()
    );
    let sluice = SLUICE.run(&config, name);
    let admin = sluice.admin_addr();
    (sluice, admin)
}

fn livez(admin: SocketAddr) {
    assert_eq!(http_get(admin, "/livez"), (200, "ok\n".to_owned()));
}

/// The value of the sample `series` (name and labels) in `/metrics`.
fn metric(admin: SocketAddr, series: &str) -> u64 {
    let (status, body) = http_get(admin, "/metrics");
    assert_eq!(status, 200);
    body.lines()
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == series).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
}

fn closed_total(admin: SocketAddr, reason: &str) -> u64 {
    metric(
        admin,
        &format!("sluice_admin_connections_closed_total{{reason=\"{reason}\"}}"),
    )
}

/// Polls `check` every 20 ms until it holds, for at most [`STEP_TIMEOUT`].
fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits, until `deadline`, for the proxy to close `stream` without answering: end of file or
/// a reset, never a byte.
fn closed_by_proxy(stream: &mut TcpStream, deadline: Instant) {
    let left = deadline.saturating_duration_since(Instant::now());
    stream
        .set_read_timeout(Some(left.max(Duration::from_millis(1))))
        .unwrap();
    let mut byte = [0; 1];
    match stream.read(&mut byte) {
        Ok(0) => {}
        Err(err) if err.kind() == ErrorKind::ConnectionReset => {}
        Ok(_) => panic!("a connection the proxy should close was answered"),
        Err(err) => panic!("the proxy did not close the connection: {err}"),
    }
}

/// True while the proxy keeps `stream` open: nothing to read and no end of file, right now.
fn still_open(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let open =
        matches!((&*stream).read(&mut [0; 1]), Err(err) if err.kind() == ErrorKind::WouldBlock);
    stream.set_nonblocking(false).unwrap();
    open
}

// (a) The issue's attack: thousands of connections that sent `GET /li` and nothing more. Each
// is closed by the header-read timeout (the cap is set above their number, so it plays no
// part), and /livez answers while they are open and while they are being closed.
#[test]
fn partial_request_heads_are_closed_by_the_header_timeout_while_livez_answers() {
    let hard = usize::try_from(raise_nofile_limit()).unwrap_or(usize::MAX);
    // The proxy has the same hard limit and needs one descriptor per connection, as we do.
    let count = PARTIAL_HEADS.min(hard.saturating_sub(FD_RESERVE));
    assert!(
        count >= 1000,
        "a hard descriptor limit of {hard} is too small"
    );
    let (_sluice, admin) = run(
        "header_read_timeout = \"1s\"\nidle_timeout = \"1h\"\nmax_connections = 5000",
        "admin-partial-heads.toml",
    );
    livez(admin);

    let mut partial = Vec::with_capacity(count);
    for i in 0..count {
        let mut stream = TcpStream::connect(admin).unwrap();
        stream.write_all(b"GET /li").unwrap();
        partial.push(stream);
        if i % 250 == 0 {
            livez(admin);
        }
    }
    let deadline = Instant::now() + STEP_TIMEOUT;
    for (i, stream) in partial.iter_mut().enumerate() {
        closed_by_proxy(stream, deadline);
        if i % 250 == 0 {
            livez(admin);
        }
    }
    // Each was closed by the header timeout: none evicted, none answered.
    until("every close is counted", || {
        closed_total(admin, "header_timeout") == count as u64
    });
    assert_eq!(closed_total(admin, "evicted"), 0);
    assert_eq!(closed_total(admin, "idle_timeout"), 0);
    livez(admin);
}

// (b) A kept-alive connection that was answered and then sends nothing is closed by the idle
// timeout. The header timeout is an hour, so only the idle timeout can close it.
#[test]
fn an_idle_kept_alive_connection_is_closed_by_the_idle_timeout() {
    let (_sluice, admin) = run(
        "header_read_timeout = \"1h\"\nidle_timeout = \"1s\"",
        "admin-idle.toml",
    );
    let mut stream = TcpStream::connect(admin).unwrap();
    stream.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    // HTTP/1.1 keeps the connection alive unless told otherwise.
    stream
        .write_all(b"GET /livez HTTP/1.1\r\nHost: sluice\r\n\r\n")
        .unwrap();
    let mut response = Vec::new();
    let mut chunk = [0; 512];
    while !response.ends_with(b"\r\n\r\nok\n") {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed before the answer: {response:?}");
        response.extend_from_slice(&chunk[..n]);
    }
    assert!(response.starts_with(b"HTTP/1.1 200 OK\r\n"), "{response:?}");

    closed_by_proxy(&mut stream, Instant::now() + STEP_TIMEOUT);
    until("the close is counted", || {
        closed_total(admin, "idle_timeout") == 1
    });
    assert_eq!(closed_total(admin, "header_timeout"), 0);
}

// (c) Beyond max_connections, new connections are still accepted and /livez answered: the
// least recently active connections (here the earliest silent ones) are closed to make room,
// and the most recent ones stay open.
#[test]
fn beyond_the_cap_the_oldest_silent_connections_make_room_and_livez_answers() {
    const MAX: usize = 8;
    const HELD: usize = 40;
    const PROBES: usize = 3;
    let (_sluice, admin) = run(
        &format!("header_read_timeout = \"1h\"\nidle_timeout = \"1h\"\nmax_connections = {MAX}"),
        "admin-cap.toml",
    );
    let mut held: Vec<TcpStream> = (0..HELD)
        .map(|_| TcpStream::connect(admin).unwrap())
        .collect();
    // Each held connection beyond the cap evicted the oldest one. Watched from here, not
    // through /metrics: each fetch would be one more connection at the cap.
    let deadline = Instant::now() + STEP_TIMEOUT;
    for stream in &mut held[..HELD - MAX] {
        closed_by_proxy(stream, deadline);
    }
    for _ in 0..PROBES {
        livez(admin);
    }
    // The first probe found the cap full of held connections and evicted the oldest of them;
    // each later one evicted at most one more, and only held connections are older than it.
    closed_by_proxy(&mut held[HELD - MAX], Instant::now() + STEP_TIMEOUT);
    let evicted_at_most = HELD - MAX + PROBES;
    assert!(HELD > evicted_at_most);
    for stream in &held[evicted_at_most..] {
        assert!(still_open(stream), "a recent connection was closed");
    }
    until("the evictions are counted", || {
        closed_total(admin, "evicted") > (HELD - MAX) as u64
    });
    assert!(metric(admin, "sluice_admin_connections_open") <= MAX as u64 + 1);
    assert_eq!(closed_total(admin, "header_timeout"), 0);
}

// (d) A TCP listener whose cluster lists a dead backend before a live one: every session fails
// over and succeeds, the dead backend's failures and reachability show, and the listener's
// sessions and bytes are what the clients sent and got back.
#[test]
fn metrics_show_a_listeners_sessions_and_bytes_and_a_dead_first_backend() {
    let (dead, live) = (refused_port(), echo_backend().port());
    let config = format!(
        "[[listener]]\nname = \"plain\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\ncluster = \"local\"\n\n\
         [cluster.local]\nbackends = [\"127.0.0.1:{dead}\", \"127.0.0.1:{live}\"]\n\
         ready_requires = \"any\"\nprobe_interval = \"100ms\"\n\n\
         [admin]\nbind = \"127.0.0.1:0\"\n"
    );
    let sluice = SLUICE.run(&config, "admin-metrics.toml");
    let (admin, proxy) = (sluice.admin_addr(), sluice.listening_addr());
    let up =
        |port: u16| format!("sluice_backend_up{{cluster=\"local\",backend=\"127.0.0.1:{port}\"}}");
    until("the first probe has found the live backend", || {
        metric(admin, &up(live)) == 1
    });
    assert_eq!(metric(admin, &up(dead)), 0);
    assert_eq!(
        metric(admin, "sluice_backend_reachable{cluster=\"local\"}"),
        1
    );

    let failures = format!(
        "sluice_backend_connect_failures_total{{cluster=\"local\",backend=\"127.0.0.1:{dead}\"}}"
    );
    assert_eq!(metric(admin, &failures), 0, "nothing has connected yet");
    let sent: [&[u8]; 3] = [b"one", b"twenty-three bytes long", &[7; 4000]];
    for bytes in sent {
        let mut client = TcpStream::connect(proxy).unwrap();
        client.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
        client.write_all(bytes).unwrap();
        let mut echoed = vec![0; bytes.len()];
        client.read_exact(&mut echoed).unwrap();
        assert_eq!(
            echoed, bytes,
            "served by the live backend after the dead one"
        );
    }
    let total: u64 = sent.iter().map(|bytes| bytes.len() as u64).sum();
    until("the three sessions have closed", || {
        metric(
            admin,
            "sluice_listener_session_closes_total{listener=\"plain\",reason=\"client_closed\"}",
        ) == 3
    });
    assert_eq!(
        metric(admin, &failures),
        3,
        "one failed attempt per session"
    );
    assert_eq!(
        metric(
            admin,
            &format!(
                "sluice_backend_connect_failures_total{{cluster=\"local\",backend=\"127.0.0.1:{live}\"}}"
            )
        ),
        0
    );
    assert_eq!(
        metric(admin, "sluice_backend_connections_total{cluster=\"local\"}"),
        3
    );
    assert_eq!(
        metric(admin, "sluice_listener_sessions_total{listener=\"plain\"}"),
        3
    );
    assert_eq!(metric(admin, "sluice_sessions_total"), 3);
    for direction in ["from_client", "from_backend"] {
        assert_eq!(
            metric(
                admin,
                &format!("sluice_bytes_total{{listener=\"plain\",direction=\"{direction}\"}}")
            ),
            total,
            "{direction}"
        );
    }

    // The build and the process.
    let (_, body) = http_get(admin, "/metrics");
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        body.contains(&format!("\nsluice_build_info{{version=\"{version}\"}} 1\n")),
        "{body}"
    );
    assert!(metric(admin, "process_resident_memory_bytes") > 0);
    assert!(metric(admin, "process_open_fds") > 0);
    assert!(metric(admin, "process_max_fds") > 0);
    let started = body
        .lines()
        .find_map(|line| line.strip_prefix("process_start_time_seconds "))
        .and_then(|value| value.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no process_start_time_seconds in\n{body}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        started <= now + 1.0 && started > now - 600.0,
        "the proxy started at {started}, now is {now}"
    );

    // A scraper that asks for OpenMetrics gets it.
    let mut stream = TcpStream::connect(admin).unwrap();
    stream.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    stream
        .write_all(
            b"GET /metrics HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\n\
              Accept: application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3\r\n\r\n",
        )
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert!(
        body.contains("sluice_listener_sessions_total{listener=\"plain\"} 3\n"),
        "{body}"
    );
    let families = parsed_by_prometheus_client("openmetrics", body).len();
    assert!(families > 20, "{families} metric families");
    // And a plain request the Prometheus text format.
    let mut stream = TcpStream::connect(admin).unwrap();
    stream.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{response}"
    );
    assert!(!response.contains("# EOF"));
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    let families = parsed_by_prometheus_client("prometheus", body).len();
    assert!(families > 20, "{families} metric families");
}

/// Parses a scrape with the Prometheus project's own Python client (Debian's
/// `python3-prometheus-client`, installed by the test script): `format` is `prometheus` (text
/// 0.0.4) or `openmetrics`. Its parsers refuse what Prometheus would; the names of the metric
/// families read (a counter's without `_total`, as the parser names them).
fn parsed_by_prometheus_client(format: &str, body: &str) -> Vec<String> {
    let parser = match format {
        "openmetrics" => "prometheus_client.openmetrics.parser",
        _ => "prometheus_client.parser",
    };
    let script = format!(
        "import sys\nfrom {parser} import text_string_to_metric_families as parse\n\
         for family in parse(sys.stdin.read()):\n    print(family.name)\n"
    );
    let mut child = std::process::Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("/usr/bin/python3 (scripts/install-deps.sh): {err}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the {format} scrape does not parse: {}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Every metric `docs/operations.md` lists, read from the first cell of its metric tables.
fn documented_metrics() -> Vec<String> {
    let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/operations.md");
    let text = std::fs::read_to_string(docs).unwrap();
    let mut names = Vec::new();
    for line in text.lines() {
        let Some(cell) = line
            .strip_prefix("| `")
            .and_then(|rest| rest.split(" |").next())
        else {
            continue;
        };
        for quoted in cell.split('`').step_by(2) {
            let name: String = quoted
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if name.starts_with("sluice_") || name.starts_with("process_") {
                names.push(name);
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// A `sluice user add` of `user` (SCRAM-SHA-256) to a new users file named `name`.
fn users_file(name: &str, user: &str, password: &str) -> std::path::PathBuf {
    let path = sluice_tests::process::temp_path(name);
    let _ = std::fs::remove_file(&path);
    let mut child = std::process::Command::new(SLUICE)
        .args(["user", "add", "--mechanism", "scram-sha-256", "--users"])
        .arg(&path)
        .arg(user)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    path
}

/// Users depend on the metrics the operations guide documents being there to alert on: with
/// every feature that owns a metric configured (TLS, SASL termination, ACLs, a quota, a
/// tenant stage, the audit sink), a scrape parsed by the Prometheus project's own parser has
/// every documented family.
#[test]
fn every_documented_metric_is_in_a_scrape_prometheus_client_parses() {
    let documented = documented_metrics();
    assert!(documented.len() > 50, "{documented:?}");
    let dir = sluice_tests::certs::temp_dir("admin-every-metric");
    let (cert, key) = sluice_tests::certs::TestCa::new("every-metric CA")
        .issue(&["localhost"])
        .write_to(&dir, "server");
    let users = users_file("every-metric-users.toml", "alice", "alice-password");
    let rules = dir.join("acl.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nprincipal = \"*\"\nresource = \"topic\"\nname = \"*\"\noperations = [\"all\"]\n",
    )
    .unwrap();
    let bootstrap = sluice_tests::kafka_wire::free_port_block(3);
    let config = format!(
        r#"[admin]
bind = "127.0.0.1:0"

[[listener]]
name = "plain"
bind = "127.0.0.1:0"
protocol = "tcp"
cluster = "local"
[listener.tls]
cert = "{cert}"
key = "{key}"

[[listener]]
name = "kafka"
bind = "127.0.0.1:{bootstrap}"
protocol = "kafka"
cluster = "kafka"
gateway = "port-per-broker"
advertised_host = "127.0.0.1"
broker_port_start = {brokers}
max_brokers = 3
[listener.sasl]
mode = "terminate"
mechanisms = ["SCRAM-SHA-256"]
users = "{users}"
[listener.authorization]
rules = "{rules}"
[[listener.stage]]
kind = "quota"
per = "client_id"
produce_bytes_per_second = "1MiB"
[[listener.stage]]
kind = "tenant"
prefix = "{{principal}}."
tenants = ["alice"]

[cluster.local]
backends = ["127.0.0.1:{refused}"]

[cluster.kafka]
backends = ["127.0.0.1:{refused}"]
ready_requires = "any"

[audit]
sink = "file"
path = "{trail}"
events = ["connection"]
"#,
        cert = cert.display(),
        key = key.display(),
        brokers = bootstrap + 1,
        users = users.display(),
        rules = rules.display(),
        refused = refused_port(),
        trail = dir.join("audit.jsonl").display(),
    );
    let sluice = SLUICE.run(&config, "admin-every-metric.toml");
    let (_, body) = http_get(sluice.admin_addr(), "/metrics");
    let families = parsed_by_prometheus_client("prometheus", &body);
    let missing: Vec<_> = documented
        .iter()
        .filter(|name| {
            let family = name.strip_suffix("_total").unwrap_or(name);
            !families
                .iter()
                .any(|parsed| parsed == family || parsed == *name)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "documented but not scraped: {missing:?}\n{body}"
    );
}
