//! Helpers shared by Sluice's integration tests: real loopback peers and an in-process proxy.
//!
//! Every server binds port 0 on 127.0.0.1 and is stopped when its handle drops; nothing here is
//! global, so tests run in parallel.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test, with a message, when setup fails"
)]

pub mod audit_schema;
pub mod certs;
pub mod faulty;
pub mod footprint;
pub mod haproxy;
pub mod kafka_wire;
pub mod log_shape;
pub mod openssl;
pub mod peers;
pub mod process;
pub mod procfs;
pub mod proxy;
pub mod tansu;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

/// Sends `upload` then half-closes, while reading until EOF at the same time (an echo backend
/// answers while the client is still sending); returns what came back.
pub async fn exchange(stream: TcpStream, upload: &[u8]) -> Vec<u8> {
    let (mut read, mut write) = stream.into_split();
    let send = async {
        write.write_all(upload).await.expect("upload");
        write.shutdown().await.expect("half-close");
    };
    let receive = async {
        let mut got = Vec::with_capacity(upload.len());
        read.read_to_end(&mut got).await.expect("download");
        got
    };
    let ((), got) = tokio::join!(send, receive);
    got
}
