//! Peers that misbehave, for the fault-injection tests: a backend that accepts and then stays
//! silent (never reads, never writes), closes at once or resets at once, switchable to an echo
//! server so a test can check the proxy serves again once its backend behaves; and a Kafka
//! broker that dies in the middle of a request or closes during SASL ([`broker`]).

pub mod broker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::STEP_TIMEOUT;
use crate::peers::Server;

/// What a [`FaultyBackend`] does with each connection it accepts from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Behavior {
    /// Accepts and holds the connection: never reads, never writes, never closes. The kernel
    /// still takes the peer's bytes until the socket's receive buffer is full, then the peer
    /// is pushed back (a hung server, or one that black-holes after the TCP handshake).
    Silent = 0,
    /// Closes the connection as soon as it is accepted (FIN), before any byte either way.
    CloseAtOnce = 1,
    /// Resets the connection as soon as it is accepted (RST: `SO_LINGER` 0, then close).
    ResetAtOnce = 2,
    /// Echoes every byte back, and closes after the peer's EOF: a backend that behaves.
    Echo = 3,
    /// Echoes its first read, then holds the connection like [`Behavior::Silent`]: an idle
    /// backend, whose connections the test ends itself (with a reset, say, which leaves no
    /// `TIME_WAIT` behind).
    EchoOnceThenHold = 4,
}

impl Behavior {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::Silent,
            1 => Self::CloseAtOnce,
            2 => Self::ResetAtOnce,
            4 => Self::EchoOnceThenHold,
            _ => Self::Echo,
        }
    }
}

/// A loopback backend whose behavior a test switches between connections; stops accepting when
/// dropped (connections it holds stay open with [`FaultyBackend::next_held`]'s caller, or until
/// the backend itself is dropped).
#[derive(Debug)]
pub struct FaultyBackend {
    server: Server,
    /// The [`Behavior`] of the next connection accepted, as its `u8`.
    behavior: Arc<AtomicU8>,
    /// Connections held ([`Behavior::Silent`], [`Behavior::EchoOnceThenHold`]), in order;
    /// holding them keeps them open.
    held: mpsc::UnboundedReceiver<TcpStream>,
}

impl FaultyBackend {
    /// A backend on a fresh loopback port, treating connections with `behavior`.
    pub async fn start(behavior: Behavior) -> Self {
        let current = Arc::new(AtomicU8::new(behavior as u8));
        let (hold, held) = mpsc::unbounded_channel();
        let shared = current.clone();
        let server = Server::spawn(move |stream| {
            let behavior = Behavior::from_u8(shared.load(Ordering::SeqCst));
            let hold = hold.clone();
            async move { serve(stream, behavior, &hold).await }
        })
        .await;
        Self {
            server,
            behavior: current,
            held,
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Treats connections accepted from now on with `behavior`; those already accepted keep
    /// theirs.
    pub fn set(&self, behavior: Behavior) {
        self.behavior.store(behavior as u8, Ordering::SeqCst);
    }

    /// The next connection held, within [`STEP_TIMEOUT`]. Reading it shows what reached the
    /// backend; dropping it closes it.
    pub async fn next_held(&mut self) -> TcpStream {
        tokio::time::timeout(STEP_TIMEOUT, self.held.recv())
            .await
            .expect("the silent backend accepted a connection in time")
            .expect("the silent backend is running")
    }
}

async fn serve(mut stream: TcpStream, behavior: Behavior, hold: &mpsc::UnboundedSender<TcpStream>) {
    match behavior {
        Behavior::Silent => {
            // The receiver outlives the server task: the connection stays open, unread.
            let _ = hold.send(stream);
        }
        Behavior::CloseAtOnce => drop(stream),
        Behavior::ResetAtOnce => {
            // With a zero linger, close sends RST at once, without blocking the thread.
            let _ = stream.set_zero_linger();
            drop(stream);
        }
        Behavior::EchoOnceThenHold => {
            let mut first = [0u8; 512];
            match stream.read(&mut first).await {
                Ok(n) if n > 0 && stream.write_all(&first[..n]).await.is_ok() => {
                    let _ = hold.send(stream);
                }
                _ => {}
            }
        }
        Behavior::Echo => {
            let (mut read, mut write) = stream.split();
            if tokio::io::copy(&mut read, &mut write).await.is_ok() {
                let _ = write.shutdown().await;
            }
        }
    }
}
