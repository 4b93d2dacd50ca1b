//! The audit sink of `[audit]`: events become JSON lines (see [`json`]) on the data path and
//! are queued, bounded, for a writer thread that appends them to a file or standard output in
//! batches. The data path never waits: a full queue drops the event, counts it, and the writer
//! reports the drops as one `audit_dropped` line once it catches up. SIGUSR1 reopens the file
//! (logrotate); a reload's successor opens it itself.

mod json;
mod kafka;

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, mpsc};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use proxy_backend::Connector;
use proxy_core::audit::{AuditEvent, AuditKind, AuditSink};
use tracing::{info, warn};

use self::kafka::KafkaSink;
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
#[derive(Clone)]
enum Target {
    File(PathBuf),
    Stdout,
    Kafka {
        connector: Connector,
        cluster: String,
        topic: String,
        partition: i32,
    },
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
    pub(crate) fn start(config: &AuditConfig, connector: &Connector) -> anyhow::Result<Arc<Self>> {
        Self::start_held(config, connector, None)
    }

    /// [`Self::start`], the writer waiting for `hold` to be released (sent to or dropped)
    /// before it writes anything: a full queue, for tests.
    fn start_held(
        config: &AuditConfig,
        connector: &Connector,
        hold: Option<Receiver<()>>,
    ) -> anyhow::Result<Arc<Self>> {
        let target = match &config.sink {
            AuditSinkConfig::File(path) => Target::File(path.clone()),
            AuditSinkConfig::Stdout => Target::Stdout,
            AuditSinkConfig::Kafka {
                cluster,
                topic,
                partition,
            } => Target::Kafka {
                connector: connector.clone(),
                cluster: cluster.clone(),
                topic: topic.clone(),
                partition: *partition,
            },
        };
        let out = open(&target).map_err(|err| match &target {
            Target::File(path) => {
                anyhow::anyhow!("[audit] path: cannot open {}: {err}", path.display())
            }
            Target::Stdout => anyhow::anyhow!("[audit]: cannot write to standard output: {err}"),
            Target::Kafka { .. } => anyhow::anyhow!("[audit]: cannot start the Kafka sink: {err}"),
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

/// Where the writer thread writes.
enum Output {
    /// A file or standard output: batches of whole lines, one `write` each.
    Stream(Box<dyn Write + Send>),
    /// A Kafka topic: one record batch per batch of lines.
    Kafka(Box<KafkaSink>),
}

/// The writer thread's state.
struct Writer {
    target: Target,
    out: Output,
    stats: Arc<AuditStats>,
    dropping_since: Arc<Mutex<Option<SystemTime>>>,
    reopen: Arc<AtomicBool>,
    /// Drops already reported in an `audit_dropped` line.
    reported_drops: u64,
}

fn open(target: &Target) -> io::Result<Output> {
    Ok(match target {
        Target::File(path) => Output::Stream(Box::new(
            OpenOptions::new().create(true).append(true).open(path)?,
        )),
        Target::Stdout => Output::Stream(Box::new(io::stdout())),
        Target::Kafka {
            connector,
            cluster,
            topic,
            partition,
        } => Output::Kafka(Box::new(KafkaSink::new(
            connector.clone(),
            cluster,
            topic,
            *partition,
        )?)),
    })
}

impl Writer {
    fn run(mut self, rx: Receiver<Message>) {
        let mut lines: Vec<String> = Vec::new();
        // Bounded per round by the batch size; the loop ends when the sink finishes or every
        // sender is gone.
        loop {
            let first = match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(message) => Some(message),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut finished = None;
            let mut bytes = 0;
            let mut next = first;
            while let Some(message) = next.take() {
                match message {
                    Message::Line(line) => {
                        bytes += line.len() + 1;
                        lines.push(line);
                    }
                    Message::Reopen => {}
                    Message::Finish(done) => finished = Some(done),
                }
                if finished.is_some() || bytes >= MAX_BATCH_BYTES {
                    break;
                }
                next = rx.try_recv().ok();
            }
            if self.reopen.swap(false, Ordering::Relaxed) {
                self.reopen_now();
            }
            if !lines.is_empty() || self.drops_unreported() {
                self.write(std::mem::take(&mut lines));
            }
            if let Some(done) = finished {
                if let Output::Stream(out) = &mut self.out {
                    let _ = out.flush();
                }
                let _ = done.send(());
                return;
            }
        }
    }

    fn drops_unreported(&self) -> bool {
        self.stats.dropped.load(Ordering::Relaxed) != self.reported_drops
    }

    /// Writes `lines`, after one `audit_dropped` line for the drops not yet reported. A batch
    /// that cannot be written is lost: its events count as dropped, reported when a write
    /// works again.
    fn write(&mut self, lines: Vec<String>) {
        let dropped = self.stats.dropped.load(Ordering::Relaxed);
        let report = (dropped != self.reported_drops).then(|| {
            let since = self.dropping_since.lock().unwrap_or_else(SystemTime::now);
            json::dropped_line(dropped - self.reported_drops, since)
        });
        let events = lines.len() as u64;
        let mut all = Vec::with_capacity(lines.len() + 1);
        all.extend(report.clone());
        all.extend(lines);
        let written = match &mut self.out {
            Output::Stream(out) => {
                let mut batch = Vec::with_capacity(all.iter().map(|line| line.len() + 1).sum());
                for line in &all {
                    batch.extend_from_slice(line.as_bytes());
                    batch.push(b'\n');
                }
                out.write_all(&batch)
                    .and_then(|()| out.flush())
                    .map_err(|err| err.to_string())
            }
            Output::Kafka(sink) => sink.send(&all),
        };
        match written {
            Ok(()) => {
                if report.is_some() {
                    self.reported_drops = dropped;
                    *self.dropping_since.lock() = None;
                }
            }
            Err(reason) => {
                self.stats.dropped.fetch_add(events, Ordering::Relaxed);
                self.dropping_since
                    .lock()
                    .get_or_insert_with(SystemTime::now);
                // Counted; a stream is reopened for the next batch (it may have been removed).
                let count = self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                if count < 10 {
                    warn!(reason.detail = %reason, events, "audit: cannot write events; dropped");
                }
                if matches!(self.out, Output::Stream(_)) {
                    self.reopen.store(true, Ordering::Relaxed);
                }
            }
        }
    }

    fn reopen_now(&mut self) {
        if matches!(self.out, Output::Kafka(_)) {
            return;
        }
        match open(&self.target) {
            Ok(out) => {
                if let Output::Stream(old) = &mut self.out {
                    let _ = old.flush();
                }
                self.out = out;
                info!("audit: sink reopened");
            }
            Err(err) => {
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                warn!(error = %err, "audit: cannot reopen the sink; writing to the old one");
            }
        }
    }
}

#[cfg(test)]
mod tests;
