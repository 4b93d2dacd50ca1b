//! The authorization stage, sans-IO: requests in, what reaches the broker and what the client
//! gets back. Every API the stage does not cover is refused whatever the rules say (checked
//! against every request type kafka-protocol knows); mixed requests are trimmed and their
//! answers merged in request order; listings are filtered; topic ids are learned; a reload
//! decides the same session's next request.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, GroupId, InitProducerIdRequest, ListGroupsResponse,
    MetadataRequest, MetadataResponse, OffsetCommitRequest, ProduceRequest, ProduceResponse,
    RequestKind, ResponseKind, TopicName,
};
use proxy_core::context::{AuthMechanism, AuthState, SessionContext};
use proxy_core::stage::{NewStage, StageChain};

use super::*;
use crate::Kafka;
use crate::test_support::*;

const TOPIC_DENIED: i16 = 29;
const GROUP_DENIED: i16 = 30;
const CLUSTER_DENIED: i16 = 31;
const UNKNOWN_TOPIC_ID: i16 = 100;

fn alice() -> SessionContext {
    let mut cx = cx();
    cx.set_auth(AuthState::Authenticated {
        principal: "alice".into(),
        mechanism: AuthMechanism::ScramSha256,
    });
    cx
}

fn rules(text: &str) -> Arc<SharedAcl> {
    Arc::new(SharedAcl::new(Acl::parse(text).unwrap()))
}

const EVERYTHING: &str = "[[rule]]\nprincipal = \"*\"\nresource = \"topic\"\nname = \"*\"\noperations = [\"all\"]\n\n\
     [[rule]]\nprincipal = \"*\"\nresource = \"group\"\nname = \"*\"\noperations = [\"all\"]\n\n\
     [[rule]]\nprincipal = \"*\"\nresource = \"transactional_id\"\nname = \"*\"\noperations = [\"all\"]\n\n\
     [[rule]]\nprincipal = \"*\"\nresource = \"cluster\"\noperations = [\"all\"]\n";

const ORDERS_ONLY: &str = "[[rule]]\nprincipal = \"alice\"\nresource = \"topic\"\nname = \"orders\"\n\
     operations = [\"write\", \"read\"]\n";

/// A session through the authorization stage alone.
struct Through {
    chain: StageChain<Kafka>,
    session: Session,
    cx: SessionContext,
    factory: NewAuthorization,
}

impl Through {
    fn new(acl: Arc<SharedAcl>, cx: SessionContext) -> Self {
        let factory = NewAuthorization::new(acl, AuditAllows::No);
        Self {
            chain: StageChain::new(vec![factory.new_stage(&cx)]),
            session: Session::default(),
            cx,
            factory,
        }
    }

    /// Sends a request; returns what reached the broker (decoded), if anything.
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
        assert!(sent.len() <= 1);
        sent.pop().map(|frame| read_request(&frame).1)
    }

    /// Delivers the broker's answer; returns what the client got (decoded), if anything.
    fn response(
        &mut self,
        api: ApiKey,
        version: i16,
        id: i32,
        body: &ResponseKind,
    ) -> Option<ResponseKind> {
        let frame = response_frame(api, version, id, body);
        let response = self.session.read_response(&frame).unwrap();
        self.chain
            .on_response(response, &mut self.cx, &mut self.session)
            .unwrap();
        self.answered(api, version)
    }

    /// What the client got since the last look (the stage's own answer, say).
    fn answered(&mut self, api: ApiKey, version: i16) -> Option<ResponseKind> {
        let mut got = self.session.to_client.take_chunks();
        assert!(got.len() <= 1);
        got.pop().map(|frame| read_response(api, version, &frame).1)
    }
}

/// A default request of `api`, in the highest version the request type encodes (some request
/// types stop below the API's range).
fn default_request(api: ApiKey) -> (i16, RequestKind) {
    let (body, _) = super::error_answer::error_answer_tests::defaults(api);
    let range = api.valid_versions();
    let version = (range.min..=range.max)
        .rev()
        .find(|version| body.encode(&mut bytes::BytesMut::new(), *version).is_ok())
        .unwrap_or_else(|| panic!("{api:?}: no version encodes"));
    (version, body)
}

#[test]
fn an_api_not_covered_is_refused_even_when_every_rule_allows() {
    let mut seen = 0;
    for api in ApiKey::iter() {
        let (version, body) = default_request(api);
        let mut through = Through::new(rules(EVERYTHING), alice());
        let forwarded = through.request(api, version, 7, &body).is_some();
        let answered = through.answered(api, version).is_some();
        if covers(api) {
            assert!(forwarded, "{api:?} is covered and everything is allowed");
        } else {
            seen += 1;
            assert!(!forwarded, "{api:?} is not covered but reached the broker");
            assert!(answered, "{api:?} was neither forwarded nor answered");
        }
    }
    assert!(seen > 10, "only {seen} APIs are not covered");
}

#[test]
fn without_rules_nothing_but_versions_and_sasl_reaches_the_broker() {
    for api in ApiKey::iter() {
        let (version, body) = default_request(api);
        let mut through = Through::new(rules(""), alice());
        let forwarded = through.request(api, version, 7, &body).is_some();
        let open = matches!(
            api,
            ApiKey::ApiVersions
                | ApiKey::SaslHandshake
                | ApiKey::SaslAuthenticate
                | ApiKey::GetTelemetrySubscriptions
                | ApiKey::PushTelemetry
                | ApiKey::DescribeCluster
        );
        // Requests naming no resource of a covered API (an empty Produce, Metadata for every
        // topic, ListGroups) may pass: there is nothing in them to deny, and answers are
        // filtered.
        if forwarded && !open {
            assert!(
                covers(api) && names_nothing(api),
                "{api:?} reached the broker with no rule"
            );
        }
    }
}

/// APIs whose default request names no resource the stage decides on.
fn names_nothing(api: ApiKey) -> bool {
    matches!(
        api,
        ApiKey::Produce
            | ApiKey::Fetch
            | ApiKey::ListOffsets
            | ApiKey::Metadata
            | ApiKey::OffsetFetch
            | ApiKey::FindCoordinator
            | ApiKey::OffsetForLeaderEpoch
            | ApiKey::CreateTopics
            | ApiKey::DeleteTopics
            | ApiKey::DeleteRecords
            | ApiKey::CreatePartitions
            | ApiKey::DescribeGroups
            | ApiKey::ListGroups
            | ApiKey::DeleteGroups
            | ApiKey::DescribeConfigs
            | ApiKey::AlterConfigs
            | ApiKey::IncrementalAlterConfigs
            | ApiKey::DescribeProducers
            | ApiKey::DescribeTransactions
            | ApiKey::ListTransactions
            | ApiKey::ConsumerGroupDescribe
            | ApiKey::DescribeTopicPartitions
    )
}

fn produce_to(topics: &[&'static str], acks: i16) -> RequestKind {
    RequestKind::Produce(
        ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(1000)
            .with_topic_data(
                topics
                    .iter()
                    .map(|topic| {
                        TopicProduceData::default()
                            .with_name(TopicName(name(topic)))
                            .with_partition_data(vec![
                                PartitionProduceData::default()
                                    .with_index(0)
                                    .with_records(Some(Bytes::from_static(b"records"))),
                            ])
                    })
                    .collect(),
            ),
    )
}

fn produce_answer(topics: &[&'static str]) -> ResponseKind {
    ResponseKind::Produce(
        ProduceResponse::default().with_responses(
            topics
                .iter()
                .map(|topic| {
                    TopicProduceResponse::default()
                        .with_name(TopicName(name(topic)))
                        .with_partition_responses(vec![
                            PartitionProduceResponse::default()
                                .with_index(0)
                                .with_base_offset(42),
                        ])
                })
                .collect(),
        ),
    )
}

fn produce_codes(answer: &ResponseKind) -> Vec<(String, i16)> {
    let ResponseKind::Produce(answer) = answer else {
        panic!("{answer:?}")
    };
    answer
        .responses
        .iter()
        .map(|topic| {
            (
                topic.name.0.to_string(),
                topic.partition_responses[0].error_code,
            )
        })
        .collect()
}

#[test]
fn a_mixed_produce_forwards_the_allowed_topics_and_merges_the_denied_in_request_order() {
    let mut through = Through::new(rules(ORDERS_ONLY), alice());
    let sent = through
        .request(
            ApiKey::Produce,
            8,
            1,
            &produce_to(&["secrets", "orders", "audit"], 1),
        )
        .expect("the allowed part is sent");
    let RequestKind::Produce(sent) = sent else {
        panic!()
    };
    let names: Vec<&str> = sent.topic_data.iter().map(|topic| &*topic.name.0).collect();
    assert_eq!(names, ["orders"]);
    let got = through
        .response(ApiKey::Produce, 8, 1, &produce_answer(&["orders"]))
        .unwrap();
    assert_eq!(
        produce_codes(&got),
        [
            ("secrets".into(), TOPIC_DENIED),
            ("orders".into(), 0),
            ("audit".into(), TOPIC_DENIED)
        ]
    );
}

#[test]
fn a_produce_denied_whole_is_answered_without_the_broker_and_dropped_when_acks_is_zero() {
    let mut through = Through::new(rules(ORDERS_ONLY), alice());
    assert!(
        through
            .request(ApiKey::Produce, 8, 1, &produce_to(&["secrets"], 1))
            .is_none()
    );
    let got = through
        .answered(ApiKey::Produce, 8)
        .expect("answered by the stage");
    assert_eq!(produce_codes(&got), [("secrets".into(), TOPIC_DENIED)]);
    // acks = 0: the client waits for no answer, so none is written.
    assert!(
        through
            .request(ApiKey::Produce, 8, 2, &produce_to(&["secrets"], 0))
            .is_none()
    );
    assert!(through.answered(ApiKey::Produce, 8).is_none());
}

fn metadata_with(topics: &[(&'static str, uuid::Uuid)]) -> ResponseKind {
    ResponseKind::Metadata(
        MetadataResponse::default().with_topics(
            topics
                .iter()
                .map(|(topic, id)| {
                    MetadataResponseTopic::default()
                        .with_name(Some(TopicName(name(topic))))
                        .with_topic_id(*id)
                })
                .collect(),
        ),
    )
}

fn metadata_names(answer: &ResponseKind) -> Vec<(String, i16)> {
    let ResponseKind::Metadata(answer) = answer else {
        panic!("{answer:?}")
    };
    answer
        .topics
        .iter()
        .map(|topic| (topic.name.as_ref().unwrap().0.to_string(), topic.error_code))
        .collect()
}

#[test]
fn metadata_for_every_topic_lists_only_what_the_principal_may_describe() {
    let mut through = Through::new(rules(ORDERS_ONLY), alice());
    let all = RequestKind::Metadata(MetadataRequest::default().with_topics(None));
    assert!(through.request(ApiKey::Metadata, 12, 1, &all).is_some());
    let orders = uuid::Uuid::from_u128(1);
    let got = through
        .response(
            ApiKey::Metadata,
            12,
            1,
            &metadata_with(&[
                ("secrets", uuid::Uuid::from_u128(2)),
                ("orders", orders),
                ("__consumer_offsets", uuid::Uuid::from_u128(3)),
            ]),
        )
        .unwrap();
    assert_eq!(metadata_names(&got), [("orders".into(), 0)]);
}

#[test]
fn metadata_naming_a_denied_topic_still_asks_the_broker_for_brokers() {
    let mut through = Through::new(rules(ORDERS_ONLY), alice());
    let named = metadata_request(&["secrets"]);
    let sent = through
        .request(ApiKey::Metadata, 4, 1, &named)
        .expect("brokers are asked for");
    let RequestKind::Metadata(sent) = sent else {
        panic!()
    };
    assert_eq!(sent.topics, Some(Vec::new()));
    let got = through
        .response(ApiKey::Metadata, 4, 1, &metadata_with(&[]))
        .unwrap();
    assert_eq!(metadata_names(&got), [("secrets".into(), TOPIC_DENIED)]);
}

fn fetch_by_id(id: uuid::Uuid) -> RequestKind {
    RequestKind::Fetch(
        FetchRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic_id(id)
                    .with_partitions(vec![FetchPartition::default().with_partition(0)]),
            ]),
    )
}

fn fetch_answer(id: uuid::Uuid) -> ResponseKind {
    ResponseKind::Fetch(FetchResponse::default().with_responses(vec![
        FetchableTopicResponse::default().with_topic_id(id).with_partitions(vec![
            PartitionData::default()
                .with_partition_index(0)
                .with_high_watermark(10)
                .with_records(Some(Bytes::from_static(b"data"))),
        ]),
    ]))
}

fn fetch_codes(answer: &ResponseKind) -> Vec<(i16, bool)> {
    let ResponseKind::Fetch(answer) = answer else {
        panic!("{answer:?}")
    };
    answer
        .responses
        .iter()
        .flat_map(|topic| topic.partitions.iter())
        .map(|partition| {
            let records = partition
                .records
                .as_ref()
                .is_some_and(|records| !records.is_empty());
            (partition.error_code, records)
        })
        .collect()
}

#[test]
fn a_fetch_by_an_unknown_topic_id_is_refused_until_metadata_names_it() {
    let acl = rules(ORDERS_ONLY);
    let mut through = Through::new(acl.clone(), alice());
    let orders = uuid::Uuid::from_u128(11);
    assert!(
        through
            .request(ApiKey::Fetch, 13, 1, &fetch_by_id(orders))
            .is_none()
    );
    let got = through.answered(ApiKey::Fetch, 13).unwrap();
    assert_eq!(fetch_codes(&got), [(UNKNOWN_TOPIC_ID, false)]);

    // Metadata names it (on another session of the listener: ids are shared).
    let mut other = Through {
        chain: StageChain::new(vec![through.factory.new_stage(&alice())]),
        session: Session::default(),
        cx: alice(),
        factory: through.factory.clone(),
    };
    other.request(
        ApiKey::Metadata,
        12,
        1,
        &RequestKind::Metadata(MetadataRequest::default()),
    );
    other.response(
        ApiKey::Metadata,
        12,
        1,
        &metadata_with(&[("orders", orders)]),
    );

    assert!(
        through
            .request(ApiKey::Fetch, 13, 2, &fetch_by_id(orders))
            .is_some()
    );
    let got = through
        .response(ApiKey::Fetch, 13, 2, &fetch_answer(orders))
        .unwrap();
    assert_eq!(fetch_codes(&got), [(0, true)]);

    // The rule goes: a fetch session's data for orders is withheld from the next answer,
    // even for a partition the request did not list (KIP-227 sessions answer those too).
    acl.replace(Acl::parse("").unwrap());
    let incremental = RequestKind::Fetch(
        FetchRequest::default()
            .with_replica_id((-1).into())
            .with_session_id(5)
            .with_session_epoch(2),
    );
    assert!(
        through
            .request(ApiKey::Fetch, 13, 3, &incremental)
            .is_some()
    );
    let got = through
        .response(ApiKey::Fetch, 13, 3, &fetch_answer(orders))
        .unwrap();
    assert_eq!(fetch_codes(&got), [(TOPIC_DENIED, false)]);
}

#[test]
fn a_reload_decides_the_next_request_of_the_same_session() {
    let acl = rules(ORDERS_ONLY);
    let mut through = Through::new(acl.clone(), alice());
    assert!(
        through
            .request(ApiKey::Produce, 8, 1, &produce_to(&["orders"], 1))
            .is_some()
    );
    through.response(ApiKey::Produce, 8, 1, &produce_answer(&["orders"]));
    acl.replace(Acl::parse("").unwrap());
    assert!(
        through
            .request(ApiKey::Produce, 8, 2, &produce_to(&["orders"], 1))
            .is_none()
    );
    let got = through.answered(ApiKey::Produce, 8).unwrap();
    assert_eq!(produce_codes(&got), [("orders".into(), TOPIC_DENIED)]);
    acl.replace(Acl::parse(ORDERS_ONLY).unwrap());
    assert!(
        through
            .request(ApiKey::Produce, 8, 3, &produce_to(&["orders"], 1))
            .is_some()
    );
}

#[test]
fn an_idempotent_producer_needs_write_on_some_topic_or_idempotent_write() {
    let idempotent = RequestKind::InitProducerId(
        InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000),
    );
    let mut through = Through::new(rules(ORDERS_ONLY), alice());
    assert!(
        through
            .request(ApiKey::InitProducerId, 4, 1, &idempotent)
            .is_some()
    );
    let describe_only = "[[rule]]\nprincipal = \"alice\"\nresource = \"topic\"\nname = \"*\"\n\
         operations = [\"describe\"]\n";
    let mut through = Through::new(rules(describe_only), alice());
    assert!(
        through
            .request(ApiKey::InitProducerId, 4, 1, &idempotent)
            .is_none()
    );
    let Some(ResponseKind::InitProducerId(answer)) = through.answered(ApiKey::InitProducerId, 4)
    else {
        panic!("no answer")
    };
    assert_eq!(answer.error_code, CLUSTER_DENIED);
    // A deny on every topic takes the allow back.
    let denied_all = format!(
        "{ORDERS_ONLY}\n[[rule]]\nprincipal = \"alice\"\nresource = \"topic\"\nname = \"*\"\n\
         operations = [\"write\"]\neffect = \"deny\"\n"
    );
    let mut through = Through::new(rules(&denied_all), alice());
    assert!(
        through
            .request(ApiKey::InitProducerId, 4, 1, &idempotent)
            .is_none()
    );
}

#[test]
fn an_offset_commit_in_a_denied_group_fails_every_partition_with_the_groups_error() {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    let commit = RequestKind::OffsetCommit(
        OffsetCommitRequest::default()
            .with_group_id(GroupId(name("payments")))
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(name("orders")))
                    .with_partitions(vec![
                        OffsetCommitRequestPartition::default().with_partition_index(0),
                        OffsetCommitRequestPartition::default().with_partition_index(1),
                    ]),
            ]),
    );
    let mut through = Through::new(rules(ORDERS_ONLY), alice());
    assert!(
        through
            .request(ApiKey::OffsetCommit, 8, 1, &commit)
            .is_none()
    );
    let Some(ResponseKind::OffsetCommit(answer)) = through.answered(ApiKey::OffsetCommit, 8) else {
        panic!("no answer")
    };
    let codes: Vec<i16> = answer
        .topics
        .iter()
        .flat_map(|topic| topic.partitions.iter().map(|p| p.error_code))
        .collect();
    assert_eq!(codes, [GROUP_DENIED, GROUP_DENIED]);
}

#[test]
fn list_groups_shows_only_describable_groups_unless_the_cluster_may_be_described() {
    use kafka_protocol::messages::list_groups_response::ListedGroup;
    let answer = ResponseKind::ListGroups(ListGroupsResponse::default().with_groups(vec![
        ListedGroup::default().with_group_id(GroupId(name("payments"))),
        ListedGroup::default().with_group_id(GroupId(name("team-a"))),
    ]));
    let team = "[[rule]]\nprincipal = \"alice\"\nresource = \"group\"\nname = \"team-\"\n\
         pattern = \"prefixed\"\noperations = [\"read\"]\n";
    let mut through = Through::new(rules(team), alice());
    let list = RequestKind::ListGroups(Default::default());
    assert!(through.request(ApiKey::ListGroups, 4, 1, &list).is_some());
    let Some(ResponseKind::ListGroups(got)) = through.response(ApiKey::ListGroups, 4, 1, &answer)
    else {
        panic!()
    };
    let names: Vec<&str> = got.groups.iter().map(|group| &*group.group_id.0).collect();
    assert_eq!(names, ["team-a"]);
    let mut through = Through::new(rules(EVERYTHING), alice());
    through.request(ApiKey::ListGroups, 4, 1, &list);
    let Some(ResponseKind::ListGroups(got)) = through.response(ApiKey::ListGroups, 4, 1, &answer)
    else {
        panic!()
    };
    assert_eq!(got.groups.len(), 2);
}

#[test]
fn anonymous_sessions_are_decided_by_anonymous_rules_only() {
    let anonymous = "[[rule]]\nprincipal = \"ANONYMOUS\"\nresource = \"topic\"\nname = \"public\"\n\
         operations = [\"write\"]\n";
    let mut through = Through::new(rules(anonymous), cx());
    assert!(
        through
            .request(ApiKey::Produce, 8, 1, &produce_to(&["public"], 1))
            .is_some()
    );
    let mut through = Through::new(rules(anonymous), alice());
    assert!(
        through
            .request(ApiKey::Produce, 8, 1, &produce_to(&["public"], 1))
            .is_none()
    );
}

#[test]
fn decisions_are_counted_by_resource_operation_and_outcome() {
    let mut through = Through::new(rules(ORDERS_ONLY), alice());
    through.request(
        ApiKey::Produce,
        8,
        1,
        &produce_to(&["orders", "secrets"], 1),
    );
    through.request(ApiKey::Produce, 8, 2, &produce_to(&["orders"], 1));
    let counts = through.factory.metrics().snapshot();
    let count = |allowed| {
        counts
            .iter()
            .find(|count| {
                count.resource == ResourceType::Topic
                    && count.operation == Operation::Write
                    && count.allowed == allowed
            })
            .map_or(0, |count| count.count)
    };
    assert_eq!(count(true), 2);
    assert_eq!(count(false), 1);
}

#[test]
fn a_regex_subscription_needs_describe_on_every_topic() {
    use kafka_protocol::messages::ConsumerGroupHeartbeatRequest;
    let heartbeat = RequestKind::ConsumerGroupHeartbeat(
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(name("g")))
            .with_subscribed_topic_regex(Some(
                kafka_protocol::protocol::StrBytes::from_static_str(".*"),
            )),
    );
    let group = "[[rule]]\nprincipal = \"alice\"\nresource = \"group\"\nname = \"g\"\n\
         operations = [\"read\"]\n";
    // The broker would resolve ".*" over every topic for her: refused.
    let mut through = Through::new(rules(&format!("{ORDERS_ONLY}\n{group}")), alice());
    assert!(
        through
            .request(ApiKey::ConsumerGroupHeartbeat, 1, 1, &heartbeat)
            .is_none()
    );
    let Some(ResponseKind::ConsumerGroupHeartbeat(answer)) =
        through.answered(ApiKey::ConsumerGroupHeartbeat, 1)
    else {
        panic!("no answer")
    };
    assert_eq!(answer.error_code, TOPIC_DENIED);
    let everything = "[[rule]]\nprincipal = \"alice\"\nresource = \"topic\"\nname = \"*\"\n\
         operations = [\"describe\"]\n";
    let mut through = Through::new(rules(&format!("{everything}\n{group}")), alice());
    assert!(
        through
            .request(ApiKey::ConsumerGroupHeartbeat, 1, 1, &heartbeat)
            .is_some()
    );
}
