//! A side that fails is delivered before it is acted on: what it sent before reaches the other
//! side, however slowly that side reads, and the session then ends with the failed side's
//! reason.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf, duplex};
use tokio::time::{Duration, timeout};

use super::*;
use crate::codec::RawCodec;
use crate::stop::StopSignal;
use crate::test_support::cx;

/// A peer that sends `data` and then fails its next read with `then`; writes to it fail with
/// `write_error`, or are taken and dropped when there is none.
struct FailingPeer {
    data: Bytes,
    then: io::ErrorKind,
    write_error: Option<io::ErrorKind>,
}

impl AsyncRead for FailingPeer {
    fn poll_read(
        self: Pin<&mut Self>,
        _task: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.data.is_empty() {
            return Poll::Ready(Err(this.then.into()));
        }
        let n = this.data.len().min(buf.remaining()).min(16 * 1024);
        buf.put_slice(&this.data[..n]);
        this.data.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for FailingPeer {
    fn poll_write(
        self: Pin<&mut Self>,
        _task: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(match self.write_error {
            Some(kind) => Err(kind.into()),
            None => Ok(buf.len()),
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _task: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _task: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Forwards between a client pipe of `pipe` bytes and `backend`; the client's end, and the
/// session's close reason.
fn session(
    pipe: usize,
    backend: FailingPeer,
) -> (
    tokio::io::DuplexStream,
    tokio::task::JoinHandle<CloseReason>,
) {
    let (client, proxy_client) = duplex(pipe);
    let session = tokio::spawn(async move {
        let mut cx = cx();
        let mut chain = StageChain::new(Vec::new());
        let never = StopSignal::new();
        forward(
            proxy_client,
            backend,
            RawCodec,
            &mut chain,
            &mut cx,
            ForwardLimits::default(),
            &never,
        )
        .await
    });
    (client, session)
}

#[tokio::test]
async fn a_backend_reset_is_acted_on_only_after_what_it_sent_reached_a_slow_client() {
    let answer = pattern(1 << 20);
    let backend = FailingPeer {
        data: Bytes::from(answer.clone()),
        then: io::ErrorKind::ConnectionReset,
        write_error: None,
    };
    // A small pipe: most of the answer waits in the proxy's queue when the reset is read.
    let (mut client, session) = session(4 * 1024, backend);
    client.write_all(b"request").await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut got = Vec::new();
    timeout(Duration::from_secs(10), client.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(
        got == answer,
        "the client got {} of {} bytes",
        got.len(),
        answer.len()
    );
    let reason = timeout(Duration::from_secs(10), session)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        reason,
        CloseReason::BackendIo(io::ErrorKind::ConnectionReset)
    );
}

#[tokio::test]
async fn a_backend_that_refuses_writes_still_gets_its_answer_read_and_delivered() {
    let answer = pattern(100 * 1024);
    let backend = FailingPeer {
        data: Bytes::from(answer.clone()),
        then: io::ErrorKind::ConnectionReset,
        write_error: Some(io::ErrorKind::BrokenPipe),
    };
    let (mut client, session) = session(64 * 1024, backend);
    client
        .write_all(b"a request the backend will not take")
        .await
        .unwrap();
    let mut got = Vec::new();
    timeout(Duration::from_secs(10), client.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(
        got == answer,
        "the client got {} of {} bytes",
        got.len(),
        answer.len()
    );
    let reason = timeout(Duration::from_secs(10), session)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            reason,
            CloseReason::BackendIo(_) | CloseReason::BackendClosed
        ),
        "the backend's end is named: {reason}"
    );
}
