//! Connection errors, counted by kind instead of ending a run, and the connect step every mode
//! shares.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

/// How long one connection attempt may take before it counts as a timeout.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors met by a run's connections, by kind.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Failures {
    /// The target refused the connection (nobody listening, or its backlog overflowed).
    pub(crate) refused: u64,
    /// The peer reset the connection or closed it before answering in full.
    pub(crate) reset: u64,
    /// A connection or an exchange did not finish within its deadline.
    pub(crate) timeout: u64,
    /// Anything else (out of ports or file descriptors, ...).
    pub(crate) other: u64,
}

impl Failures {
    /// Counts `err` under its kind.
    pub(crate) fn record(&mut self, err: &io::Error) {
        match err.kind() {
            io::ErrorKind::ConnectionRefused => self.refused += 1,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => self.reset += 1,
            io::ErrorKind::TimedOut => self.timeout += 1,
            _ => self.other += 1,
        }
    }

    /// Adds another's counts to these.
    pub(crate) fn add(&mut self, other: Failures) {
        self.refused += other.refused;
        self.reset += other.reset;
        self.timeout += other.timeout;
        self.other += other.other;
    }

    /// Every failure, whatever its kind.
    pub(crate) fn total(&self) -> u64 {
        self.refused + self.reset + self.timeout + self.other
    }
}

/// Connects to `target` with Nagle's algorithm off (as Sluice and HAProxy do on their sides),
/// giving up at `deadline` or after [`CONNECT_TIMEOUT`], whichever is first.
pub(crate) async fn connect(target: SocketAddr, deadline: Instant) -> io::Result<TcpStream> {
    let deadline = deadline.min(Instant::now() + CONNECT_TIMEOUT);
    let stream = timeout_at(deadline, TcpStream::connect(target))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Opens `count` connections one after another, stopping at `deadline`; returns those that
/// opened and the failures of the rest.
pub(crate) async fn connect_all(
    target: SocketAddr,
    count: usize,
    deadline: Instant,
) -> (Vec<TcpStream>, Failures) {
    let mut streams = Vec::with_capacity(count);
    let mut failures = Failures::default();
    for _ in 0..count {
        if Instant::now() >= deadline {
            failures.timeout += 1;
            continue;
        }
        match connect(target, deadline).await {
            Ok(stream) => streams.push(stream),
            Err(err) => failures.record(&err),
        }
    }
    (streams, failures)
}
