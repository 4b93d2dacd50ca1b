//! Client load for the upgrade tests, on threads against the echo backend through the proxy:
//! a paced loop of fresh connections and long-lived streaming sessions, each checking every
//! echoed byte and failing the test on any refusal, reset or difference.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use sluice_tests::STEP_TIMEOUT;

/// Fresh connections on threads, each one request and its echo, paced to `per_second` in all;
/// any failure (refused, reset, wrong echo) panics its thread and fails the test at `finish`.
pub(crate) struct ConnectLoop {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl ConnectLoop {
    const THREADS: u64 = 10;

    pub(crate) fn start(addr: SocketAddr, per_second: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let gap = Duration::from_secs(Self::THREADS) / u32::try_from(per_second).unwrap();
        let threads = (0..Self::THREADS)
            .map(|t| {
                let (stop, done) = (stop.clone(), done.clone());
                thread::spawn(move || {
                    let start = Instant::now();
                    // Bounded: at most ten minutes of connections at this pace.
                    for i in 0..(600 * per_second / Self::THREADS) {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let n = t * 10_000_000 + i;
                        if let Err(err) = one_request(addr, n) {
                            panic!("connection {i} of thread {t} failed: {err}");
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                        let next = start + gap * u32::try_from(i + 1).unwrap();
                        thread::sleep(next.saturating_duration_since(Instant::now()));
                    }
                })
            })
            .collect();
        Self {
            stop,
            done,
            threads,
        }
    }

    pub(crate) fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Stops the threads, failing the test if any connection failed; the count made.
    pub(crate) fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            assert!(
                thread.join().is_ok(),
                "a connection failed (see the panic above)"
            );
        }
        self.done.load(Ordering::Relaxed)
    }
}

pub(crate) fn one_request(addr: SocketAddr, n: u64) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(STEP_TIMEOUT))?;
    writeln!(stream, "req {n}")?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    if line.trim_end() != format!("req {n}") {
        return Err(std::io::Error::other(format!("echo {line:?} for req {n}")));
    }
    Ok(())
}

/// Long-lived sessions on threads: each streams 1 KiB chunks, checks every echoed byte, closes
/// its write half after `length` and expects exactly its bytes back before EOF; then the next.
pub(crate) struct Streams {
    stop: Arc<AtomicBool>,
    sessions: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Streams {
    pub(crate) fn start(addr: SocketAddr, count: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sessions = Arc::new(AtomicU64::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let threads = (0..count)
            .map(|t| {
                let (stop, sessions, bytes) = (stop.clone(), sessions.clone(), bytes.clone());
                // 300 ms to ~1.3 s: well within the drain window.
                let length = Duration::from_millis(300 + t * 20);
                thread::spawn(move || {
                    for s in 0..10_000u64 {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        match stream_once(addr, length, (t * 31 + s) as u8) {
                            Ok(sent) => {
                                bytes.fetch_add(sent, Ordering::Relaxed);
                                sessions.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(err) => panic!("session {s} of stream {t} failed: {err}"),
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            sessions,
            bytes,
            threads,
        }
    }

    /// Stops after the sessions under way; (sessions, bytes) echoed intact.
    pub(crate) fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            assert!(
                thread.join().is_ok(),
                "a session failed (see the panic above)"
            );
        }
        (
            self.sessions.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

fn stream_once(addr: SocketAddr, length: Duration, seed: u8) -> std::io::Result<u64> {
    use std::io::Read as _;
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(STEP_TIMEOUT))?;
    let start = Instant::now();
    let mut sent = 0u64;
    let mut chunk = [0u8; 1024];
    let mut back = [0u8; 1024];
    let mut k = 0u8;
    while start.elapsed() < length {
        chunk
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = seed ^ k ^ (i as u8));
        stream.write_all(&chunk)?;
        stream.read_exact(&mut back)?;
        if back != chunk {
            return Err(std::io::Error::other("echoed bytes differ"));
        }
        sent += chunk.len() as u64;
        k = k.wrapping_add(1);
        thread::sleep(Duration::from_millis(10));
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest)?;
    if !rest.is_empty() {
        return Err(std::io::Error::other("bytes after the last echo"));
    }
    Ok(sent)
}
