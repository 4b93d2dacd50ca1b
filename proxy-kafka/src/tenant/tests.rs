//! The tenant stage, sans-IO: names in requests get the tenant's prefix, names in answers lose
//! it, what is not the tenant's is left out, and what the stage cannot map is refused.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, DescribeConfigsRequest, FetchRequest, MetadataRequest, MetadataResponse,
    ProduceRequest, ProduceResponse, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use proxy_core::context::{AuthMechanism, AuthState, SessionContext};
use proxy_core::stage::{NewStage, StageChain, StageOptions, StageRegistry};

use super::*;
use crate::test_support::*;
use crate::{Kafka, kafka_registry};

const INVALID_TOPIC: i16 = 17;
const CLUSTER_DENIED: i16 = 31;
const UNKNOWN_TOPIC_ID: i16 = 100;

fn principal(name: &str) -> SessionContext {
    let mut cx = cx();
    cx.set_auth(AuthState::Authenticated {
        principal: name.into(),
        mechanism: AuthMechanism::ScramSha256,
    });
    cx
}

fn factory(options: &str) -> Arc<dyn NewStage<Kafka>> {
    let registry: StageRegistry<Kafka> = kafka_registry();
    let table: toml::Table = options.parse().unwrap();
    registry
        .build(KIND, &table)
        .unwrap_or_else(|err| panic!("{err}"))
}

fn config_error(options: &str) -> String {
    let table: toml::Table = options.parse().unwrap();
    let mut options = StageOptions::new(&table);
    match build(&mut options) {
        Ok(_) => panic!("{options:?} was accepted"),
        Err(err) => err.to_string(),
    }
}

/// A session through the tenant stage alone.
struct Through {
    chain: StageChain<Kafka>,
    session: Session,
    cx: SessionContext,
}

impl Through {
    fn new(factory: &Arc<dyn NewStage<Kafka>>, cx: SessionContext) -> Self {
        Self {
            chain: StageChain::new(vec![factory.new_stage(&cx)]),
            session: Session::default(),
            cx,
        }
    }

    fn request(
        &mut self,
        api: ApiKey,
        version: i16,
        id: i32,
        body: &RequestKind,
    ) -> Option<RequestKind> {
        let frame = request_frame(api, version, id, body);
        let request = self.session.read_request(&frame);
        self.chain
            .on_request(request, &mut self.cx, &mut self.session)
            .unwrap();
        let mut sent = self.session.to_backend.take_chunks();
        sent.pop().map(|frame| read_request(&frame).1)
    }

    fn response(
        &mut self,
        api: ApiKey,
        version: i16,
        id: i32,
        body: &ResponseKind,
    ) -> ResponseKind {
        let frame = response_frame(api, version, id, body);
        let response = self.session.read_response(&frame).unwrap();
        self.chain
            .on_response(response, &mut self.cx, &mut self.session)
            .unwrap();
        self.answered(api, version).expect("an answer")
    }

    fn answered(&mut self, api: ApiKey, version: i16) -> Option<ResponseKind> {
        let mut got = self.session.to_client.take_chunks();
        got.pop().map(|frame| read_response(api, version, &frame).1)
    }
}

fn produce(topic: &'static str) -> RequestKind {
    RequestKind::Produce(ProduceRequest::default().with_acks(1).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(TopicName(name(topic)))
            .with_partition_data(vec![
                PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::from_static(b"records"))),
            ]),
    ]))
}

fn metadata_answer(topics: &[(&'static str, u128)]) -> ResponseKind {
    ResponseKind::Metadata(
        MetadataResponse::default().with_topics(
            topics
                .iter()
                .map(|(topic, id)| {
                    MetadataResponseTopic::default()
                        .with_name(Some(TopicName(name(topic))))
                        .with_topic_id(uuid::Uuid::from_u128(*id))
                })
                .collect(),
        ),
    )
}

fn metadata_names(answer: &ResponseKind) -> Vec<String> {
    let ResponseKind::Metadata(answer) = answer else {
        panic!("{answer:?}")
    };
    answer
        .topics
        .iter()
        .map(|topic| topic.name.as_ref().unwrap().0.to_string())
        .collect()
}

#[test]
fn produce_goes_to_the_tenants_topic_and_the_answer_names_it_as_the_tenant_does() {
    let tenant = factory("prefix = \"{principal}.\"");
    let mut alice = Through::new(&tenant, principal("alice"));
    let Some(RequestKind::Produce(sent)) = alice.request(ApiKey::Produce, 9, 1, &produce("orders"))
    else {
        panic!("not forwarded")
    };
    assert_eq!(&*sent.topic_data[0].name.0, "alice.orders");
    let answer = ResponseKind::Produce(ProduceResponse::default().with_responses(vec![
        TopicProduceResponse::default()
            .with_name(TopicName(name("alice.orders")))
            .with_partition_responses(vec![PartitionProduceResponse::default()]),
    ]));
    let ResponseKind::Produce(got) = alice.response(ApiKey::Produce, 9, 1, &answer) else {
        panic!()
    };
    assert_eq!(&*got.responses[0].name.0, "orders");
}

#[test]
fn metadata_shows_only_the_tenants_topics_and_never_the_internal_ones() {
    let tenant = factory("prefix = \"{principal}.\"");
    let mut alice = Through::new(&tenant, principal("alice"));
    let all = RequestKind::Metadata(MetadataRequest::default().with_topics(None));
    alice
        .request(ApiKey::Metadata, 12, 1, &all)
        .expect("forwarded");
    let got = alice.response(
        ApiKey::Metadata,
        12,
        1,
        &metadata_answer(&[
            ("alice.orders", 1),
            ("bob.orders", 2),
            ("__consumer_offsets", 3),
            ("alice.audit", 4),
        ]),
    );
    assert_eq!(metadata_names(&got), ["orders", "audit"]);
}

fn fetch_by_id(id: u128) -> RequestKind {
    RequestKind::Fetch(
        FetchRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic_id(uuid::Uuid::from_u128(id))
                    .with_partitions(vec![FetchPartition::default()]),
            ]),
    )
}

fn fetch_codes(answer: &ResponseKind) -> Vec<i16> {
    let ResponseKind::Fetch(answer) = answer else {
        panic!("{answer:?}")
    };
    answer
        .responses
        .iter()
        .flat_map(|topic| topic.partitions.iter().map(|p| p.error_code))
        .collect()
}

#[test]
fn a_topic_id_of_another_tenant_is_unknown() {
    let tenant = factory("prefix = \"{principal}.\"");
    // Bob's session reads metadata: the listener learns both tenants' ids from the broker.
    let mut bob = Through::new(&tenant, principal("bob"));
    bob.request(
        ApiKey::Metadata,
        12,
        1,
        &RequestKind::Metadata(MetadataRequest::default()),
    );
    bob.response(
        ApiKey::Metadata,
        12,
        1,
        &metadata_answer(&[("alice.orders", 1), ("bob.orders", 2)]),
    );
    let mut alice = Through::new(&tenant, principal("alice"));
    assert!(
        alice
            .request(ApiKey::Fetch, 13, 1, &fetch_by_id(1))
            .is_some()
    );
    // Answered, so the stage's own answer to the next is not held behind it.
    let answer = ResponseKind::Fetch(kafka_protocol::messages::FetchResponse::default());
    alice.response(ApiKey::Fetch, 13, 1, &answer);
    assert!(
        alice
            .request(ApiKey::Fetch, 13, 2, &fetch_by_id(2))
            .is_none()
    );
    let got = alice
        .answered(ApiKey::Fetch, 13)
        .expect("refused by the stage");
    assert_eq!(fetch_codes(&got), [UNKNOWN_TOPIC_ID]);
    // An id nobody named is unknown too.
    assert!(
        alice
            .request(ApiKey::Fetch, 13, 3, &fetch_by_id(9))
            .is_none()
    );
}

#[test]
fn a_name_too_long_once_prefixed_is_refused_not_truncated() {
    let tenant = factory("prefix = \"team-a.\"");
    let mut anyone = Through::new(&tenant, cx());
    let long: &'static str = Box::leak("t".repeat(245).into_boxed_str());
    assert!(
        anyone
            .request(ApiKey::Produce, 9, 1, &produce(long))
            .is_none()
    );
    let Some(ResponseKind::Produce(got)) = anyone.answered(ApiKey::Produce, 9) else {
        panic!("no answer")
    };
    assert_eq!(
        &*got.responses[0].name.0, long,
        "named as the tenant named it"
    );
    assert_eq!(
        got.responses[0].partition_responses[0].error_code,
        INVALID_TOPIC
    );
    // 242 + "team-a." is 249: allowed.
    let fits: &'static str = Box::leak("t".repeat(242).into_boxed_str());
    assert!(
        anyone
            .request(ApiKey::Produce, 9, 2, &produce(fits))
            .is_some()
    );
}

#[test]
fn an_api_not_mapped_is_refused_and_every_api_is_either_mapped_or_refused() {
    let tenant = factory("prefix = \"{principal}.\"");
    let mut refused = 0;
    for api in ApiKey::iter() {
        let (body, _) = crate::authorization::default_request_for_tests(api);
        let range = api.valid_versions();
        let Some(version) = (range.min..=range.max)
            .rev()
            .find(|version| body.encode(&mut bytes::BytesMut::new(), *version).is_ok())
        else {
            panic!("{api:?}: no version encodes")
        };
        let mut alice = Through::new(&tenant, principal("alice"));
        let forwarded = alice.request(api, version, 1, &body).is_some();
        if !maps(api) {
            refused += 1;
            assert!(!forwarded, "{api:?} is not mapped but reached the broker");
            assert!(
                alice.answered(api, version).is_some(),
                "{api:?} got no answer"
            );
        }
    }
    assert!(refused > 30, "{refused}");
}

#[test]
fn a_principal_holding_the_separator_has_no_tenant_so_it_cannot_reach_into_another() {
    let tenant = factory("prefix = \"{principal}.\"");
    // "alice.admin." would start with "alice.": alice.admin is refused, not mapped.
    let mut admin = Through::new(&tenant, principal("alice.admin"));
    assert!(
        admin
            .request(ApiKey::Produce, 9, 1, &produce("orders"))
            .is_none()
    );
    assert!(admin.answered(ApiKey::Produce, 9).is_some());
    let dashed = factory("prefix = \"{principal}-\"");
    let mut alice_admin = Through::new(&dashed, principal("alice.admin"));
    assert!(
        alice_admin
            .request(ApiKey::Produce, 9, 1, &produce("orders"))
            .is_some()
    );
}

#[test]
fn a_session_without_a_principal_is_refused_everything() {
    let tenant = factory("prefix = \"{principal}.\"");
    let mut nobody = Through::new(&tenant, cx());
    assert!(
        nobody
            .request(ApiKey::Produce, 9, 1, &produce("orders"))
            .is_none()
    );
    assert!(nobody.answered(ApiKey::Produce, 9).is_some());
}

#[test]
fn a_broker_config_is_the_clusters_and_refused() {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    let tenant = factory("prefix = \"{principal}.\"");
    let mut alice = Through::new(&tenant, principal("alice"));
    let broker = RequestKind::DescribeConfigs(DescribeConfigsRequest::default().with_resources(
        vec![DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_static_str("1"))],
    ));
    assert!(
        alice
            .request(ApiKey::DescribeConfigs, 4, 1, &broker)
            .is_none()
    );
    let Some(ResponseKind::DescribeConfigs(got)) = alice.answered(ApiKey::DescribeConfigs, 4)
    else {
        panic!()
    };
    assert_eq!(got.results[0].error_code, CLUSTER_DENIED);
}

#[test]
fn a_subscription_regex_matches_only_the_tenants_topics() {
    let tenant = factory("prefix = \"{principal}.\"");
    let mut alice = Through::new(&tenant, principal("alice"));
    let heartbeat = RequestKind::ConsumerGroupHeartbeat(
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(kafka_protocol::messages::GroupId(name("g")))
            .with_subscribed_topic_regex(Some(StrBytes::from_static_str("^ord.*"))),
    );
    let Some(RequestKind::ConsumerGroupHeartbeat(sent)) =
        alice.request(ApiKey::ConsumerGroupHeartbeat, 1, 1, &heartbeat)
    else {
        panic!()
    };
    assert_eq!(&*sent.group_id.0, "alice.g");
    assert_eq!(
        sent.subscribed_topic_regex.as_deref(),
        Some("^alice\\.(ord.*)")
    );
}

#[test]
fn regexes_are_confined_to_the_prefix_or_refused() {
    let ns = super::names::Namespace::new("team-a.");
    // librdkafka joins several patterns; every start anchor now means "after the prefix".
    assert_eq!(
        ns.regex("(^ord.*)|(^pay.*)").as_deref(),
        Some(r"^team\-a\.((ord.*)|(pay.*))")
    );
    // A class's ^ negates; an escaped one is a character.
    assert_eq!(ns.regex(r"[^x]\^").as_deref(), Some(r"^team\-a\.([^x]\^)"));
    assert_eq!(ns.regex("").as_deref(), Some(""));
    // Parentheses that would close the group and match anything are refused.
    assert_eq!(ns.regex("x)|(.*"), None);
    assert_eq!(ns.regex("(x"), None);
    // A `]` first in a class is a character: these parentheses are class members, and the
    // `|` after would otherwise escape the group.
    assert_eq!(ns.regex("[](])|([])]?.*"), None);
    assert_eq!(ns.regex("[]x]").as_deref(), Some(r"^team\-a\.([]x])"));
    // What RE2 and POSIX read differently is refused.
    assert_eq!(ns.regex(r"\Q(\E)|(\Q)\E?.*"), None);
    assert_eq!(ns.regex(r"[\])]?|.*[\]?(]?"), None);
    assert_eq!(ns.regex("[[:alpha:](]"), None);
    assert_eq!(ns.unregex(r"^team\-a\.(ord.*)").as_deref(), Some("ord.*"));
}

#[test]
fn templates_are_checked_and_errors_name_the_option() {
    for (options, expected) in [
        ("", "prefix"),
        ("prefix = \"\"", "must not be empty"),
        ("prefix = \"{user}.\"", "placeholders"),
        ("prefix = \"{principal}{sni}\"", "more than one"),
        (
            "prefix = \"team a.\"",
            "characters a topic name cannot hold",
        ),
        ("prefix = \"{principal}\"", "needs a separator"),
    ] {
        let err = config_error(options);
        assert!(err.contains(expected), "{options}: {err}");
    }
    factory("prefix = \"{sni}-\"");
    factory("prefix = \"team-a.\"\ntenants = [\"team-a\"]");
}

#[test]
fn the_sni_names_the_tenant_when_the_template_says_so() {
    let tenant = factory("prefix = \"{sni}.\"");
    let mut cx = cx();
    cx.set_sni(Some(Box::from("eu.example.com")));
    let mut session = Through::new(&tenant, cx);
    let Some(RequestKind::Produce(sent)) =
        session.request(ApiKey::Produce, 9, 1, &produce("orders"))
    else {
        panic!()
    };
    assert_eq!(&*sent.topic_data[0].name.0, "eu.example.com.orders");
    assert_eq!(session.cx.tenant(), Some("eu.example.com"));
}
