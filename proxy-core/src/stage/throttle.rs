//! `throttle`: caps a raw TCP session's bandwidth in each direction with a token bucket.
//!
//! A chunk that would overdraw the bucket is deferred until the debt is repaid; while it waits,
//! reads in that direction pause, so the limit holds end to end and memory stays bounded.
//!
//! ```toml
//! [[listener.stage]]
//! kind = "throttle"
//! bytes_per_second = "1MiB"   # required, per direction
//! burst = "256KiB"            # optional, defaults to one second's worth
//! ```

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{Instant, sleep};

use super::{Flow, NewStage, Stage, StageConfigError, StageContext, StageOptions};
use crate::codec::RawTcp;
use crate::context::SessionContext;

/// The kind name used in configuration.
pub const KIND: &str = "throttle";

/// Builds a throttle factory from its options.
pub fn build(
    options: &mut StageOptions<'_>,
) -> Result<Arc<dyn NewStage<RawTcp>>, StageConfigError> {
    let rate = options
        .byte_size("bytes_per_second")?
        .ok_or(StageConfigError::MissingOption {
            key: "bytes_per_second",
        })?;
    if rate == 0 {
        return Err(StageConfigError::InvalidOption {
            key: "bytes_per_second",
            message: "must be greater than zero".into(),
        });
    }
    let burst = options.byte_size("burst")?.unwrap_or(rate);
    if burst == 0 {
        return Err(StageConfigError::InvalidOption {
            key: "burst",
            message: "must be greater than zero".into(),
        });
    }
    Ok(Arc::new(NewThrottle { rate, burst }))
}

/// The per-listener factory.
#[derive(Debug, Clone, Copy)]
pub struct NewThrottle {
    rate: u64,
    burst: u64,
}

impl NewThrottle {
    /// A throttle of `rate` bytes per second with a bucket of `burst` bytes, per direction.
    pub fn new(rate: u64, burst: u64) -> Self {
        Self {
            rate: rate.max(1),
            burst: burst.max(1),
        }
    }
}

impl NewStage<RawTcp> for NewThrottle {
    fn new_stage(&self, _cx: &SessionContext) -> Box<dyn Stage<RawTcp>> {
        Box::new(Throttle {
            upload: Bucket::new(self.rate, self.burst),
            download: Bucket::new(self.rate, self.burst),
        })
    }
}

/// The per-session stage.
#[derive(Debug)]
struct Throttle {
    upload: Bucket,
    download: Bucket,
}

impl Stage<RawTcp> for Throttle {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn on_request(&mut self, msg: Bytes, _cx: &mut StageContext<'_>) -> Flow<Bytes, Bytes> {
        pace(self.upload.take(msg.len(), Instant::now()), msg)
    }

    fn on_response(&mut self, msg: Bytes, _cx: &mut StageContext<'_>) -> Flow<Bytes, Bytes> {
        pace(self.download.take(msg.len(), Instant::now()), msg)
    }
}

fn pace(wait: Option<Duration>, msg: Bytes) -> Flow<Bytes, Bytes> {
    match wait {
        None => Flow::Forward(msg),
        Some(wait) => Flow::Defer(Box::pin(async move {
            sleep(wait).await;
            Flow::Forward(msg)
        })),
    }
}

/// A token bucket whose balance may go negative: the debt is how long the next sender waits.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn new(rate: u64, burst: u64) -> Self {
        Self {
            rate: rate as f64,
            burst: burst as f64,
            tokens: burst as f64,
            updated: Instant::now(),
        }
    }

    /// Spends `n` bytes; returns how long to wait before sending them, if at all.
    fn take(&mut self, n: usize, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.updated = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.tokens -= n as f64;
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / self.rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_burst_passes_at_once_and_the_rest_waits_its_share() {
        let start = Instant::now();
        let mut bucket = Bucket {
            rate: 1000.0,
            burst: 500.0,
            tokens: 500.0,
            updated: start,
        };
        assert_eq!(bucket.take(500, start), None);
        assert_eq!(bucket.take(250, start), Some(Duration::from_millis(250)));
        // After the wait the debt is repaid and the bucket refills from zero.
        let later = start + Duration::from_millis(250);
        assert_eq!(bucket.take(0, later), None);
        assert_eq!(bucket.take(100, later + Duration::from_millis(100)), None);
    }

    #[test]
    fn options_are_checked() {
        let table: toml::Table =
            toml::from_str("bytes_per_second = \"1MiB\"\nburst = 4096").unwrap();
        assert!(build(&mut StageOptions::new(&table)).is_ok());
        let zero: toml::Table = toml::from_str("bytes_per_second = 0").unwrap();
        assert!(matches!(
            build(&mut StageOptions::new(&zero)),
            Err(StageConfigError::InvalidOption {
                key: "bytes_per_second",
                ..
            })
        ));
        let missing = toml::Table::new();
        assert!(matches!(
            build(&mut StageOptions::new(&missing)),
            Err(StageConfigError::MissingOption {
                key: "bytes_per_second"
            })
        ));
    }

    #[test]
    fn the_registry_rejects_unknown_kinds_and_options() {
        let registry = crate::stage::raw_tcp_registry();
        let typo: toml::Table = toml::from_str("bytes_per_second = 10\nburts = 5").unwrap();
        assert_eq!(
            registry.build("throttle", &typo).err(),
            Some(StageConfigError::UnknownOption {
                key: "burts".into()
            })
        );
        assert!(matches!(
            registry.build("thottle", &toml::Table::new()).err(),
            Some(StageConfigError::UnknownKind { .. })
        ));
    }
}
