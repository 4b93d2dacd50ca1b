//! Helpers shared by Sluice's integration tests: real loopback peers and an in-process proxy.
//!
//! Every server binds port 0 on 127.0.0.1 and is stopped when its handle drops; nothing here is
//! global, so tests run in parallel.

pub mod peers;
pub mod proxy;

use std::time::Duration;

/// The longest any single step of a test may take before the test fails instead of hanging.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// A deterministic byte pattern, different for each `seed`, so misordered or mixed-up bytes
/// are caught.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            // xorshift64: cheap and never stuck at zero.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}
