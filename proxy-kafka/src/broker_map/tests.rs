//! The broker map: what it records, refuses, advertises, and when it lets a broker go.

use std::net::IpAddr;
use std::time::Duration;

use super::*;

fn broker(node_id: i32, host: &str) -> UpstreamBroker {
    UpstreamBroker {
        node_id,
        host: host.into(),
        port: 9092,
    }
}

fn port_per_broker(broker_port_start: u16, max_brokers: u16) -> BrokerMap {
    BrokerMap::new(
        "kafka".into(),
        "proxy.example".into(),
        GatewayMode::PortPerBroker {
            broker_port_start,
            max_brokers,
            bind_ip: IpAddr::from([127, 0, 0, 1]),
            port_grace: DEFAULT_BROKER_PORT_GRACE,
        },
    )
}

#[test]
fn port_per_broker_advertises_start_plus_node_id_and_learns_per_route() {
    let map = port_per_broker(19100, 64);
    let route = RouteId::new("main");
    let brokers = [broker(1, "10.0.0.1"), broker(2, "10.0.0.2")];
    assert_eq!(map.learn(&route, &brokers, Listing::Full), [1, 2]);
    assert!(
        map.learn(&route, &brokers, Listing::Full).is_empty(),
        "nothing new"
    );
    // Another cluster behind the same listener: node 1 is a different broker there.
    let other = RouteId::new("other");
    assert_eq!(
        map.learn(&other, &[broker(1, "10.9.9.1")], Listing::Full),
        [1]
    );
    // A broker that moved is new again.
    assert_eq!(
        map.learn(&route, &[broker(2, "10.0.0.22")], Listing::Partial),
        [2]
    );
    assert_eq!(map.advertised(2), Some(("proxy.example".into(), 19102)));
    assert_eq!(map.broker_addr(2), Some("127.0.0.1:19102".parse().unwrap()));
    assert_eq!(
        map.upstream(&route, 1).unwrap().to_string(),
        "10.0.0.1:9092"
    );
    assert_eq!(
        map.upstream(&other, 1).unwrap().to_string(),
        "10.9.9.1:9092"
    );
    assert!(map.upstream(&other, 2).is_none());
}

#[test]
fn node_ids_without_a_port_in_the_range_are_refused_and_never_advertised() {
    let map = port_per_broker(19100, 8);
    let route = RouteId::new("main");
    let mut brokers: Vec<UpstreamBroker> = (0..500).map(|id| broker(id, "10.0.0.1")).collect();
    brokers.push(broker(-5, "10.0.0.5"));
    let new = map.learn(&route, &brokers, Listing::Full);
    assert_eq!(new, (0..8).collect::<Vec<_>>());
    for refused in [-5, 8, 499] {
        assert!(
            map.upstream(&route, refused).is_none(),
            "{refused} recorded"
        );
        assert_eq!(map.advertised(refused), None, "{refused} advertised");
        assert_eq!(map.broker_addr(refused), None, "{refused} has a port");
        assert_eq!(map.presence(refused), Presence::Unknown);
    }
    assert_eq!(map.broker_addr(7), Some("127.0.0.1:19107".parse().unwrap()));
    // Asked again, nothing is new and the refused ids stay refused.
    assert!(map.learn(&route, &brokers, Listing::Full).is_empty());
}

#[test]
fn a_range_at_the_top_of_the_port_numbers_ends_at_65535() {
    let map = port_per_broker(65530, 64);
    assert_eq!(map.broker_addr(5).map(|a| a.port()), Some(65535));
    assert!(map.broker_addr(6).is_none());
    assert!(map.broker_addr(-65531).is_none());
    assert_eq!(map.advertised(6), None);
}

#[test]
fn a_broker_left_out_of_a_full_list_is_absent_until_listed_again() {
    let map = port_per_broker(19100, 64);
    let (main, other) = (RouteId::new("main"), RouteId::new("other"));
    let all = [broker(1, "10.0.0.1"), broker(2, "10.0.0.2")];
    assert_eq!(map.reported_brokers(&main), 0);
    map.learn(&main, &all, Listing::Full);
    assert_eq!(map.presence(2), Presence::Reported);
    assert_eq!(map.reported_brokers(&main), 2);

    // A partial list (a coordinator, say) leaves nothing out.
    map.learn(&main, &all[..1], Listing::Partial);
    assert_eq!(map.presence(2), Presence::Reported);
    // Nor does an empty one.
    map.learn(&main, &[], Listing::Full);
    assert_eq!(map.presence(2), Presence::Reported);

    map.learn(&main, &all[..1], Listing::Full);
    let Presence::AbsentSince(since) = map.presence(2) else {
        panic!("broker 2 is still reported: {:?}", map.presence(2));
    };
    // Left out again, it stays absent since the first time.
    map.learn(&main, &all[..1], Listing::Full);
    assert_eq!(map.presence(2), Presence::AbsentSince(since));
    assert_eq!(
        map.reported_brokers(&main),
        1,
        "an absent broker is not counted"
    );
    assert!(map.upstream(&main, 2).is_some(), "kept while absent");

    // Another cluster behind the listener still has a node 2: its port is still needed.
    map.learn(&other, &[broker(2, "10.9.9.2")], Listing::Full);
    assert_eq!(map.presence(2), Presence::Reported);
    assert!(!map.forget_unreported(2));
    map.learn(&other, &[broker(3, "10.9.9.3")], Listing::Full);
    assert!(matches!(map.presence(2), Presence::AbsentSince(_)));

    // Listed again, it is reported; forgotten, it is new the next time it is listed.
    map.learn(&main, &all, Listing::Full);
    assert_eq!(map.presence(2), Presence::Reported);
    map.learn(&main, &all[..1], Listing::Full);
    assert!(map.forget_unreported(2));
    assert_eq!(map.presence(2), Presence::Unknown);
    assert!(map.upstream(&main, 2).is_none() && map.upstream(&other, 2).is_none());
    assert_eq!(map.learn(&main, &all, Listing::Full), [2]);
}

#[tokio::test(start_paused = true)]
async fn absence_is_dated_by_the_latest_cluster_to_let_a_broker_go() {
    let map = port_per_broker(19100, 64);
    let (main, other) = (RouteId::new("main"), RouteId::new("other"));
    map.learn(&main, &[broker(2, "10.0.0.2")], Listing::Full);
    map.learn(&other, &[broker(2, "10.9.9.2")], Listing::Full);
    map.learn(&main, &[broker(1, "10.0.0.1")], Listing::Full);
    tokio::time::advance(Duration::from_secs(60)).await;
    let later = Instant::now();
    map.learn(&other, &[broker(1, "10.9.9.1")], Listing::Full);
    assert_eq!(map.presence(2), Presence::AbsentSince(later));
}

#[test]
fn sni_gateways_name_brokers_by_pattern_and_refuse_negative_node_ids() {
    let map = BrokerMap::new(
        "kafka".into(),
        "unused".into(),
        GatewayMode::Sni {
            broker_host_pattern: HostPattern::parse("b-{node_id}.kafka.test").unwrap(),
            advertised_port: 9093,
        },
    );
    assert_eq!(map.advertised(3), Some(("b-3.kafka.test".into(), 9093)));
    assert_eq!(map.advertised(-5), None);
    assert_eq!(map.node_for_server_name("B-3.kafka.test"), Some(3));
    assert!(map.broker_addr(3).is_none());
    let route = RouteId::new("main");
    let learnt = map.learn(
        &route,
        &[broker(-5, "10.0.0.5"), broker(1001, "10.0.0.1")],
        Listing::Full,
    );
    assert_eq!(learnt, [1001]);
}

#[test]
fn an_sni_map_keeps_at_most_its_cap_of_brokers_per_cluster() {
    let map = BrokerMap::new(
        "kafka".into(),
        "unused".into(),
        GatewayMode::Sni {
            broker_host_pattern: HostPattern::parse("b-{node_id}.kafka.test").unwrap(),
            advertised_port: 9093,
        },
    );
    let route = RouteId::new("main");
    let flood: Vec<UpstreamBroker> = (0..SNI_MAX_BROKERS as i32 + 500)
        .map(|id| broker(id, "10.0.0.1"))
        .collect();
    let learnt = map.learn(&route, &flood, Listing::Full);
    assert_eq!(learnt.len(), SNI_MAX_BROKERS);
    // Known brokers are still updated; new ones stay refused.
    let learnt = map.learn(
        &route,
        &[broker(0, "10.0.0.2"), broker(100_000, "10.0.0.2")],
        Listing::Partial,
    );
    assert_eq!(learnt, [0]);
    assert!(map.upstream(&route, 100_000).is_none());
}
