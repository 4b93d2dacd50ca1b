//! Counts of SASL outcomes on one listener, by mechanism, phase and outcome.

use std::sync::atomic::{AtomicU64, Ordering};

use proxy_core::sasl::{Mechanism, ScramHash};

/// The first authentication of a connection, or a later one (KIP-368).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslPhase {
    /// Before the session had a backend.
    Initial,
    /// A re-authentication during the session.
    Reauthentication,
}

impl SaslPhase {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::Reauthentication => "reauthentication",
        }
    }
}

/// The mechanism labels, in slot order; the last is for exchanges that never named one.
const MECHANISMS: [Option<Mechanism>; 4] = [
    Some(Mechanism::Plain),
    Some(Mechanism::Scram(ScramHash::Sha256)),
    Some(Mechanism::Scram(ScramHash::Sha512)),
    None,
];
const PHASES: [SaslPhase; 2] = [SaslPhase::Initial, SaslPhase::Reauthentication];

/// One listener's SASL counters.
#[derive(Debug, Default)]
pub struct SaslMetrics {
    /// `[mechanism][phase][failure?]`.
    counts: [[[AtomicU64; 2]; 2]; 4],
    /// Failures whose answer and close were held back.
    delayed: AtomicU64,
    /// Sessions or attempts refused before any credential was checked, by [`SaslRefusal`].
    refused: [AtomicU64; 3],
}

/// Why an attempt was refused before its credentials were checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslRefusal {
    /// The listener had its maximum of sessions authenticating.
    ListenerPending,
    /// The client had its maximum of sessions authenticating.
    SourcePending,
    /// Too many password checks were queued.
    VerifierBusy,
}

impl SaslRefusal {
    const ALL: [Self; 3] = [
        Self::ListenerPending,
        Self::SourcePending,
        Self::VerifierBusy,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::ListenerPending => "listener_unauthenticated_limit",
            Self::SourcePending => "source_unauthenticated_limit",
            Self::VerifierBusy => "password_checks_busy",
        }
    }
}

/// One row of [`SaslMetrics::snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslCount {
    /// The mechanism's SASL name, or `unknown`.
    pub mechanism: &'static str,
    /// `initial` or `reauthentication`.
    pub phase: &'static str,
    /// `success` or `failure`.
    pub outcome: &'static str,
    /// How many.
    pub count: u64,
}

impl SaslMetrics {
    /// Counts one outcome.
    pub fn record(&self, mechanism: Option<Mechanism>, phase: SaslPhase, success: bool) {
        let m = MECHANISMS
            .iter()
            .position(|m| *m == mechanism)
            .unwrap_or(MECHANISMS.len() - 1);
        let p = usize::from(phase == SaslPhase::Reauthentication);
        self.counts[m][p][usize::from(!success)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failure whose answer is held back.
    pub fn record_delayed(&self) {
        self.delayed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refusal.
    pub fn record_refused(&self, why: SaslRefusal) {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Refusals by reason, every reason, in a stable order.
    pub fn refused(&self) -> [(SaslRefusal, u64); 3] {
        SaslRefusal::ALL.map(|why| (why, self.refused[why as usize].load(Ordering::Relaxed)))
    }

    /// Failures held back, since start.
    pub fn delayed(&self) -> u64 {
        self.delayed.load(Ordering::Relaxed)
    }

    /// Every counter, zeros included, in a stable order.
    pub fn snapshot(&self) -> Vec<SaslCount> {
        let mut rows = Vec::with_capacity(16);
        for (m, mechanism) in MECHANISMS.iter().enumerate() {
            for (p, phase) in PHASES.iter().enumerate() {
                for (o, outcome) in ["success", "failure"].into_iter().enumerate() {
                    rows.push(SaslCount {
                        mechanism: mechanism.map_or("unknown", Mechanism::name),
                        phase: phase.label(),
                        outcome,
                        count: self.counts[m][p][o].load(Ordering::Relaxed),
                    });
                }
            }
        }
        rows
    }
}
