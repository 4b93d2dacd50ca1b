//! The queue of bytes waiting to be written to one peer.
//!
//! Chunks are `Bytes` shared with the buffer they were read into, so forwarding is a move, not
//! a copy; several chunks are written with one vectored write when the transport supports it.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use tokio::io::AsyncWrite;

use crate::queue::InlineFirstQueue;

/// At most this many chunks go into one vectored write (Linux's UIO_MAXIOV is 1024; a few dozen
/// already amortise the syscall).
const MAX_IOV: usize = 64;

/// Bytes waiting to be written to one peer, and their total length.
///
/// A [`Codec`](crate::codec::Codec) pushes the messages it encodes here; the driver writes them
/// out as the peer takes them.
///
/// ```
/// use bytes::Bytes;
/// use proxy_core::io::WriteQueue;
///
/// let mut queue = WriteQueue::default();
/// let hello = Bytes::from_static(b"hello ");
/// queue.push(hello.clone());
/// queue.push(Bytes::new()); // empty chunks are ignored
/// queue.push(Bytes::from_static(b"world"));
/// assert_eq!(queue.len(), 11);
///
/// // Chunks are the `Bytes` pushed, not copies of them.
/// let chunks = queue.take_chunks();
/// assert_eq!(chunks[0].as_ptr(), hello.as_ptr());
/// assert!(queue.is_empty());
///
/// // Any `AsyncWrite` takes them: a socket in a proxy, a `Vec<u8>` here.
/// queue.push(hello);
/// let mut out = Vec::new();
/// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
/// runtime.block_on(queue.write_all_to(&mut out))?;
/// assert_eq!(out, b"hello ");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct WriteQueue {
    /// A peer sent one message at a time (a request, then its answer) never has more than one
    /// chunk waiting: an idle session holds no allocation for its queues.
    chunks: InlineFirstQueue<Bytes>,
    len: usize,
}

// === impl WriteQueue ===

impl WriteQueue {
    /// Appends a chunk; empty chunks are ignored.
    pub fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.len += chunk.len();
        self.chunks.push_back(chunk);
    }

    /// The number of bytes waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drops everything waiting (bytes toward a peer that can no longer take them).
    pub fn clear(&mut self) {
        self.len = 0;
        self.chunks.clear();
    }

    /// Takes every chunk waiting, front first, leaving the queue empty: a codec's tests read
    /// back what it queued (and can check it is the very `Bytes` that was read, not a copy).
    pub fn take_chunks(&mut self) -> Vec<Bytes> {
        self.len = 0;
        self.chunks.drain().collect()
    }

    /// Writes from the front of the queue once, vectored when the writer supports it.
    pub fn poll_write_to<W: AsyncWrite + ?Sized>(
        &mut self,
        mut writer: Pin<&mut W>,
        task: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let written = if self.chunks.len() > 1 && writer.is_write_vectored() {
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let mut count = 0;
            for (slice, chunk) in slices.iter_mut().zip(self.chunks.iter()) {
                *slice = IoSlice::new(chunk);
                count += 1;
            }
            ready!(writer.as_mut().poll_write_vectored(task, &slices[..count]))?
        } else {
            match self.chunks.front() {
                Some(front) => ready!(writer.as_mut().poll_write(task, front))?,
                None => 0,
            }
        };
        self.advance(written);
        Poll::Ready(Ok(written))
    }

    /// Writes everything waiting to `writer` and flushes it. Not cancel safe in the sense that
    /// a dropped call may have written part of the queue; what is left stays queued.
    pub async fn write_all_to<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        writer: &mut W,
    ) -> io::Result<()> {
        while !self.is_empty() {
            std::future::poll_fn(|task| self.poll_write_to(Pin::new(&mut *writer), task)).await?;
        }
        tokio::io::AsyncWriteExt::flush(writer).await
    }

    /// Drops `n` written bytes from the front.
    fn advance(&mut self, mut n: usize) {
        self.len -= n.min(self.len);
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            if front.len() <= n {
                n -= front.len();
                self.chunks.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_spans_chunks_and_keeps_the_rest() {
        let mut queue = WriteQueue::default();
        queue.push(Bytes::from_static(b"abc"));
        queue.push(Bytes::new());
        queue.push(Bytes::from_static(b"defg"));
        assert_eq!(queue.len(), 7);
        queue.advance(5);
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.chunks.front().map(|c| &c[..]), Some(&b"fg"[..]));
        assert_eq!(queue.chunks.len(), 1);
        queue.advance(2);
        assert!(queue.is_empty());
        assert!(queue.chunks.is_empty());
    }

    #[test]
    fn chunks_pushed_behind_a_partly_written_front_keep_their_order() {
        let mut queue = WriteQueue::default();
        queue.push(Bytes::from_static(b"ab"));
        queue.push(Bytes::from_static(b"cd"));
        queue.advance(1);
        queue.push(Bytes::from_static(b"ef"));
        queue.advance(2);
        queue.push(Bytes::from_static(b"gh"));
        assert_eq!(queue.len(), 5);
        let chunks = queue.take_chunks();
        let bytes: Vec<u8> = chunks.iter().flat_map(|c| c.to_vec()).collect();
        assert_eq!(bytes, b"defgh");
        assert!(queue.chunks.is_empty());
    }

    #[tokio::test]
    async fn a_vectored_write_takes_the_front_and_the_chunks_behind_it() {
        let mut queue = WriteQueue::default();
        for chunk in [&b"one "[..], b"two ", b"three"] {
            queue.push(Bytes::from_static(chunk));
        }
        let mut out = Vec::new();
        let written = std::future::poll_fn(|cx| queue.poll_write_to(Pin::new(&mut out), cx))
            .await
            .unwrap();
        assert_eq!(written, 13);
        assert_eq!(out, b"one two three");
        assert!(queue.is_empty());
    }

    #[tokio::test]
    async fn vectored_writes_deliver_every_byte_in_order() {
        use tokio::io::AsyncReadExt;
        let (mut a, mut b) = tokio::io::duplex(8);
        let mut queue = WriteQueue::default();
        for i in 0..100u8 {
            queue.push(Bytes::from(vec![i; 3]));
        }
        let writer = async move {
            while !queue.is_empty() {
                std::future::poll_fn(|cx| queue.poll_write_to(Pin::new(&mut a), cx))
                    .await
                    .unwrap();
            }
        };
        let reader = async move {
            let mut out = Vec::new();
            while out.len() < 300 {
                let mut buf = [0u8; 64];
                let n = b.read(&mut buf).await.unwrap();
                out.extend_from_slice(&buf[..n]);
            }
            out
        };
        let ((), out) = tokio::join!(writer, reader);
        let expected: Vec<u8> = (0..100u8).flat_map(|i| [i; 3]).collect();
        assert_eq!(out, expected);
    }
}
