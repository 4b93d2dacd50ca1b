//! Blocks of consecutive free ports on loopback, for tests that bind a listener and the ports
//! after it (a Kafka gateway's broker ports).
//!
//! Blocks are taken below Linux's ephemeral range (32768 and up by default): there, tests that
//! hold thousands of connections leave few consecutive free ports, and no outgoing connection
//! takes one of these between the check and the bind.

#![expect(
    clippy::panic,
    reason = "a test helper: no free block fails the test that asked for one"
)]

use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

const LOW: u32 = 10_000;
const HIGH: u32 = 32_000;

/// A port `p` with `p` to `p + len` free on loopback; returns `p`. Panics after 500 tries.
pub fn free_block(len: u16) -> u16 {
    // A different walk per process and per call, so parallel tests rarely try the same block.
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let mut candidate = LOW
        + std::process::id()
            .wrapping_mul(7919)
            .wrapping_add(call.wrapping_mul(104_729))
            % (HIGH - LOW);
    for _ in 0..500 {
        candidate = LOW + (candidate - LOW + 37 + u32::from(len)) % (HIGH - LOW);
        let Ok(base) = u16::try_from(candidate) else {
            continue;
        };
        if (0..=len).all(|i| TcpListener::bind((Ipv4Addr::LOCALHOST, base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no block of {} free ports on loopback", u32::from(len) + 1);
}
