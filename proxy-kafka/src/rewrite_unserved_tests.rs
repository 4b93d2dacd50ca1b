//! Sans-IO tests of brokers the proxy does not serve (a node id outside a gateway's range): a
//! response never names an address for them, and whether a response lists every broker is
//! passed on to the map.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, RequestKind, ResponseKind,
};

use crate::rewrite::Listing;
use crate::test_support::*;

/// What `map` was told of the listing, checking `learn` ran once.
fn listing(map: &RecordingMap) -> Listing {
    let calls = map.calls.borrow();
    let learnt: Vec<Listing> = calls
        .iter()
        .filter_map(|call| match call {
            MapCall::Learn(_, listing) => Some(*listing),
            MapCall::Advertised(_) => None,
        })
        .collect();
    assert_eq!(learnt.len(), 1, "{calls:?}");
    learnt[0]
}

fn broker(node_id: i32, host: &'static str) -> MetadataResponseBroker {
    MetadataResponseBroker::default()
        .with_node_id(BrokerId(node_id))
        .with_host(name(host))
        .with_port(9092)
}

#[test]
fn metadata_leaves_out_brokers_the_proxy_does_not_serve() {
    // RecordingMap serves node ids 0 to 99.
    let map = RecordingMap::default();
    let response = metadata_response()
        .with_brokers(vec![
            broker(1, "kafka-1.internal"),
            broker(-5, "kafka-minus-5.internal"),
            broker(150, "kafka-150.internal"),
            broker(2, "evil\r\nFORGED line"),
        ])
        .with_controller_id(BrokerId(150));
    let (rewritten, _, delivered) = rewrite(
        ApiKey::Metadata,
        12,
        &metadata_request(&[]),
        &ResponseKind::Metadata(response),
        &map,
    );
    assert_eq!((rewritten.addresses, rewritten.withheld), (2, 2));
    // The map hears of every broker (it refuses and logs the ones it cannot serve itself).
    let learnt: Vec<i32> = map.learnt().iter().map(|b| b.node_id).collect();
    assert_eq!(learnt, [1, -5, 150, 2]);
    assert_eq!(listing(&map), Listing::Full);
    let (_, ResponseKind::Metadata(body)) = read_response(ApiKey::Metadata, 12, &delivered) else {
        panic!("not a Metadata response");
    };
    let told: Vec<(i32, &str, i32)> = body
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.host.as_str(), b.port))
        .collect();
    assert_eq!(
        told,
        [(1, "sluice-1.proxy", 19001), (2, "sluice-2.proxy", 19002)]
    );
    // A controller whose address was left out is no controller the client can reach.
    assert_eq!(body.controller_id, BrokerId(-1));
}

#[test]
fn a_coordinator_the_proxy_does_not_serve_is_not_available() {
    for version in [3, 4] {
        let map = RecordingMap::default();
        let response = if version < 4 {
            FindCoordinatorResponse::default()
                .with_node_id(BrokerId(150))
                .with_host(name("kafka-150.internal"))
                .with_port(9092)
        } else {
            FindCoordinatorResponse::default().with_coordinators(vec![
                Coordinator::default()
                    .with_key(name("group-a"))
                    .with_node_id(BrokerId(150))
                    .with_host(name("kafka-150.internal"))
                    .with_port(9092),
                Coordinator::default()
                    .with_key(name("group-b"))
                    .with_node_id(BrokerId(4))
                    .with_host(name("kafka-4.internal"))
                    .with_port(9094),
            ])
        };
        let request = RequestKind::FindCoordinator(if version < 4 {
            FindCoordinatorRequest::default().with_key(name("group-a"))
        } else {
            FindCoordinatorRequest::default()
                .with_coordinator_keys(vec![name("group-a"), name("group-b")])
        });
        let (rewritten, _, delivered) = rewrite(
            ApiKey::FindCoordinator,
            version,
            &request,
            &ResponseKind::FindCoordinator(response),
            &map,
        );
        assert_eq!(rewritten.withheld, 1, "v{version}");
        assert_eq!(listing(&map), Listing::Partial);
        let (_, ResponseKind::FindCoordinator(body)) =
            read_response(ApiKey::FindCoordinator, version, &delivered)
        else {
            panic!("not a FindCoordinator response");
        };
        let unserved = if version < 4 {
            (
                body.error_code,
                body.node_id.0,
                body.host.as_str(),
                body.port,
            )
        } else {
            let c = &body.coordinators[0];
            (c.error_code, c.node_id.0, c.host.as_str(), c.port)
        };
        assert_eq!(unserved, (15, -1, "", -1), "v{version}");
        if version >= 4 {
            let c = &body.coordinators[1];
            assert_eq!((c.host.as_str(), c.port), ("sluice-4.proxy", 19004));
        }
    }
}

#[test]
fn describe_cluster_lists_every_broker_unless_it_failed() {
    for (error_code, expected) in [(0, Listing::Full), (29, Listing::Partial)] {
        let map = RecordingMap::default();
        let response = DescribeClusterResponse::default()
            .with_error_code(error_code)
            .with_controller_id(BrokerId(5))
            .with_brokers(vec![
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(5))
                    .with_host(name("kafka-5.internal"))
                    .with_port(9095),
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(-5))
                    .with_host(name("kafka-minus-5.internal"))
                    .with_port(9095),
            ]);
        let (rewritten, _, delivered) = rewrite(
            ApiKey::DescribeCluster,
            1,
            &RequestKind::DescribeCluster(DescribeClusterRequest::default()),
            &ResponseKind::DescribeCluster(response),
            &map,
        );
        assert_eq!((rewritten.addresses, rewritten.withheld), (1, 1));
        assert_eq!(listing(&map), expected);
        let (_, ResponseKind::DescribeCluster(body)) =
            read_response(ApiKey::DescribeCluster, 1, &delivered)
        else {
            panic!("not a DescribeCluster response");
        };
        assert_eq!(body.brokers.len(), 1);
        assert_eq!(body.controller_id, BrokerId(5));
    }
}
