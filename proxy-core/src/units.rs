//! Human-friendly quantities in configuration: byte sizes (`"256KiB"`) and durations (`"5s"`).
//!
//! Shared by the binary's config file and by stage options, so both accept the same spellings.

use std::time::Duration;

/// A quantity that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnitError {
    /// Not a byte size.
    #[error(
        "invalid byte size {0:?}: expected an integer with an optional unit B, KiB, MiB, GiB, KB, MB or GB, such as \"256KiB\""
    )]
    ByteSize(String),
    /// A byte size too large to represent.
    #[error("byte size {0:?} is too large")]
    ByteSizeOverflow(String),
    /// Not a duration.
    #[error(
        "invalid duration {value:?}: {reason}; expected a duration such as \"500ms\", \"5s\" or \"10m\""
    )]
    Duration {
        /// The text given.
        value: String,
        /// What was wrong with it.
        reason: String,
    },
}

/// Reads a byte size: an integer with an optional unit (B, KiB, MiB, GiB, KB, MB, GB).
pub fn parse_byte_size(text: &str) -> Result<u64, UnitError> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    if digits.is_empty() {
        return Err(UnitError::ByteSize(text.to_owned()));
    }
    let multiplier: u64 = match unit.trim_start() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(UnitError::ByteSize(text.to_owned())),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| UnitError::ByteSizeOverflow(text.to_owned()))?;
    value
        .checked_mul(multiplier)
        .ok_or_else(|| UnitError::ByteSizeOverflow(text.to_owned()))
}

/// Reads a duration such as `"250ms"`, `"5s"`, `"1m 30s"`.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    humantime::parse_duration(text.trim()).map_err(|err| UnitError::Duration {
        value: text.to_owned(),
        reason: err.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_accept_binary_and_decimal_units() {
        assert_eq!(parse_byte_size("512"), Ok(512));
        assert_eq!(parse_byte_size("512B"), Ok(512));
        assert_eq!(parse_byte_size("32KiB"), Ok(32 * 1024));
        assert_eq!(parse_byte_size("1 MiB"), Ok(1 << 20));
        assert_eq!(parse_byte_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_byte_size("3KB"), Ok(3_000));
        assert_eq!(parse_byte_size("4MB"), Ok(4_000_000));
        assert_eq!(parse_byte_size("5GB"), Ok(5_000_000_000));
    }

    #[test]
    fn byte_sizes_reject_garbage_and_overflow_without_panicking() {
        for bad in ["", "KiB", "12 kib", "1.5MiB", "-1", "10 parsecs"] {
            assert!(
                matches!(parse_byte_size(bad), Err(UnitError::ByteSize(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_byte_size("99999999999999999999"),
            Err(UnitError::ByteSizeOverflow(_))
        ));
        assert!(matches!(
            parse_byte_size("18446744073709551615GiB"),
            Err(UnitError::ByteSizeOverflow(_))
        ));
    }

    #[test]
    fn durations_use_humantime_spellings() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5").is_err());
    }
}
