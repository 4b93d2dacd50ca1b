//! Messages streamed past the stages, over in-memory pipes with a length-prefixed test protocol
//! whose head is a message's first byte: one that no stage needs goes through a session whose
//! buffers could never hold it, in order with the messages around it; one a stage needs is
//! still assembled whole; a client that ends in the middle of one is at fault.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

use super::*;
use crate::codec::CodecError;
use crate::context::SessionStats;
use crate::stage::{Flow, Stage, StageContext};
use crate::stop::StopSignal;
use crate::test_support::cx;

const PIPE: usize = 64 * 1024;
const PREFIX: usize = 4;
/// The head of a message the watching stage needs whole.
const WATCHED: u8 = b'w';

/// Messages are a big-endian u32 length and that many bytes; the first is their head.
struct Framed;

impl Protocol for Framed {
    type Request = Bytes;
    type Response = Bytes;
    type Head = u8;
}

/// Streams what the chain lets it, and keeps what the proxy sends toward a side while a
/// message streams to it, as a codec must.
#[derive(Default)]
struct StreamingCodec {
    held: Option<Vec<Bytes>>,
    ends: Arc<Mutex<Vec<Side>>>,
    /// Requests a backend has not answered yet.
    unanswered: usize,
    /// As many as a session allows, if any.
    limit: Option<usize>,
}

fn message_len(buf: &[u8]) -> Option<usize> {
    let prefix: [u8; PREFIX] = buf.get(..PREFIX)?.try_into().ok()?;
    Some(PREFIX + u32::from_be_bytes(prefix) as usize)
}

fn take(buf: &mut BytesMut) -> Option<Bytes> {
    let len = message_len(buf)?;
    (buf.len() >= len).then(|| buf.split_to(len).freeze())
}

impl Codec<Framed> for StreamingCodec {
    fn decode_request(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        Ok(take(buf))
    }

    fn decode_response(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        let response = take(buf);
        if response.is_some() {
            self.unanswered = self.unanswered.saturating_sub(1);
        }
        Ok(response)
    }

    fn message_len(&self, buf: &[u8]) -> Option<usize> {
        message_len(buf)
    }

    fn in_flight_limit_reached(&self) -> bool {
        self.limit.is_some_and(|limit| self.unanswered >= limit)
    }

    fn stream_message(
        &mut self,
        side: Side,
        buf: &[u8],
        stream: &mut dyn FnMut(&u8) -> bool,
    ) -> Result<Option<usize>, CodecError> {
        let (Some(len), Some(head)) = (message_len(buf), buf.get(PREFIX)) else {
            return Ok(None);
        };
        if !stream(head) {
            return Ok(None);
        }
        if side == Side::Client {
            self.held = Some(Vec::new());
            self.unanswered += 1;
        }
        Ok(Some(len))
    }

    fn end_stream(&mut self, side: Side, out: &mut WriteQueue) {
        self.ends.lock().push(side);
        for msg in self.held.take().unwrap_or_default() {
            out.push(msg);
        }
    }

    fn encode_request(&mut self, msg: Bytes, out: &mut WriteQueue) -> Result<(), CodecError> {
        self.unanswered += 1;
        match &mut self.held {
            Some(held) => held.push(msg),
            None => out.push(msg),
        }
        Ok(())
    }

    fn encode_response(&mut self, msg: Bytes, out: &mut WriteQueue) -> Result<(), CodecError> {
        out.push(msg);
        Ok(())
    }
}

/// Needs the messages whose head is [`WATCHED`], and notes the length of each it sees.
struct Watcher {
    seen: Arc<Mutex<Vec<usize>>>,
}

impl Stage<Framed> for Watcher {
    fn kind(&self) -> &'static str {
        "watcher"
    }

    fn on_request(&mut self, msg: Bytes, _cx: &mut StageContext<'_>) -> Flow<Bytes, Bytes> {
        self.seen.lock().push(msg.len());
        Flow::Forward(msg)
    }

    fn on_response(&mut self, msg: Bytes, _cx: &mut StageContext<'_>) -> Flow<Bytes, Bytes> {
        self.seen.lock().push(msg.len());
        Flow::Forward(msg)
    }

    fn needs(&self, _direction: Direction, head: &u8, _cx: &SessionContext) -> bool {
        *head == WATCHED
    }
}

struct Session {
    client: DuplexStream,
    backend: DuplexStream,
    stats: Arc<SessionStats>,
    seen: Arc<Mutex<Vec<usize>>>,
    ends: Arc<Mutex<Vec<Side>>>,
    ended: tokio::task::JoinHandle<CloseReason>,
}

fn limits() -> ForwardLimits {
    ForwardLimits {
        read_buffer: 16 * 1024,
        high_watermark: 64 * 1024,
        low_watermark: 32 * 1024,
        frame_timeout: Duration::from_secs(10),
        ..ForwardLimits::default()
    }
}

/// A session under a frame budget of `budget` bytes.
fn start(budget: usize) -> Session {
    start_limited(budget, None)
}

/// A session under a frame budget of `budget` bytes, pausing the client at `limit` requests
/// unanswered.
fn start_limited(budget: usize, limit: Option<usize>) -> Session {
    start_piped(budget, limit, PIPE)
}

/// As [`start_limited`], with a pipe from the client that holds `client_pipe` bytes.
fn start_piped(budget: usize, limit: Option<usize>, client_pipe: usize) -> Session {
    let (client, proxy_client) = duplex(client_pipe);
    let (backend, proxy_backend) = duplex(PIPE);
    let mut cx = cx();
    let stats = cx.stats().clone();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let codec = StreamingCodec {
        limit,
        ..StreamingCodec::default()
    };
    let ends = codec.ends.clone();
    let watcher = Watcher { seen: seen.clone() };
    let ended = tokio::spawn(async move {
        let mut chain = StageChain::<Framed>::new(vec![Box::new(watcher)]);
        let mut forwarder = Forwarder::new(proxy_client, proxy_backend, codec, limits())
            .with_frame_budget(FrameBudget::new(budget));
        let never = StopSignal::new();
        match forwarder.run(&mut chain, &mut cx, &never).await {
            Forwarded::Closed(reason) => reason,
            Forwarded::DrainRequested => CloseReason::DrainCompleted,
        }
    });
    Session {
        client,
        backend,
        stats,
        seen,
        ends,
        ended,
    }
}

/// A message of `body` bytes beginning with `head`.
fn message(body: usize, head: u8) -> Vec<u8> {
    let mut bytes = u32::try_from(body).unwrap().to_be_bytes().to_vec();
    bytes.push(head);
    bytes.extend((1..body).map(|i| (i as u8).wrapping_mul(31).wrapping_add(head)));
    bytes
}

/// Reads `len` bytes from `from`, noting the most the session held toward `side` meanwhile.
async fn read_watching(
    from: &mut DuplexStream,
    len: usize,
    stats: &SessionStats,
    side: Side,
) -> (Vec<u8>, usize) {
    let mut got = vec![0; len];
    let mut at = 0;
    let mut most = 0;
    while at < len {
        let snapshot = stats.snapshot();
        most = most.max(match side {
            Side::Backend => snapshot.buffered_to_backend,
            Side::Client => snapshot.buffered_to_client,
        });
        let n = from.read(&mut got[at..]).await.unwrap();
        assert!(n > 0, "the stream ended {} bytes short", len - at);
        at += n;
    }
    (got, most)
}

#[tokio::test]
async fn a_message_no_stage_needs_streams_through_buffers_that_could_never_hold_it() {
    const BIG: usize = 8 * 1024 * 1024;
    // A budget an assembled message could never fit in.
    let mut session = start(64 * 1024);
    let mut sent = message(100, WATCHED);
    sent.extend(message(BIG, b's'));
    sent.extend(message(200, WATCHED));
    let mut client = session.client;
    let writing = {
        let sent = sent.clone();
        tokio::spawn(async move {
            client.write_all(&sent).await.unwrap();
            client
        })
    };
    let (got, most) = read_watching(
        &mut session.backend,
        sent.len(),
        &session.stats,
        Side::Backend,
    )
    .await;
    assert!(got == sent, "the backend got other bytes than were sent");
    let bound = limits().read_buffer + limits().high_watermark;
    assert!(most <= bound, "{most} bytes held toward the backend");
    // The stage saw the small messages, in order, and not the big one.
    assert_eq!(*session.seen.lock(), [PREFIX + 100, PREFIX + 200]);
    assert_eq!(*session.ends.lock(), [Side::Client]);

    // A response streams the same way.
    let answer = message(BIG / 2, b'r');
    let mut backend = session.backend;
    let writing_back = {
        let answer = answer.clone();
        tokio::spawn(async move {
            backend.write_all(&answer).await.unwrap();
            backend
        })
    };
    let mut client = writing.await.unwrap();
    let (got, most) = read_watching(&mut client, answer.len(), &session.stats, Side::Client).await;
    assert!(got == answer, "the client got other bytes than were sent");
    assert!(most <= bound, "{most} bytes held toward the client");
    assert_eq!(*session.ends.lock(), [Side::Client, Side::Backend]);
    assert_eq!(session.seen.lock().len(), 2);
    drop(writing_back);
}

#[tokio::test]
async fn a_streamed_message_is_read_no_further_than_the_high_watermark_toward_a_stalled_backend() {
    const BIG: usize = 4 * 1024 * 1024;
    // The client's pipe holds all of it at once, so only the session's gate stops the reads.
    let mut session = start_piped(64 * 1024, None, BIG + 1024);
    let sent = message(BIG, b's');
    session.client.write_all(&sent).await.unwrap();
    // The backend reads nothing meanwhile; the session runs until its gate shuts.
    for _ in 0..200 {
        tokio::task::yield_now().await;
    }
    let bound = limits().read_buffer + limits().high_watermark;
    let stalled = session.stats.snapshot();
    assert!(
        stalled.peak_buffered <= bound,
        "{} bytes held toward a backend that reads nothing",
        stalled.peak_buffered
    );
    assert!(
        stalled.bytes_from_client <= (bound + PIPE) as u64,
        "{} bytes read from the client",
        stalled.bytes_from_client
    );
    // Reading again, the backend gets all of it, and the bound held throughout.
    let (got, most) = read_watching(
        &mut session.backend,
        sent.len(),
        &session.stats,
        Side::Backend,
    )
    .await;
    assert!(got == sent, "the backend got other bytes than were sent");
    assert!(most <= bound, "{most} bytes held toward the backend");
    assert!(session.stats.snapshot().peak_buffered <= bound);
}

#[tokio::test]
async fn a_large_message_a_stage_needs_is_still_assembled_whole() {
    // The same size as one that streams, but watched: the budget cannot hold it.
    let mut session = start(64 * 1024);
    let sent = message(1024 * 1024, WATCHED);
    session.client.write_all(&sent[..32 * 1024]).await.unwrap();
    let reason = session.ended.await.unwrap();
    assert!(
        matches!(&reason, CloseReason::Protocol { side: Side::Client, detail }
            if detail.contains("frame budget")),
        "{reason:?}"
    );
    assert!(session.ends.lock().is_empty());
}

#[tokio::test]
async fn a_client_that_ends_in_the_middle_of_a_streamed_message_is_at_fault() {
    let mut session = start(64 * 1024);
    let sent = message(1024 * 1024, b's');
    let half = sent.len() / 2;
    // The half sent goes on as it arrives: nothing waits for the rest.
    let mut got = vec![0; half];
    let (written, read) = tokio::join!(
        session.client.write_all(&sent[..half]),
        session.backend.read_exact(&mut got)
    );
    written.unwrap();
    read.unwrap();
    assert!(got == sent[..half]);
    drop(session.client);
    let reason = session.ended.await.unwrap();
    assert!(
        matches!(&reason, CloseReason::Protocol { side: Side::Client, detail }
            if detail.contains("middle of a message")),
        "{reason:?}"
    );
    assert!(session.ends.lock().is_empty(), "the message never ended");
}

#[tokio::test(start_paused = true)]
async fn a_message_read_behind_one_that_reached_the_in_flight_limit_waits_for_an_answer() {
    let mut session = start_limited(64 * 1024, Some(1));
    // One write: a small request that reaches the limit, and the start of a large one that
    // would stream; both arrive in one read.
    let small = message(100, WATCHED);
    let big = message(1024 * 1024, b's');
    let mut sent = small.clone();
    sent.extend_from_slice(&big[..8 * 1024]);
    session.client.write_all(&sent).await.unwrap();
    let mut got = vec![0; small.len()];
    session.backend.read_exact(&mut got).await.unwrap();
    assert_eq!(got, small);
    // Unanswered, the client's reads stay paused, and what was read of the large one with it
    // does not start to stream.
    let mut more = [0; 1];
    let early = tokio::time::timeout(Duration::from_secs(5), session.backend.read(&mut more)).await;
    assert!(
        early.is_err(),
        "a message went on past the in-flight limit, or the session ended: {early:?}"
    );
    // The answer opens reads: the large one streams in full.
    session.backend.write_all(&message(10, b'a')).await.unwrap();
    let (written, read) = tokio::join!(session.client.write_all(&big[8 * 1024..]), async {
        let mut got = vec![0; big.len()];
        session.backend.read_exact(&mut got).await.map(|_| got)
    });
    written.unwrap();
    assert!(read.unwrap() == big);
    assert_eq!(*session.ends.lock(), [Side::Client]);
}
