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
