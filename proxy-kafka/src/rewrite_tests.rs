//! Sans-IO tests of broker-address rewriting: every address a response carries is replaced,
//! what cannot carry one is written on as read, and ApiVersions is capped.

use bytes::Bytes;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::fetch_response::{
    FetchableTopicResponse, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::produce_response::{
    self, LeaderIdAndEpoch, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, BrokerId, DescribeClusterRequest, DescribeClusterResponse,
    FetchRequest, FetchResponse, FindCoordinatorRequest, FindCoordinatorResponse, ProduceResponse,
    RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::rewrite::{self, Rewritten, rewritable_versions};
use crate::test_support::*;
use crate::*;

#[test]
fn metadata_brokers_are_rewritten() {
    let map = RecordingMap::default();
    let request = metadata_request(&[]);
    let (rewritten, _, delivered) = rewrite(
        ApiKey::Metadata,
        12,
        &request,
        &ResponseKind::Metadata(metadata_response()),
        &map,
    );
    assert_eq!(rewritten.addresses, 2);
    assert_eq!(
        map.learnt(),
        [
            upstream(1, "kafka-1.internal", 9092),
            upstream(2, "kafka-2.internal", 9092)
        ]
    );
    let (_, ResponseKind::Metadata(body)) = read_response(ApiKey::Metadata, 12, &delivered) else {
        panic!("not a Metadata response");
    };
    let mut expected = metadata_response();
    for broker in &mut expected.brokers {
        broker.host = StrBytes::from_string(format!("sluice-{}.proxy", broker.node_id.0));
        broker.port = 19000 + broker.node_id.0;
    }
    assert_eq!(body, expected);
}

#[test]
fn find_coordinator_v3_top_level_address_is_rewritten() {
    let map = RecordingMap::default();
    let response = FindCoordinatorResponse::default()
        .with_node_id(BrokerId(3))
        .with_host(name("kafka-3.internal"))
        .with_port(9093);
    let request =
        RequestKind::FindCoordinator(FindCoordinatorRequest::default().with_key(name("g")));
    let (rewritten, _, delivered) = rewrite(
        ApiKey::FindCoordinator,
        3,
        &request,
        &ResponseKind::FindCoordinator(response),
        &map,
    );
    assert_eq!(rewritten.addresses, 1);
    assert_eq!(map.learnt(), [upstream(3, "kafka-3.internal", 9093)]);
    let (_, ResponseKind::FindCoordinator(body)) =
        read_response(ApiKey::FindCoordinator, 3, &delivered)
    else {
        panic!("not a FindCoordinator response");
    };
    assert_eq!((body.host.as_str(), body.port), ("sluice-3.proxy", 19003));
}

#[test]
fn find_coordinator_v4_coordinators_are_rewritten_except_failed_ones() {
    for version in [4, 6] {
        let map = RecordingMap::default();
        let coordinators = vec![
            Coordinator::default()
                .with_key(name("group-a"))
                .with_node_id(BrokerId(4))
                .with_host(name("kafka-4.internal"))
                .with_port(9094),
            Coordinator::default()
                .with_key(name("group-b"))
                .with_node_id(BrokerId(-1))
                .with_error_code(15),
            // A failed lookup that still names a node: not an address to rewrite either.
            Coordinator::default()
                .with_key(name("group-c"))
                .with_node_id(BrokerId(7))
                .with_error_code(15),
        ];
        let response = FindCoordinatorResponse::default().with_coordinators(coordinators.clone());
        let request = RequestKind::FindCoordinator(
            FindCoordinatorRequest::default().with_coordinator_keys(vec![
                name("group-a"),
                name("group-b"),
                name("group-c"),
            ]),
        );
        let (rewritten, _, delivered) = rewrite(
            ApiKey::FindCoordinator,
            version,
            &request,
            &ResponseKind::FindCoordinator(response),
            &map,
        );
        assert_eq!(rewritten.addresses, 1, "v{version}");
        assert_eq!(map.learnt(), [upstream(4, "kafka-4.internal", 9094)]);
        let (_, ResponseKind::FindCoordinator(body)) =
            read_response(ApiKey::FindCoordinator, version, &delivered)
        else {
            panic!("not a FindCoordinator response");
        };
        let mut expected = coordinators;
        expected[0].host = name("sluice-4.proxy");
        expected[0].port = 19004;
        assert_eq!(body.coordinators, expected);
    }
}

#[test]
fn describe_cluster_brokers_are_rewritten() {
    let map = RecordingMap::default();
    let response = DescribeClusterResponse::default()
        .with_cluster_id(name("cluster"))
        .with_brokers(vec![
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(5))
                .with_host(name("kafka-5.internal"))
                .with_port(9095)
                .with_rack(Some(name("rack-b"))),
        ]);
    let (rewritten, _, delivered) = rewrite(
        ApiKey::DescribeCluster,
        1,
        &RequestKind::DescribeCluster(DescribeClusterRequest::default()),
        &ResponseKind::DescribeCluster(response),
        &map,
    );
    assert_eq!(rewritten.addresses, 1);
    assert_eq!(map.learnt(), [upstream(5, "kafka-5.internal", 9095)]);
    let (_, ResponseKind::DescribeCluster(body)) =
        read_response(ApiKey::DescribeCluster, 1, &delivered)
    else {
        panic!("not a DescribeCluster response");
    };
    let broker = &body.brokers[0];
    assert_eq!(
        (broker.host.as_str(), broker.port),
        ("sluice-5.proxy", 19005)
    );
    assert_eq!(broker.rack.as_deref(), Some("rack-b"));
    assert_eq!(body.cluster_id.as_str(), "cluster");
}

fn fetch_response(node_endpoints: Vec<NodeEndpoint>) -> FetchResponse {
    let partition = PartitionData::default()
        .with_high_watermark(42)
        .with_records(Some(Bytes::from_static(b"record batch")));
    FetchResponse::default()
        .with_session_id(17)
        .with_responses(vec![
            FetchableTopicResponse::default().with_partitions(vec![partition]),
        ])
        .with_node_endpoints(node_endpoints)
}

#[test]
fn fetch_v16_node_endpoints_are_rewritten() {
    let map = RecordingMap::default();
    let endpoint = NodeEndpoint::default()
        .with_node_id(BrokerId(6))
        .with_host(name("kafka-6.internal"))
        .with_port(9096)
        .with_rack(Some(name("rack-c")));
    let (rewritten, _, delivered) = rewrite(
        ApiKey::Fetch,
        16,
        &RequestKind::Fetch(FetchRequest::default()),
        &ResponseKind::Fetch(fetch_response(vec![endpoint.clone()])),
        &map,
    );
    assert_eq!(rewritten.addresses, 1);
    assert_eq!(map.learnt(), [upstream(6, "kafka-6.internal", 9096)]);
    let (_, ResponseKind::Fetch(body)) = read_response(ApiKey::Fetch, 16, &delivered) else {
        panic!("not a Fetch response");
    };
    let expected = endpoint.with_host(name("sluice-6.proxy")).with_port(19006);
    assert_eq!(body, fetch_response(vec![expected]));
}

#[test]
fn a_fetch_v16_response_without_node_endpoints_is_not_re_encoded() {
    let map = RecordingMap::default();
    let (rewritten, as_read, delivered) = rewrite(
        ApiKey::Fetch,
        16,
        &RequestKind::Fetch(FetchRequest::default()),
        &ResponseKind::Fetch(fetch_response(vec![])),
        &map,
    );
    assert_eq!(rewritten, Rewritten::default());
    assert!(map.calls.borrow().is_empty());
    assert!(as_read, "the response was re-encoded: {delivered:?}");
}

fn produce_response(node_endpoints: Vec<produce_response::NodeEndpoint>) -> ProduceResponse {
    let partition = PartitionProduceResponse::default()
        .with_error_code(6)
        .with_current_leader(
            LeaderIdAndEpoch::default()
                .with_leader_id(BrokerId(7))
                .with_leader_epoch(3),
        );
    ProduceResponse::default()
        .with_responses(vec![
            TopicProduceResponse::default()
                .with_name(TopicName(name("orders")))
                .with_partition_responses(vec![partition]),
        ])
        .with_node_endpoints(node_endpoints)
}

fn produce_endpoint(node_id: i32, host: &'static str, port: i32) -> produce_response::NodeEndpoint {
    produce_response::NodeEndpoint::default()
        .with_node_id(BrokerId(node_id))
        .with_host(name(host))
        .with_port(port)
}

#[test]
fn produce_v10_node_endpoints_are_rewritten() {
    for version in [10, 11, 12] {
        let map = RecordingMap::default();
        let endpoint = produce_endpoint(7, "kafka-7.internal", 9097);
        let (rewritten, _, delivered) = rewrite(
            ApiKey::Produce,
            version,
            &produce_request(1, 10),
            &ResponseKind::Produce(produce_response(vec![endpoint])),
            &map,
        );
        assert_eq!(rewritten.addresses, 1, "v{version}");
        assert_eq!(map.learnt(), [upstream(7, "kafka-7.internal", 9097)]);
        let (_, body) = read_response(ApiKey::Produce, version, &delivered);
        let expected = produce_endpoint(7, "sluice-7.proxy", 19007);
        assert_eq!(
            body,
            ResponseKind::Produce(produce_response(vec![expected]))
        );
    }
}

#[test]
fn node_endpoints_a_stage_put_in_a_response_are_rewritten_too() {
    // Once a body is decoded, the decoded body is looked at, not the bytes as read.
    let mut session = Session::default();
    session.forward(&request_frame(
        ApiKey::Produce,
        10,
        11,
        &produce_request(1, 10),
    ));
    let wire = response_frame(
        ApiKey::Produce,
        10,
        11,
        &ResponseKind::Produce(produce_response(vec![])),
    );
    let mut response = session.read_response(&wire).unwrap();
    let ResponseKind::Produce(body) = response.body_mut().unwrap() else {
        panic!("not a Produce response");
    };
    body.node_endpoints = vec![produce_endpoint(8, "kafka-8.internal", 9098)];
    let map = RecordingMap::default();
    let rewritten = rewrite::rewrite_response(&mut response, &map).unwrap();
    assert_eq!(rewritten.addresses, 1);
    assert_eq!(map.learnt(), [upstream(8, "kafka-8.internal", 9098)]);
}

#[test]
fn api_versions_caps_the_rewritable_apis_only() {
    let map = RecordingMap::default();
    let (rewritten, _, delivered) = rewrite(
        ApiKey::ApiVersions,
        3,
        &RequestKind::ApiVersions(ApiVersionsRequest::default()),
        &ResponseKind::ApiVersions(api_versions_response()),
        &map,
    );
    // Produce (min and max), Fetch and Metadata; not ListOffsets nor ApiVersions.
    assert_eq!(rewritten.versions_capped, 3);
    assert!(map.calls.borrow().is_empty());
    let (_, ResponseKind::ApiVersions(body)) = read_response(ApiKey::ApiVersions, 3, &delivered)
    else {
        panic!("not an ApiVersions response");
    };
    let range = |api: ApiKey| rewritable_versions(api).unwrap();
    let offered: Vec<_> = body
        .api_keys
        .iter()
        .map(|e| (e.api_key, e.min_version, e.max_version))
        .collect();
    assert_eq!(
        offered,
        [
            (
                ApiKey::Produce as i16,
                range(ApiKey::Produce).min,
                range(ApiKey::Produce).max
            ),
            (ApiKey::Fetch as i16, 4, range(ApiKey::Fetch).max),
            (ApiKey::ListOffsets as i16, 1, 100),
            (ApiKey::Metadata as i16, 0, range(ApiKey::Metadata).max),
            (ApiKey::ApiVersions as i16, 0, 4),
        ]
    );
    assert!(range(ApiKey::Fetch).max < 30 && range(ApiKey::Metadata).max < 20);
}

#[test]
fn fetch_is_offered_up_to_the_last_version_whose_responses_stream() {
    let offered = rewritable_versions(ApiKey::Fetch).unwrap();
    assert_eq!(offered.max, 15);
    assert!(!rewrite::may_rewrite(ApiKey::Fetch as i16, offered.max));
    // A client that asks for v16 all the same has its endpoints rewritten (above), so its
    // response is still needed whole.
    assert!(rewrite::may_rewrite(ApiKey::Fetch as i16, 16));
}
