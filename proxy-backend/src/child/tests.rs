//! Real processes (`/bin/sh`, coreutils) behind `ChildIo`; every wait is bounded.

use std::io;
use std::path::Path;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, sleep, timeout};

use super::{ChildIo, ChildReaper, ChildSpec};

const BOUND: Duration = Duration::from_secs(10);
const SHORT_STOP: Duration = Duration::from_millis(200);

fn spec(argv: &[&str], stop_timeout: Duration) -> ChildSpec {
    ChildSpec {
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        stop_timeout,
    }
}

fn sh(script: &str, stop_timeout: Duration) -> ChildSpec {
    spec(&["/bin/sh", "-c", script], stop_timeout)
}

/// State letter and parent pid from `/proc/PID/stat`, or `None` once the entry is gone.
fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) S ppid ...`; comm may contain spaces and parentheses, so split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// The zombie check: the process is gone, or at least it is not a zombie we were meant to reap.
fn assert_not_our_zombie(pid: u32) {
    if let Some((state, ppid)) = proc_stat(pid) {
        assert!(
            !(state == 'Z' && ppid == std::process::id()),
            "pid {pid} is a zombie child of the test process"
        );
    }
}

/// Waits (bounded) until our child `pid` has been reaped: its /proc entry is gone.
async fn wait_reaped(pid: u32) {
    let gone = async {
        while Path::new(&format!("/proc/{pid}")).exists() {
            sleep(Duration::from_millis(10)).await;
        }
    };
    timeout(BOUND, gone)
        .await
        .unwrap_or_else(|_| panic!("pid {pid} not reaped: {:?}", proc_stat(pid)));
}

/// Waits (bounded) until `pid`, not necessarily our child, is dead: gone, or a zombie that its
/// adopter (init) has not reaped yet.
async fn wait_dead(pid: u32) {
    let dead = async {
        while proc_stat(pid).is_some_and(|(state, _)| state != 'Z') {
            sleep(Duration::from_millis(10)).await;
        }
    };
    timeout(BOUND, dead)
        .await
        .unwrap_or_else(|_| panic!("pid {pid} still running: {:?}", proc_stat(pid)));
    assert_not_our_zombie(pid);
}

async fn wait_live(reaper: &ChildReaper, n: usize) {
    let settled = async {
        while reaper.live() != n {
            sleep(Duration::from_millis(10)).await;
        }
    };
    timeout(BOUND, settled)
        .await
        .unwrap_or_else(|_| panic!("live() stayed {} instead of {n}", reaper.live()));
}

/// Reads one `\n`-terminated line, a byte at a time so nothing past it is consumed.
async fn read_line(io: &mut ChildIo) -> String {
    let mut line = Vec::new();
    let read = async {
        loop {
            let b = io.read_u8().await.expect("read line");
            if b == b'\n' {
                break;
            }
            line.push(b);
        }
    };
    timeout(BOUND, read).await.expect("line in time");
    String::from_utf8(line).expect("utf-8 line")
}

async fn echo_round_trip(io: &mut ChildIo, msg: &[u8]) {
    let mut back = vec![0; msg.len()];
    timeout(BOUND, async {
        io.write_all(msg).await.expect("write");
        io.read_exact(&mut back).await.expect("read");
    })
    .await
    .expect("echo in time");
    assert_eq!(back, msg);
}

#[tokio::test]
async fn cat_echoes_bytes_and_half_close_ends_it() {
    let reaper = ChildReaper::new();
    let (io, pid) = reaper
        .spawn(&spec(&["cat"], Duration::from_secs(2)))
        .unwrap();
    assert_eq!(reaper.live(), 1);

    let sent: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
    let (mut rd, mut wr) = tokio::io::split(io);
    let write = async {
        wr.write_all(&sent).await.unwrap();
        wr.shutdown().await.unwrap();
        // Writing after the half-close is an error, not a panic.
        let again = wr.write_all(b"late").await.unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::BrokenPipe);
    };
    let mut received = Vec::new();
    let read = async {
        // Returns only at EOF: `cat` saw its stdin close and exited.
        rd.read_to_end(&mut received).await.unwrap();
    };
    timeout(BOUND, async { tokio::join!(write, read) })
        .await
        .expect("echo and EOF in time");
    assert_eq!(received.len(), sent.len());
    assert!(received == sent, "echoed bytes differ");

    drop(rd.unsplit(wr));
    wait_live(&reaper, 0).await;
    wait_reaped(pid).await;
}

#[tokio::test]
async fn child_ignoring_term_and_eof_is_killed() {
    let reaper = ChildReaper::new();
    let script = r#"trap "" TERM; echo ready; while :; do sleep 0.05; done"#;
    let (mut io, pid) = reaper.spawn(&sh(script, SHORT_STOP)).unwrap();
    // The trap is in place before the stop starts.
    assert_eq!(read_line(&mut io).await, "ready");

    let started = Instant::now();
    drop(io);
    wait_reaped(pid).await;
    let took = started.elapsed();
    // Both grace periods ran (stdin EOF, then SIGTERM) before SIGKILL ended it.
    assert!(
        took >= SHORT_STOP * 2 - Duration::from_millis(50),
        "killed too early: {took:?}"
    );
    assert!(
        took <= SHORT_STOP * 2 + Duration::from_secs(1),
        "killed too late: {took:?}"
    );
    wait_live(&reaper, 0).await;
    assert_not_our_zombie(pid);
}

#[tokio::test]
async fn child_killed_from_outside_looks_like_a_close() {
    let reaper = ChildReaper::new();
    let (mut doomed, doomed_pid) = reaper.spawn(&spec(&["cat"], SHORT_STOP)).unwrap();
    let (mut other, _other_pid) = reaper.spawn(&spec(&["cat"], SHORT_STOP)).unwrap();
    echo_round_trip(&mut doomed, b"before").await;

    let pid = Pid::from_raw(i32::try_from(doomed_pid).unwrap()).unwrap();
    kill_process(pid, Signal::KILL).unwrap();

    let mut buf = [0u8; 16];
    let read = timeout(BOUND, doomed.read(&mut buf))
        .await
        .expect("read in time");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "expected EOF or an error, got {read:?}"
    );
    // The supervisor reaps the dead child while the session still holds its `ChildIo`. Wait
    // for that before writing: the kernel may release the child's stdout (EOF above) a moment
    // before its stdin, and a write in between would still find a reader.
    wait_reaped(doomed_pid).await;
    let write = timeout(BOUND, doomed.write_all(b"into the void"))
        .await
        .expect("write in time");
    let error = write.expect_err("writing to a dead child succeeded");
    assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
    wait_live(&reaper, 1).await;
    echo_round_trip(&mut other, b"still here").await;

    drop(doomed);
    drop(other);
    wait_live(&reaper, 0).await;
}

#[tokio::test]
async fn grandchildren_in_the_group_are_stopped_too() {
    let reaper = ChildReaper::new();
    let script = "sleep 30 & echo $!; exec cat";
    let (mut io, pid) = reaper.spawn(&sh(script, SHORT_STOP)).unwrap();
    let grandchild: u32 = read_line(&mut io).await.parse().unwrap();
    assert!(
        proc_stat(grandchild).is_some_and(|(state, _)| state != 'Z'),
        "grandchild not running"
    );

    drop(io);
    wait_live(&reaper, 0).await;
    wait_reaped(pid).await;
    wait_dead(grandchild).await;
}

#[tokio::test]
async fn stop_all_stops_every_live_child() {
    let reaper = ChildReaper::new();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(reaper.spawn(&spec(&["cat"], SHORT_STOP)).unwrap());
    }
    let script = r#"trap "" TERM; echo ready; while :; do sleep 0.05; done"#;
    let (mut stubborn, stubborn_pid) = reaper.spawn(&sh(script, SHORT_STOP)).unwrap();
    assert_eq!(read_line(&mut stubborn).await, "ready");
    // A clone is the same reaper.
    let handle = reaper.clone();
    assert_eq!(handle.live(), 4);

    let started = Instant::now();
    timeout(BOUND, handle.stop_all())
        .await
        .expect("stop_all in time");
    assert!(started.elapsed() <= SHORT_STOP * 2 + Duration::from_secs(1));
    assert_eq!(reaper.live(), 0);

    wait_reaped(stubborn_pid).await;
    for (mut io, pid) in held {
        wait_reaped(pid).await;
        let mut buf = [0u8; 8];
        let read = timeout(BOUND, io.read(&mut buf))
            .await
            .expect("read in time");
        // A child that had to be stopped under a live session ended early: the session reads
        // EOF if `cat` exited cleanly on stdin's close, or the early-exit error if SIGTERM got it.
        let ended = match &read {
            Ok(0) => true,
            Err(err) => err.kind() == std::io::ErrorKind::ConnectionAborted,
            Ok(_) => false,
        };
        assert!(ended, "expected the end of the child, got {read:?}");
    }
    drop(stubborn);

    // The reaper still spawns after stop_all, and that child is not stopped by the old request.
    let (mut io, _pid) = reaper.spawn(&spec(&["cat"], SHORT_STOP)).unwrap();
    echo_round_trip(&mut io, b"after stop_all").await;
    drop(io);
    wait_live(&reaper, 0).await;
}

#[tokio::test]
async fn stop_all_with_nothing_live_returns_at_once() {
    let reaper = ChildReaper::new();
    timeout(Duration::from_secs(1), reaper.stop_all())
        .await
        .expect("stop_all in time");
}

#[tokio::test]
async fn spawn_errors_are_errors() {
    let reaper = ChildReaper::new();
    let empty = reaper.spawn(&spec(&[], SHORT_STOP)).unwrap_err();
    assert_eq!(empty.kind(), io::ErrorKind::InvalidInput);
    let missing = reaper.spawn(&spec(&["/nonexistent/sluice-child"], SHORT_STOP));
    assert!(missing.is_err());
    assert_eq!(reaper.live(), 0);
}

#[tokio::test]
async fn a_child_killed_by_a_signal_reads_as_an_error_and_a_clean_exit_as_eof() {
    let reaper = ChildReaper::new();
    let (mut killed, pid) = reaper.spawn(&spec(&["cat"], SHORT_STOP)).unwrap();
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    let mut buf = [0u8; 8];
    let read = timeout(BOUND, killed.read(&mut buf))
        .await
        .expect("read in time");
    let err = read.expect_err("a killed child is a backend failure");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted);
    assert!(err.to_string().contains("SIGKILL"), "{err}");

    let (mut clean, _pid) = reaper
        .spawn(&spec(&["sh", "-c", "echo done"], SHORT_STOP))
        .unwrap();
    let mut out = Vec::new();
    timeout(BOUND, clean.read_to_end(&mut out))
        .await
        .expect("read in time")
        .unwrap();
    assert_eq!(out, b"done\n");
}
