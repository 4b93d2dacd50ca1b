//! Scalar values that arrive as strings: durations and byte sizes. Each function returns the
//! full message for the operator on failure, quoting the value and saying what was expected.

use std::time::Duration;

use proxy_core::units;

use super::raw::RawSize;

const SIZE_EXPECTED: &str = "expected a number of bytes or a string such as \"32KiB\"";

/// A positive humantime duration. Zero is rejected because every duration in the config is a
/// timeout, and a zero timeout would fail every connection at once.
pub(super) fn duration(text: &str) -> Result<Duration, String> {
    match units::parse_duration(text) {
        Ok(d) if d.is_zero() => Err(format!(
            "duration {text:?} is zero: use a positive duration"
        )),
        Ok(d) => Ok(d),
        Err(err) => Err(err.to_string()),
    }
}

/// The number of bytes `raw` stands for.
pub(super) fn byte_size(raw: &RawSize) -> Result<usize, String> {
    let bytes = match raw {
        RawSize::Bytes(n) => u64::try_from(*n)
            .map_err(|_| format!("invalid byte size {raw}: it is negative; {SIZE_EXPECTED}"))?,
        RawSize::Text(text) => units::parse_byte_size(text).map_err(|err| err.to_string())?,
    };
    // On 32-bit targets a valid u64 can still be too big for a buffer length.
    usize::try_from(bytes).map_err(|_| format!("byte size {raw} is too large"))
}

/// `raw` as a byte size within `min..=max`.
pub(super) fn byte_size_in(raw: &RawSize, (min, max): (usize, usize)) -> Result<usize, String> {
    let n = byte_size(raw)?;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "byte size {raw} ({n} bytes) is out of range: expected between {min} and {max} bytes"
        ))
    }
}
