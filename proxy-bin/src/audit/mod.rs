//! The audit sink of `[audit]`: events become JSON lines (see [`json`]) on the data path and
//! are queued, bounded, for a writer thread that appends them to a file or standard output in
//! batches. The data path never waits: a full queue drops the event, counts it, and the writer
//! reports the drops as one `audit_dropped` line once it catches up. SIGUSR1 reopens the file
//! (logrotate); a reload's successor opens it itself.

mod json;

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, mpsc};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use proxy_core::audit::{AuditEvent, AuditKind, AuditSink};
use tracing::{info, warn};

use crate::config::{AuditConfig, AuditSinkConfig};

/// Lines written in one `write`, at most (they are whole lines: writers of the same file in
/// two processes during a reload never split each other's lines).
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// How long shutdown waits for the queue to be written.
const FINISH_TIMEOUT: Duration = Duration::from_secs(5);

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct AuditStats {
    /// Events queued, by kind ([`AuditKind::ALL`] order).
    pub(crate) events: [AtomicU64; AuditKind::ALL.len()],
    /// Events dropped because the queue was full.
    pub(crate) dropped: AtomicU64,
    /// Writes that failed.
    pub(crate) write_errors: AtomicU64,
}

enum Message {
    Line(String),
    Reopen,
    Finish(mpsc::Sender<()>),
}

/// Where the writer writes.
#[derive(Debug, Clone)]
enum Target {
    File(PathBuf),
    Stdout,
}

/// The sink sessions report to.
#[derive(Debug)]
pub(crate) struct AuditWriter {
    wanted: Vec<AuditKind>,
    queue: SyncSender<Message>,
    stats: Arc<AuditStats>,
    /// When the first drop not yet reported happened.
    dropping_since: Arc<Mutex<Option<SystemTime>>>,
    reopen: Arc<AtomicBool>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Line(_) => "Line",
            Self::Reopen => "Reopen",
            Self::Finish(_) => "Finish",
        })
    }
}

impl AuditWriter {
    /// Opens the sink (a file that cannot be opened is an error naming it) and starts its
    /// writer thread.
    pub(crate) fn start(config: &AuditConfig) -> anyhow::Result<Arc<Self>> {
        Self::start_held(config, None)
    }

    /// [`Self::start`], the writer waiting for `hold` to be released (sent to or dropped)
    /// before it writes anything: a full queue, for tests.
    fn start_held(config: &AuditConfig, hold: Option<Receiver<()>>) -> anyhow::Result<Arc<Self>> {
        let target = match &config.sink {
            AuditSinkConfig::File(path) => Target::File(path.clone()),
            AuditSinkConfig::Stdout => Target::Stdout,
        };
        let out = open(&target).map_err(|err| match &target {
            Target::File(path) => {
                anyhow::anyhow!("[audit] path: cannot open {}: {err}", path.display())
            }
            Target::Stdout => anyhow::anyhow!("[audit]: cannot write to standard output: {err}"),
        })?;
        let (queue, rx) = mpsc::sync_channel(config.queue);
        let stats = Arc::new(AuditStats::default());
        let dropping_since = Arc::new(Mutex::new(None));
        let reopen = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            target,
            out,
            stats: stats.clone(),
            dropping_since: dropping_since.clone(),
            reopen: reopen.clone(),
            reported_drops: 0,
        };
        std::thread::Builder::new()
            .name("sluice-audit".into())
            .spawn(move || {
                if let Some(hold) = hold {
                    let _ = hold.recv();
                }
                writer.run(rx);
            })
            .map_err(|err| anyhow::anyhow!("[audit]: cannot start the writer thread: {err}"))?;
        Ok(Arc::new(Self {
            wanted: config.events.clone(),
            queue,
            stats,
            dropping_since,
            reopen,
        }))
    }

    /// The counters.
    pub(crate) fn stats(&self) -> &Arc<AuditStats> {
        &self.stats
    }

    /// Reopens the file at its path before the next write (SIGUSR1, after logrotate moved it).
    pub(crate) fn reopen(&self) {
        self.reopen.store(true, Ordering::Relaxed);
        // Wakes the writer if it is idle; when the queue is full it is busy and sees the flag.
        let _ = self.queue.try_send(Message::Reopen);
    }

    /// Writes what is queued and stops the writer, waiting at most [`FINISH_TIMEOUT`]; later
    /// events are dropped.
    pub(crate) fn finish(&self) {
        let (done, wait) = mpsc::channel();
        // Blocking for room, at shutdown: every queued line goes first.
        if self.queue.send(Message::Finish(done)).is_ok()
            && wait.recv_timeout(FINISH_TIMEOUT).is_err()
        {
            warn!("audit: the queue was not written within {FINISH_TIMEOUT:?}");
        }
    }
}

impl AuditSink for AuditWriter {
    fn wants(&self, kind: AuditKind) -> bool {
        self.wanted.contains(&kind)
    }

    fn record(&self, event: AuditEvent) {
        let kind = event.kind();
        let line = json::line(&event);
        match self.queue.try_send(Message::Line(line)) {
            Ok(()) => {
                let index = AuditKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
                self.stats.events[index].fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                self.dropping_since
                    .lock()
                    .get_or_insert_with(SystemTime::now);
            }
        }
    }
}

/// The writer thread's state.
struct Writer {
    target: Target,
    out: Box<dyn Write + Send>,
    stats: Arc<AuditStats>,
    dropping_since: Arc<Mutex<Option<SystemTime>>>,
    reopen: Arc<AtomicBool>,
    /// Drops already reported in an `audit_dropped` line.
    reported_drops: u64,
}

fn open(target: &Target) -> io::Result<Box<dyn Write + Send>> {
    Ok(match target {
        Target::File(path) => Box::new(OpenOptions::new().create(true).append(true).open(path)?),
        Target::Stdout => Box::new(io::stdout()),
    })
}

impl Writer {
    fn run(mut self, rx: Receiver<Message>) {
        let mut batch = Vec::with_capacity(MAX_BATCH_BYTES);
        // Bounded per round by the batch size; the loop ends when the sink finishes or every
        // sender is gone.
        loop {
            let first = match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(message) => Some(message),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut finished = None;
            let mut next = first;
            while let Some(message) = next.take() {
                match message {
                    Message::Line(line) => {
                        batch.extend_from_slice(line.as_bytes());
                        batch.push(b'\n');
                    }
                    Message::Reopen => {}
                    Message::Finish(done) => finished = Some(done),
                }
                if finished.is_some() || batch.len() >= MAX_BATCH_BYTES {
                    break;
                }
                next = rx.try_recv().ok();
            }
            self.report_drops(&mut batch);
            if self.reopen.swap(false, Ordering::Relaxed) {
                self.reopen_now();
            }
            if !batch.is_empty() {
                self.write(&batch);
                batch.clear();
            }
            if let Some(done) = finished {
                let _ = self.out.flush();
                let _ = done.send(());
                return;
            }
        }
    }

    /// Adds one `audit_dropped` line for the drops since the last one, now that there is room.
    fn report_drops(&mut self, batch: &mut Vec<u8>) {
        let dropped = self.stats.dropped.load(Ordering::Relaxed);
        if dropped == self.reported_drops {
            return;
        }
        let since = self
            .dropping_since
            .lock()
            .take()
            .unwrap_or_else(SystemTime::now);
        batch
            .extend_from_slice(json::dropped_line(dropped - self.reported_drops, since).as_bytes());
        batch.push(b'\n');
        self.reported_drops = dropped;
    }

    fn reopen_now(&mut self) {
        match open(&self.target) {
            Ok(out) => {
                let _ = self.out.flush();
                self.out = out;
                info!("audit: sink reopened");
            }
            Err(err) => {
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                warn!(error = %err, "audit: cannot reopen the sink; writing to the old one");
            }
        }
    }

    fn write(&mut self, batch: &[u8]) {
        if let Err(err) = self.out.write_all(batch).and_then(|()| self.out.flush()) {
            // Counted; the file is reopened for the next batch (it may have been removed).
            let count = self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
            if count < 10 {
                warn!(error = %err, "audit: cannot write events");
            }
            self.reopen.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests;
