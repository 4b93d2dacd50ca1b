//! The time a run lasts: a short warm-up, then the measured window.
//!
//! Every loop of every mode stops at `end`, so a run never outlasts `--seconds`. Work done
//! during the warm-up (the first tenth, at most one second) is not counted: it is when socket
//! buffers fill and connections settle, and counting it would credit a proxy for the bytes its
//! own buffers absorb.

use std::time::Duration;

use tokio::time::Instant;

/// The longest warm-up, however long the run.
const MAX_WARMUP: Duration = Duration::from_secs(1);

/// When counting starts and when every loop stops.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// Work completed before this is warm-up and not counted.
    pub(crate) measure_from: Instant,
    /// Every loop stops here.
    pub(crate) end: Instant,
}

impl Window {
    /// A window of `total` starting now, whose first tenth (capped) is warm-up.
    pub(crate) fn starting_now(total: Duration) -> Self {
        let start = Instant::now();
        let warmup = (total / 10).min(MAX_WARMUP);
        Self {
            measure_from: start + warmup,
            end: start + total,
        }
    }

    /// How long results are counted for, in seconds.
    pub(crate) fn measured_secs(&self) -> f64 {
        (self.end - self.measure_from).as_secs_f64()
    }

    /// Whether work that began or ended at `at` is counted.
    pub(crate) fn counts(&self, at: Instant) -> bool {
        at >= self.measure_from && at < self.end
    }
}

/// Parses `--seconds`: a positive, finite number of seconds (fractions allowed).
pub(crate) fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("{text:?}: must be more than zero seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|err| format!("{text:?}: {err}"))
}
