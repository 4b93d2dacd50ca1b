//! Idle sessions: what one costs Sluice in resident memory, silent or after one ApiVersions
//! exchange, and the open-file limit so many sessions need.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, ensure};

use crate::SOCKET_TIMEOUT;
use crate::report::say;
use crate::sluice::Sluice;

/// How long idle sessions are left alone before Sluice's memory is read again.
const SETTLE: Duration = Duration::from_secs(1);
/// Backend connections the idle measurement lets Sluice have in flight to the mock: below the
/// mock's listen backlog of 5 (`rd_kafka_mock_broker_start_listener`).
const MOCK_BACKLOG: usize = 4;

/// Each idle session is two descriptors here (the client, and the mock's end of Sluice's
/// backend connection); fail early rather than count refusals.
pub(crate) fn check_fd_limit(sessions: usize) -> anyhow::Result<()> {
    let limits =
        fs::read_to_string("/proc/self/limits").context("cannot read /proc/self/limits")?;
    let soft = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or_else(|| anyhow!("/proc/self/limits has no \"Max open files\" line"))?;
    if soft == "unlimited" {
        return Ok(());
    }
    let soft: usize = soft
        .parse()
        .with_context(|| format!("open file limit {soft:?}"))?;
    let need = 2 * sessions + 512;
    ensure!(
        soft >= need,
        "{sessions} idle sessions need about {need} open files, the limit is {soft}: raise it with `ulimit -n` or lower --idle-sessions"
    );
    Ok(())
}

/// Sluice's resident memory per idle session, in KiB: `count` sessions on the bootstrap port,
/// silent or after one ApiVersions request and its answer; each holds a backend connection to
/// a mock broker too.
pub(crate) fn idle(
    sluice: &Sluice,
    count: usize,
    api_versions: bool,
    step: Duration,
) -> anyhow::Result<f64> {
    let deadline = Instant::now() + step;
    // The port checks at start opened sessions too: let them close.
    sluice.wait_sessions(0, false, deadline)?;
    let before = sluice.status_kib("VmRSS")?;
    let fds_before = open_fds()?;
    let mut sessions = Vec::with_capacity(count);
    for i in 0..count {
        ensure!(
            Instant::now() < deadline,
            "opened only {i} of {count} idle sessions in {step:?}"
        );
        let correlation_id = i32::try_from(i).unwrap_or(i32::MAX);
        let session = open_idle(sluice.bootstrap, api_versions, correlation_id)
            .with_context(|| format!("idle session {i} of {count}"))?;
        sessions.push(session);
        // The mock listens with a backlog of 5 and accepts slowly: beyond it, connections are
        // half-open (Sluice sees them connected, the mock does not) until SYN-ACK retries, and
        // such sessions linger for `half_close_timeout` after the client leaves. A silent
        // session proves nothing, so every few sessions wait until the mock has accepted
        // theirs (each is a client descriptor and an accepted one in this process).
        if !api_versions && (sessions.len() % MOCK_BACKLOG == 0 || sessions.len() == count) {
            let want = fds_before + 2 * sessions.len();
            while open_fds()? < want {
                ensure!(
                    Instant::now() < deadline,
                    "the mock did not accept {want} connections in {step:?}"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    sluice.wait_sessions(count as u64, true, deadline)?;
    std::thread::sleep(SETTLE);
    let after = sluice.status_kib("VmRSS")?;
    let per_session = (after as f64 - before as f64) / count as f64;
    let kind = if api_versions {
        "after ApiVersions"
    } else {
        "silent"
    };
    say(format_args!(
        "  sluice idle, {kind}: {count} sessions, VmRSS {before} -> {after} KiB, {per_session:.2} KiB per session"
    ))?;
    drop(sessions);
    sluice.wait_sessions(0, false, deadline)?;
    Ok(per_session)
}

/// Descriptors this process holds: the idle clients and, as the mock runs here, the mock's
/// accepted ends of Sluice's backend connections.
fn open_fds() -> anyhow::Result<usize> {
    Ok(fs::read_dir("/proc/self/fd")
        .context("cannot list /proc/self/fd")?
        .count())
}

fn open_idle(target: SocketAddr, api_versions: bool, correlation_id: i32) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect_timeout(&target, SOCKET_TIMEOUT)?;
    if !api_versions {
        return Ok(stream);
    }
    stream.set_read_timeout(Some(SOCKET_TIMEOUT))?;
    stream.set_write_timeout(Some(SOCKET_TIMEOUT))?;
    // ApiVersions v0 with request header v1: api key 18, version 0, correlation id, client id.
    let client_id = b"kafka_bench";
    let mut frame = Vec::with_capacity(32);
    frame.extend_from_slice(&(10 + client_id.len() as i32).to_be_bytes());
    frame.extend_from_slice(&18_i16.to_be_bytes());
    frame.extend_from_slice(&0_i16.to_be_bytes());
    frame.extend_from_slice(&correlation_id.to_be_bytes());
    frame.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    frame.extend_from_slice(client_id);
    stream.write_all(&frame)?;
    let mut len = [0_u8; 4];
    stream.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    if !(4..=1 << 20).contains(&len) {
        return Err(invalid(format!("ApiVersions response of {len} bytes")));
    }
    let mut body = vec![0_u8; len];
    stream.read_exact(&mut body)?;
    if body[..4] != correlation_id.to_be_bytes() {
        return Err(invalid(
            "ApiVersions response to another correlation id".to_owned(),
        ));
    }
    Ok(stream)
}
