//! `loadgen serve`: the backend the other modes run against, one task per connection.
//!
//! - `echo` writes back whatever it reads, and half-closes after the client's EOF;
//! - `sink` reads and discards (the target of `throughput --direction up`);
//! - `source` writes zeros until the client goes away (`throughput --direction down`).
//!
//! The bound address is the first line on standard output, so `--listen 127.0.0.1:0` works.
//! It serves until SIGINT or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use clap::ValueEnum;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};

use crate::BoxError;

/// Each connection's buffer.
const BUFFER: usize = 64 * 1024;

/// `loadgen serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where to listen; port 0 picks a free port (printed as the first line).
    #[arg(long)]
    listen: SocketAddr,
    /// What to do with each connection.
    #[arg(long, value_enum)]
    mode: Behaviour,
}

/// What a backend does with a connection.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Behaviour {
    /// Write back what is read.
    Echo,
    /// Read and discard.
    Sink,
    /// Write zeros, read nothing.
    Source,
}

pub(crate) async fn run(args: Args) -> Result<(), BoxError> {
    let listener = TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{addr}")?;
        out.flush()?;
    }
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = terminate.recv() => return Ok(()),
            _ = interrupt.recv() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Connection tasks end with their peer, or with the runtime when the
                    // process stops; nothing is left to drain.
                    tokio::spawn(serve(stream, args.mode));
                }
                Err(err) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // never a reason to stop serving the others.
                    eprintln!("loadgen serve: accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
}

/// Serves one connection until its peer closes it or an error ends it; errors are the
/// client's business (it counts them), so they end the connection silently.
async fn serve(mut stream: TcpStream, mode: Behaviour) {
    let _ = stream.set_nodelay(true);
    let mut buffer = vec![0u8; BUFFER];
    let _ = match mode {
        Behaviour::Echo => echo(&mut stream, &mut buffer).await,
        Behaviour::Sink => sink(&mut stream, &mut buffer).await,
        Behaviour::Source => source(&mut stream, &buffer).await,
    };
}

async fn echo(stream: &mut TcpStream, buffer: &mut [u8]) -> std::io::Result<()> {
    loop {
        let n = stream.read(buffer).await?;
        if n == 0 {
            return stream.shutdown().await;
        }
        stream.write_all(&buffer[..n]).await?;
    }
}

async fn sink(stream: &mut TcpStream, buffer: &mut [u8]) -> std::io::Result<()> {
    while stream.read(buffer).await? != 0 {}
    stream.shutdown().await
}

async fn source(stream: &mut TcpStream, buffer: &[u8]) -> std::io::Result<()> {
    loop {
        stream.write_all(buffer).await?;
    }
}
