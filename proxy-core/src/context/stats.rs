//! Per-session counters that outside observers may read while the session runs.
//!
//! The session task is the only writer; readers (the admin endpoint, tests) see relaxed
//! snapshots. Atomics rather than a lock keep the forwarding path free of contention.

use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};

use crate::gate::{ReadGate, Side};

/// Live counters of one session.
#[derive(Debug, Default)]
pub struct SessionStats {
    bytes_from_client: AtomicU64,
    bytes_from_backend: AtomicU64,
    buffered_to_client: AtomicUsize,
    buffered_to_backend: AtomicUsize,
    peak_buffered: AtomicUsize,
    client_gate: AtomicU8,
    backend_gate: AtomicU8,
}

/// A copy of a session's counters at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Bytes read from the client.
    pub bytes_from_client: u64,
    /// Bytes read from the backend.
    pub bytes_from_backend: u64,
    /// Bytes queued in the proxy, not yet written to the client.
    pub buffered_to_client: usize,
    /// Bytes queued in the proxy, not yet written to the backend.
    pub buffered_to_backend: usize,
    /// The most bytes ever queued toward one peer at once.
    pub peak_buffered: usize,
    /// The client side's read gate.
    pub client_gate: ReadGate,
    /// The backend side's read gate.
    pub backend_gate: ReadGate,
}

// === impl SessionStats ===

impl SessionStats {
    /// Counts `n` bytes read from `side`.
    pub fn add_read(&self, side: Side, n: usize) {
        let counter = match side {
            Side::Client => &self.bytes_from_client,
            Side::Backend => &self.bytes_from_backend,
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Records how many bytes are queued toward `side`.
    pub fn set_buffered(&self, side: Side, bytes: usize) {
        let gauge = match side {
            Side::Client => &self.buffered_to_client,
            Side::Backend => &self.buffered_to_backend,
        };
        gauge.store(bytes, Ordering::Relaxed);
        self.peak_buffered.fetch_max(bytes, Ordering::Relaxed);
    }

    /// Publishes the read gate of `side`.
    pub fn set_gate(&self, side: Side, gate: ReadGate) {
        let cell = match side {
            Side::Client => &self.client_gate,
            Side::Backend => &self.backend_gate,
        };
        cell.store(gate.bits(), Ordering::Relaxed);
    }

    /// Bytes read from `side` so far.
    pub fn bytes_from(&self, side: Side) -> u64 {
        match side {
            Side::Client => self.bytes_from_client.load(Ordering::Relaxed),
            Side::Backend => self.bytes_from_backend.load(Ordering::Relaxed),
        }
    }

    /// A relaxed copy of every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            bytes_from_client: self.bytes_from_client.load(Ordering::Relaxed),
            bytes_from_backend: self.bytes_from_backend.load(Ordering::Relaxed),
            buffered_to_client: self.buffered_to_client.load(Ordering::Relaxed),
            buffered_to_backend: self.buffered_to_backend.load(Ordering::Relaxed),
            peak_buffered: self.peak_buffered.load(Ordering::Relaxed),
            client_gate: ReadGate::from_bits(self.client_gate.load(Ordering::Relaxed)),
            backend_gate: ReadGate::from_bits(self.backend_gate.load(Ordering::Relaxed)),
        }
    }
}
