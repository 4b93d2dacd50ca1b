//! The `quota` stage on real frames: what it counts, the `throttle_time_ms` its answers carry,
//! the hold it puts on the client's reads, and how its options are checked.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::FetchRequest;
use kafka_protocol::messages::fetch_response::FetchResponse;
use kafka_protocol::messages::produce_response::ProduceResponse;
use kafka_protocol::messages::{ApiKey, MetadataResponse, RequestKind, ResponseKind};
use proxy_core::codec::Codec;
use proxy_core::context::{AuthMechanism, AuthState, SessionContext};
use proxy_core::stage::{Flow, NewStage, Stage, StageContext, StageRegistry};
use tokio::time::Instant;

use super::*;
use crate::test_support::{
    Session, cx, metadata_request, produce_request, read_response, request_frame, response_frame,
};
use crate::{Kafka, kafka_registry};

fn registry() -> StageRegistry<Kafka> {
    kafka_registry()
}

fn factory(options: &str) -> Arc<dyn NewStage<Kafka>> {
    registry()
        .build(KIND, &toml::from_str(options).unwrap())
        .unwrap()
}

fn config_error(options: &str) -> String {
    match registry().build(KIND, &toml::from_str(options).unwrap()) {
        Ok(_) => panic!("accepted: {options}"),
        Err(err) => err.to_string(),
    }
}

fn metrics(factory: &Arc<dyn NewStage<Kafka>>) -> QuotaSnapshot {
    factory
        .as_any()
        .and_then(|any| any.downcast_ref::<NewQuota>())
        .unwrap()
        .metrics()
        .snapshot()
}

fn authenticated(principal: &str) -> SessionContext {
    let mut cx = cx();
    cx.set_auth(AuthState::Authenticated {
        principal: principal.into(),
        mechanism: AuthMechanism::ScramSha256,
    });
    cx
}

/// One client session through one quota stage: frames in, frames out.
struct Through {
    session: Session,
    stage: Box<dyn Stage<Kafka>>,
    cx: SessionContext,
}

impl Through {
    fn new(factory: &Arc<dyn NewStage<Kafka>>, cx: SessionContext) -> Self {
        Self {
            session: Session::default(),
            stage: factory.new_stage(&cx),
            cx,
        }
    }

    fn request(&mut self, frame: &Bytes) {
        let request = self.session.read_request(frame);
        match self
            .stage
            .on_request(request, &mut StageContext::new(&mut self.cx))
        {
            Flow::Forward(request) => self
                .session
                .codec
                .encode_request(request, &mut self.session.to_backend)
                .unwrap(),
            other => panic!("request not forwarded: {other:?}"),
        }
        self.session.to_backend.take_chunks();
    }

    /// The response as the client gets it.
    fn response(&mut self, frame: &Bytes) -> Bytes {
        let response = self.session.read_response(frame).unwrap();
        match self
            .stage
            .on_response(response, &mut StageContext::new(&mut self.cx))
        {
            Flow::Forward(response) => self
                .session
                .codec
                .encode_response(response, &mut self.session.to_client)
                .unwrap(),
            other => panic!("response not forwarded: {other:?}"),
        }
        let mut chunks = self.session.to_client.take_chunks();
        assert_eq!(chunks.len(), 1);
        chunks.remove(0)
    }

    /// How long from now the client's reads are held, if at all.
    fn held_for(&mut self) -> Option<Duration> {
        self.cx
            .take_client_hold()
            .map(|until| until.saturating_duration_since(Instant::now()))
    }
}

fn produce(correlation_id: i32, bytes: usize) -> Bytes {
    request_frame(
        ApiKey::Produce,
        9,
        correlation_id,
        &produce_request(1, bytes),
    )
}

fn produce_answer(correlation_id: i32, broker_throttle: i32) -> Bytes {
    let body =
        ResponseKind::Produce(ProduceResponse::default().with_throttle_time_ms(broker_throttle));
    response_frame(ApiKey::Produce, 9, correlation_id, &body)
}

fn throttle_of(api: ApiKey, version: i16, frame: &Bytes) -> i32 {
    match read_response(api, version, frame).1 {
        ResponseKind::Produce(body) => body.throttle_time_ms,
        ResponseKind::Fetch(body) => body.throttle_time_ms,
        ResponseKind::Metadata(body) => body.throttle_time_ms,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_produce_over_its_quota_is_answered_with_throttle_time_and_the_client_held() {
    let factory = factory("per = 'principal'\nproduce_bytes_per_second = 1000");
    let mut alice = Through::new(&factory, authenticated("alice"));
    // About 5 000 bytes at once against 1 000/s: about 4 s.
    alice.request(&produce(1, 5000));
    let answer = alice.response(&produce_answer(1, 0));
    let throttle = throttle_of(ApiKey::Produce, 9, &answer);
    assert!((4000..4200).contains(&throttle), "{throttle}");
    let held = alice.held_for().unwrap();
    assert_eq!(held.as_millis(), u128::try_from(throttle).unwrap());

    // Another principal on the same listener is its own entity: not throttled.
    let mut bob = Through::new(&factory, authenticated("bob"));
    bob.request(&produce(1, 500));
    let answer = produce_answer(1, 0);
    assert_eq!(bob.response(&answer), answer, "bob's answer was changed");
    assert_eq!(bob.held_for(), None);

    let snapshot = metrics(&factory);
    assert_eq!(snapshot.per, "principal");
    assert_eq!(snapshot.tracked, 2);
    let other = &snapshot.entities[0];
    assert_eq!(other.entity, OTHER_ENTITIES);
    assert!(other.produce_bytes > 5500);
    assert_eq!(other.throttles[0].quota, QuotaKind::Produce);
    assert_eq!(other.throttles[0].count, 1);
}

#[tokio::test(start_paused = true)]
async fn a_larger_throttle_from_the_broker_is_kept_and_a_smaller_one_raised() {
    let factory = factory("per = 'listener'\nproduce_bytes_per_second = 1000");
    let mut client = Through::new(&factory, cx());
    client.request(&produce(1, 3000));
    let answer = client.response(&produce_answer(1, 9000));
    assert_eq!(throttle_of(ApiKey::Produce, 9, &answer), 9000);
    // Held for the proxy's own throttle; the client backs off for the broker's.
    assert!(client.held_for().unwrap() < Duration::from_secs(3));

    tokio::time::advance(Duration::from_secs(60)).await;
    client.request(&produce(2, 3000));
    let answer = client.response(&produce_answer(2, 5));
    let throttle = throttle_of(ApiKey::Produce, 9, &answer);
    assert!(throttle > 1000, "{throttle}");
}

#[tokio::test(start_paused = true)]
async fn within_the_quota_answers_pass_as_the_broker_wrote_them() {
    let factory =
        factory("per = 'client_id'\nproduce_bytes_per_second = '1MiB'\nrequests_per_second = 100");
    let mut client = Through::new(&factory, cx());
    for n in 0..20 {
        client.request(&produce(n, 1000));
        let answer = produce_answer(n, 0);
        assert_eq!(client.response(&answer), answer);
        tokio::time::advance(Duration::from_millis(50)).await;
    }
    assert_eq!(client.held_for(), None);
    let snapshot = metrics(&factory);
    assert_eq!(snapshot.entities[0].requests, 20);
    assert_eq!(snapshot.entities[0].throttles[0].count, 0);
}

#[tokio::test(start_paused = true)]
async fn a_fetch_quota_counts_response_bytes_and_throttles_that_response() {
    let factory = factory("per = 'principal'\nfetch_bytes_per_second = 2000");
    let mut client = Through::new(&factory, authenticated("alice"));
    let fetch = RequestKind::Fetch(FetchRequest::default().with_max_wait_ms(100));
    client.request(&request_frame(ApiKey::Fetch, 12, 7, &fetch));
    // A response of about 10 000 bytes: a cluster id long enough to weigh that much.
    let body = FetchResponse::default().with_session_id(3);
    let mut big = ResponseKind::Fetch(body);
    if let ResponseKind::Fetch(body) = &mut big {
        body.responses = vec![
            kafka_protocol::messages::fetch_response::FetchableTopicResponse::default()
                .with_partitions(vec![
                    kafka_protocol::messages::fetch_response::PartitionData::default()
                        .with_records(Some(Bytes::from(vec![1u8; 10_000]))),
                ]),
        ];
    }
    let answer = client.response(&response_frame(ApiKey::Fetch, 12, 7, &big));
    let throttle = throttle_of(ApiKey::Fetch, 12, &answer);
    // ~10 000 bytes against 2 000/s judged over one window: ~4 s.
    assert!((3900..4200).contains(&throttle), "{throttle}");
    assert!(client.held_for().is_some());
    let snapshot = metrics(&factory);
    assert!(snapshot.entities[0].fetch_bytes > 10_000);
    assert_eq!(snapshot.entities[0].throttles[1].count, 1);
}

#[tokio::test(start_paused = true)]
async fn a_request_rate_quota_throttles_any_api_with_a_throttle_field() {
    let factory = factory("per = 'source'\nrequests_per_second = 2");
    let mut client = Through::new(&factory, cx());
    let metadata = request_frame(ApiKey::Metadata, 12, 1, &metadata_request(&["orders"]));
    let answer = |correlation_id| {
        response_frame(
            ApiKey::Metadata,
            12,
            correlation_id,
            &ResponseKind::Metadata(MetadataResponse::default()),
        )
    };
    client.request(&metadata);
    client.response(&answer(1));
    client.request(&metadata);
    client.response(&answer(1));
    assert_eq!(client.held_for(), None, "two in a second is within 2/s");
    client.request(&metadata);
    let throttled = client.response(&answer(1));
    assert_eq!(throttle_of(ApiKey::Metadata, 12, &throttled), 500);
    assert_eq!(client.held_for(), Some(Duration::from_millis(500)));
}

#[tokio::test(start_paused = true)]
async fn a_produce_without_an_answer_is_throttled_by_the_hold_alone() {
    let factory = factory("per = 'listener'\nproduce_bytes_per_second = 1000");
    let mut client = Through::new(&factory, cx());
    let fire_and_forget = request_frame(ApiKey::Produce, 9, 1, &produce_request(0, 5000));
    client.request(&fire_and_forget);
    let held = client.held_for().unwrap();
    assert!(held > Duration::from_secs(3), "{held:?}");
}

#[tokio::test(start_paused = true)]
async fn client_ids_are_entities_of_their_own_and_named_ones_have_their_own_metrics() {
    let factory = factory(
        "per = 'client_id'\nproduce_bytes_per_second = 1000\nmetrics_entities = ['test-client']",
    );
    let mut client = Through::new(&factory, cx());
    client.request(&produce(1, 5000));
    client.response(&produce_answer(1, 0));
    let snapshot = metrics(&factory);
    assert_eq!(snapshot.entities.len(), 2);
    assert_eq!(snapshot.entities[0].entity, "test-client");
    assert_eq!(snapshot.entities[0].throttles[0].count, 1);
    assert_eq!(snapshot.entities[1].entity, OTHER_ENTITIES);
    assert_eq!(snapshot.entities[1].produce_bytes, 0);
}

#[tokio::test(start_paused = true)]
async fn an_answer_for_a_request_it_did_not_see_passes_and_later_ones_still_match() {
    let factory = factory("per = 'listener'\nproduce_bytes_per_second = 1000");
    let mut client = Through::new(&factory, cx());
    client.request(&produce(1, 100));
    client.request(&produce(2, 5000));
    // The answer to 1, then to 2: the throttle belongs to 2.
    let first = produce_answer(1, 0);
    assert_eq!(client.response(&first), first);
    let second = client.response(&produce_answer(2, 0));
    assert!(throttle_of(ApiKey::Produce, 9, &second) > 3000);
}

#[tokio::test(start_paused = true)]
async fn with_entities_only_those_are_limited() {
    let factory =
        factory("per = 'principal'\nproduce_bytes_per_second = 1000\nentities = ['alice']");
    let mut bob = Through::new(&factory, authenticated("bob"));
    bob.request(&produce(1, 50_000));
    let answer = produce_answer(1, 0);
    assert_eq!(bob.response(&answer), answer);
    assert_eq!(bob.held_for(), None);
    let mut alice = Through::new(&factory, authenticated("alice"));
    alice.request(&produce(1, 5000));
    alice.response(&produce_answer(1, 0));
    assert!(alice.held_for().is_some());
    let snapshot = metrics(&factory);
    assert_eq!(snapshot.tracked, 1, "bob is not tracked");
}

#[test]
fn its_options_are_checked_and_errors_name_the_key() {
    let cases = [
        (
            "produce_bytes_per_second = 1000",
            "per: required option is missing",
        ),
        (
            "per = 'user'\nproduce_bytes_per_second = 1000",
            "per: unknown \"user\"",
        ),
        ("per = 'principal'", "at least one of"),
        (
            "per = 'principal'\nproduce_bytes_per_second = 0",
            "produce_bytes_per_second: must be greater than zero",
        ),
        (
            "per = 'principal'\nrequests_per_second = -1",
            "requests_per_second: -1 is negative",
        ),
        (
            "per = 'principal'\nrequests_per_second = 5\nsamples = 1",
            "samples: must be between 2 and 100",
        ),
        (
            "per = 'principal'\nrequests_per_second = 5\nwindow = '10ms'",
            "window: must be between",
        ),
        (
            "per = 'principal'\nrequests_per_second = 5\nmax_entities = 0",
            "max_entities: must be between",
        ),
        (
            "per = 'principal'\nrequests_per_second = 5\nproduce_bytes = 5",
            "produce_bytes: unknown option",
        ),
        (
            "per = 'principal'\nrequests_per_second = 5\nentities = []",
            "entities: must name at least one",
        ),
    ];
    for (options, expected) in cases {
        let err = config_error(options);
        assert!(err.contains(expected), "{options:?}: {err}");
    }
    // Every documented option at once is accepted.
    factory(
        "per = 'principal_client_id'\nproduce_bytes_per_second = '1MiB'\nfetch_bytes_per_second = '4MiB'\n\
         requests_per_second = 200\nwindow = '2s'\nsamples = 5\nmax_entities = 50\nmetrics_entities = ['a/b']\n\
         entities = ['a/b']",
    );
}
