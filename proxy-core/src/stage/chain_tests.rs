//! Sans-IO tests of the stage chain: every `Flow` outcome, and order under `Defer`.

use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::*;
use crate::close::CloseReason;
use crate::codec::RawTcp;
use crate::context::SessionContext;
use crate::gate::{Direction, Side};
use crate::test_support::cx;

#[derive(Default)]
struct Collect {
    to_backend: Vec<Bytes>,
    to_client: Vec<Bytes>,
}

impl Emit<RawTcp> for Collect {
    fn to_backend(&mut self, msg: Bytes) -> Result<(), CloseReason> {
        self.to_backend.push(msg);
        Ok(())
    }
    fn to_client(&mut self, msg: Bytes) -> Result<(), CloseReason> {
        self.to_client.push(msg);
        Ok(())
    }
}

/// Applies a fixed rule to requests by their content.
struct Rule(fn(Bytes) -> Flow<Bytes, Bytes>);

impl Stage<RawTcp> for Rule {
    fn kind(&self) -> &'static str {
        "rule"
    }
    fn on_request(&mut self, msg: Bytes, _cx: &mut StageContext<'_>) -> Flow<Bytes, Bytes> {
        (self.0)(msg)
    }
}

/// Tags responses, so the path an answer takes through the chain is visible.
struct TagResponses(&'static [u8]);

impl Stage<RawTcp> for TagResponses {
    fn kind(&self) -> &'static str {
        "tag"
    }
    fn on_response(&mut self, msg: Bytes, _cx: &mut StageContext<'_>) -> Flow<Bytes, Bytes> {
        Flow::Forward([&msg[..], self.0].concat().into())
    }
}

fn chain(stages: Vec<Box<dyn Stage<RawTcp>>>) -> StageChain<RawTcp> {
    StageChain::new(stages)
}

#[test]
fn an_empty_chain_passes_both_ways() {
    let (mut chain, mut cx, mut out) = (chain(vec![]), cx(), Collect::default());
    chain
        .on_request(Bytes::from_static(b"up"), &mut cx, &mut out)
        .unwrap();
    chain
        .on_response(Bytes::from_static(b"down"), &mut cx, &mut out)
        .unwrap();
    assert_eq!(out.to_backend, [Bytes::from_static(b"up")]);
    assert_eq!(out.to_client, [Bytes::from_static(b"down")]);
}

#[test]
fn a_stage_can_modify_drop_and_close() {
    let mut chain = chain(vec![Box::new(Rule(|msg| match &msg[..] {
        b"drop" => Flow::Drop,
        b"close" => Flow::Close(CloseReason::Stage {
            stage: "rule",
            reason: "asked to".into(),
        }),
        _ => Flow::Forward(msg.to_ascii_uppercase().into()),
    }))]);
    let (mut cx, mut out) = (cx(), Collect::default());
    chain
        .on_request(Bytes::from_static(b"abc"), &mut cx, &mut out)
        .unwrap();
    chain
        .on_request(Bytes::from_static(b"drop"), &mut cx, &mut out)
        .unwrap();
    let err = chain
        .on_request(Bytes::from_static(b"close"), &mut cx, &mut out)
        .unwrap_err();
    assert_eq!(out.to_backend, [Bytes::from_static(b"ABC")]);
    assert_eq!(
        err,
        CloseReason::Stage {
            stage: "rule",
            reason: "asked to".into()
        }
    );
}

#[test]
fn an_answer_travels_back_only_through_the_stages_before_the_answering_one() {
    // Stage 0 tags "0", stage 1 answers, stage 2 tags "2": the answer is tagged by 0 only.
    let mut chain = chain(vec![
        Box::new(TagResponses(b"0")),
        Box::new(Rule(|msg| {
            Flow::Respond([b"re:", &msg[..]].concat().into())
        })),
        Box::new(TagResponses(b"2")),
    ]);
    let (mut cx, mut out) = (cx(), Collect::default());
    chain
        .on_request(Bytes::from_static(b"ping"), &mut cx, &mut out)
        .unwrap();
    assert!(out.to_backend.is_empty());
    assert_eq!(out.to_client, [Bytes::from_static(b"re:ping0")]);
    assert!(chain.has_answered(Side::Client));
    assert!(!chain.has_answered(Side::Backend));
    // A real response passes every stage, last to first.
    chain
        .on_response(Bytes::from_static(b"r"), &mut cx, &mut out)
        .unwrap();
    assert_eq!(out.to_client[1], Bytes::from_static(b"r20"));
}

/// Defers each request until the test sends a verdict through a channel.
struct Gatekeeper(Option<oneshot::Receiver<bool>>);

impl Stage<RawTcp> for Gatekeeper {
    fn kind(&self) -> &'static str {
        "gatekeeper"
    }
    fn on_request(&mut self, msg: Bytes, _cx: &mut StageContext<'_>) -> Flow<Bytes, Bytes> {
        let Some(verdict) = self.0.take() else {
            return Flow::Forward(msg);
        };
        Flow::Defer(Box::pin(async move {
            match verdict.await {
                Ok(true) => Flow::Forward(msg),
                _ => Flow::Drop,
            }
        }))
    }
}

fn poll_deferred(
    chain: &mut StageChain<RawTcp>,
    cx: &mut SessionContext,
    out: &mut Collect,
) -> Poll<Result<(), CloseReason>> {
    let waker = std::task::Waker::noop();
    chain.poll_deferred(&mut Context::from_waker(waker), cx, out)
}

#[test]
fn later_messages_wait_behind_a_deferred_one_and_keep_their_order() {
    let (verdict, rx) = oneshot::channel();
    let mut chain = chain(vec![Box::new(Gatekeeper(Some(rx)))]);
    let (mut cx, mut out) = (cx(), Collect::default());
    chain
        .on_request(Bytes::from_static(b"1"), &mut cx, &mut out)
        .unwrap();
    assert!(chain.is_stalled(Direction::Request));
    chain
        .on_request(Bytes::from_static(b"2"), &mut cx, &mut out)
        .unwrap();
    chain
        .on_request(Bytes::from_static(b"3"), &mut cx, &mut out)
        .unwrap();
    assert!(chain.has_waiting(Direction::Request));
    assert!(out.to_backend.is_empty());
    // Responses are not held up by a deferred request.
    chain
        .on_response(Bytes::from_static(b"r"), &mut cx, &mut out)
        .unwrap();
    assert_eq!(out.to_client.len(), 1);

    assert!(poll_deferred(&mut chain, &mut cx, &mut out).is_pending());
    verdict.send(true).unwrap();
    assert!(matches!(
        poll_deferred(&mut chain, &mut cx, &mut out),
        Poll::Ready(Ok(()))
    ));
    assert_eq!(
        out.to_backend,
        [
            Bytes::from_static(b"1"),
            Bytes::from_static(b"2"),
            Bytes::from_static(b"3")
        ]
    );
    assert!(!chain.is_stalled(Direction::Request));
}

#[test]
fn a_deferred_decision_can_drop() {
    let (verdict, rx) = oneshot::channel();
    let mut chain = chain(vec![Box::new(Gatekeeper(Some(rx)))]);
    let (mut cx, mut out) = (cx(), Collect::default());
    chain
        .on_request(Bytes::from_static(b"secret"), &mut cx, &mut out)
        .unwrap();
    chain
        .on_request(Bytes::from_static(b"next"), &mut cx, &mut out)
        .unwrap();
    verdict.send(false).unwrap();
    assert!(poll_deferred(&mut chain, &mut cx, &mut out).is_ready());
    assert_eq!(out.to_backend, [Bytes::from_static(b"next")]);
}

#[test]
fn stages_may_read_and_write_the_session_context() {
    struct LearnPrincipal;
    impl Stage<RawTcp> for LearnPrincipal {
        fn kind(&self) -> &'static str {
            "learn"
        }
        fn on_request(&mut self, msg: Bytes, cx: &mut StageContext<'_>) -> Flow<Bytes, Bytes> {
            let principal = String::from_utf8_lossy(&msg).into_owned().into_boxed_str();
            cx.session_mut()
                .set_auth(crate::context::AuthState::Authenticated {
                    principal,
                    mechanism: crate::context::AuthMechanism::Plain,
                });
            Flow::Forward(msg)
        }
    }
    let mut chain = chain(vec![Box::new(LearnPrincipal)]);
    let (mut cx, mut out) = (cx(), Collect::default());
    chain
        .on_request(Bytes::from_static(b"alice"), &mut cx, &mut out)
        .unwrap();
    assert_eq!(cx.auth().principal(), Some("alice"));
}

/// Defers every request, each on the next verdict.
struct DeferEach(std::collections::VecDeque<oneshot::Receiver<bool>>);

impl Stage<RawTcp> for DeferEach {
    fn kind(&self) -> &'static str {
        "defer-each"
    }
    fn on_request(&mut self, msg: Bytes, _cx: &mut StageContext<'_>) -> Flow<Bytes, Bytes> {
        let Some(verdict) = self.0.pop_front() else {
            return Flow::Close(CloseReason::Stage {
                stage: "defer-each",
                reason: "more requests than verdicts".into(),
            });
        };
        Flow::Defer(Box::pin(async move {
            match verdict.await {
                Ok(true) => Flow::Forward(msg),
                _ => Flow::Drop,
            }
        }))
    }
}

#[test]
fn a_released_message_that_defers_again_keeps_the_lane_stalled_and_in_order() {
    let (verdicts, receivers): (Vec<_>, std::collections::VecDeque<_>) =
        (0..4).map(|_| oneshot::channel()).unzip();
    let mut chain = chain(vec![Box::new(DeferEach(receivers))]);
    let (mut cx, mut out) = (cx(), Collect::default());
    for msg in [&b"1"[..], b"2", b"3"] {
        chain
            .on_request(Bytes::copy_from_slice(msg), &mut cx, &mut out)
            .unwrap();
    }
    let mut verdicts = verdicts.into_iter();
    for released in 1..=3 {
        assert!(
            chain.is_stalled(Direction::Request),
            "before verdict {released}"
        );
        assert_eq!(chain.has_waiting(Direction::Request), released < 3);
        verdicts.next().unwrap().send(true).unwrap();
        assert!(poll_deferred(&mut chain, &mut cx, &mut out).is_ready());
        assert_eq!(out.to_backend.len(), released);
    }
    assert_eq!(out.to_backend, [&b"1"[..], b"2", b"3"]);
    assert!(!chain.is_stalled(Direction::Request));
    assert!(!chain.has_waiting(Direction::Request));
    // A lane that emptied stalls again on the next deferral, and empties again.
    chain
        .on_request(Bytes::from_static(b"4"), &mut cx, &mut out)
        .unwrap();
    assert!(chain.is_stalled(Direction::Request));
    verdicts.next().unwrap().send(true).unwrap();
    assert!(poll_deferred(&mut chain, &mut cx, &mut out).is_ready());
    assert!(!chain.is_stalled(Direction::Request));
    assert_eq!(out.to_backend.last().map(|b| &b[..]), Some(&b"4"[..]));
}
