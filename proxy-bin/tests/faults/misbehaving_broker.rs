//! A Kafka broker that steers what the proxy opens and logs: its Metadata names 500 node ids,
//! a negative one, and a host that holds a line break. The real binary runs a port-per-broker
//! listener in front of it, logging as text; the test watches which ports the process listens
//! on (/proc), what a client is told, and every log line.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use bytes::{Buf, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, MetadataRequest, MetadataResponse, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use sluice_tests::STEP_TIMEOUT;
use sluice_tests::faulty::broker::FaultyBroker;
use sluice_tests::kafka_wire::{frame, free_port_block};
use sluice_tests::procfs::listening_ports;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::{SLUICE, wait_until};

/// The broker ports the listener may open.
const MAX_BROKERS: u16 = 8;

/// A host whose line break, written to the log as is, would start a line of the broker's own.
const FORGING_HOST: &str = "evil\r\nFORGED level=ERROR the broker wrote this line";

/// Metadata v4 (no flexible header: `frame` writes request header v1): the brokers, as the
/// client is told them.
async fn metadata(stream: &mut TcpStream, correlation_id: i32) -> MetadataResponse {
    let mut body = BytesMut::new();
    MetadataRequest::default()
        .with_topics(Some(Vec::new()))
        .encode(&mut body, 4)
        .unwrap();
    let response = ask(stream, ApiKey::Metadata, 4, correlation_id, &body).await;
    let mut response = bytes::Bytes::from(response);
    let header = ResponseHeader::decode(&mut response, 0).unwrap();
    assert_eq!(header.correlation_id, correlation_id);
    MetadataResponse::decode(&mut response, 4).unwrap()
}

/// Sends one request and reads its response's frame (without the length), within
/// [`STEP_TIMEOUT`].
async fn ask(
    stream: &mut TcpStream,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &[u8],
) -> Vec<u8> {
    stream
        .write_all(&frame(api as i16, version, correlation_id, body))
        .await
        .unwrap();
    timeout(STEP_TIMEOUT, async {
        let len = stream.read_i32().await.unwrap();
        let mut response = vec![0; usize::try_from(len).unwrap()];
        stream.read_exact(&mut response).await.unwrap();
        response
    })
    .await
    .expect("the proxy answered in time")
}

/// ApiVersions v0 on `stream` is answered.
async fn api_versions(stream: &mut TcpStream, correlation_id: i32) {
    let mut body = BytesMut::new();
    ApiVersionsRequest::default().encode(&mut body, 0).unwrap();
    let response = ask(stream, ApiKey::ApiVersions, 0, correlation_id, &body).await;
    assert_eq!(
        (&response[..]).get_i32(),
        correlation_id,
        "the answer is another request's"
    );
}

/// The brokers a Metadata response names: node id, host and port.
fn told(response: &MetadataResponse) -> Vec<(i32, String, i32)> {
    response
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.host.to_string(), b.port))
        .collect()
}

/// Users depend on a broker's Metadata never making the proxy listen beyond its configured
/// ports, nor keep listening for brokers that left, nor write lines the broker chose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misbehaving_broker_opens_no_port_outside_the_range_and_forges_no_log_line() {
    let broker = FaultyBroker::start((Ipv4Addr::LOCALHOST, 0).into(), None).await;
    let mut announced: Vec<(i32, String)> = (0..500).map(|id| (id, "127.0.0.1".into())).collect();
    announced[3].1 = FORGING_HOST.to_owned();
    announced.push((-5, "127.0.0.1".to_owned()));
    broker.announce(announced);

    let bootstrap = free_port_block(MAX_BROKERS);
    let start = bootstrap + 1;
    let config = format!(
        r#"
[[listener]]
name = "kafka"
bind = "127.0.0.1:{bootstrap}"
protocol = "kafka"
cluster = "main"
gateway = "port-per-broker"
advertised_host = "127.0.0.1"
broker_port_start = {start}
max_brokers = {MAX_BROKERS}
broker_port_grace = "300ms"

[cluster.main]
backends = ["{broker}"]
"#,
        broker = broker.addr()
    );
    let sluice = SLUICE.run_text(&config, "misbehaving-broker.toml", "info");
    sluice.wait_for_text("sluice started");
    let pid = sluice.pid();

    // Discovery at start: node ids 0 to 7 get ports; 8 to 499 and -5 none.
    let every_port: BTreeSet<u16> = std::iter::once(bootstrap)
        .chain((0..MAX_BROKERS).map(|id| start + id))
        .collect();
    wait_until(
        "the proxy listens on the bootstrap and every broker port in range",
        || listening_ports(pid) == every_port,
    )
    .await;

    // The client is told of the brokers that have a port, at that port, and of no other.
    let mut client = TcpStream::connect((Ipv4Addr::LOCALHOST, bootstrap))
        .await
        .unwrap();
    let response = metadata(&mut client, 1).await;
    let expected: Vec<(i32, String, i32)> = (0..i32::from(MAX_BROKERS))
        .map(|id| (id, "127.0.0.1".to_owned(), i32::from(start) + id))
        .collect();
    assert_eq!(told(&response), expected);
    assert_eq!(
        listening_ports(pid),
        every_port,
        "asking again opened ports"
    );

    // A session on node 5's port, open before node 5 leaves.
    let mut on_node_5 = TcpStream::connect((Ipv4Addr::LOCALHOST, start + 5))
        .await
        .unwrap();
    api_versions(&mut on_node_5, 2).await;

    // The cluster shrinks to nodes 1 and 2; a client's Metadata shows it to the proxy.
    broker.announce(vec![(1, "127.0.0.1".into()), (2, "127.0.0.1".into())]);
    let response = metadata(&mut client, 3).await;
    assert_eq!(
        told(&response),
        [
            (1, "127.0.0.1".to_owned(), i32::from(start) + 1),
            (2, "127.0.0.1".to_owned(), i32::from(start) + 2),
        ]
    );
    let remaining: BTreeSet<u16> = [bootstrap, start + 1, start + 2].into();
    wait_until("the ports of the brokers that left are closed", || {
        listening_ports(pid) == remaining
    })
    .await;
    assert!(
        TcpStream::connect((Ipv4Addr::LOCALHOST, start + 5))
            .await
            .is_err(),
        "node 5's port still accepts"
    );
    // The session it accepted goes on.
    api_versions(&mut on_node_5, 4).await;

    // The log (every line up to the ports' closing, logged after the rest): the host is
    // escaped on its line, and nothing starts a line of the broker's.
    sluice.wait_for_text("closed the port of a broker the cluster no longer reports");
    let lines = sluice.text_lines();
    let learnt = lines
        .iter()
        .find(|line| line.contains("learned broker address") && line.contains("broker.node_id=3 "))
        .expect("node 3 was learnt");
    assert!(
        learnt.contains(r"evil\r\nFORGED"),
        "the host is not escaped: {learnt}"
    );
    for line in &lines {
        assert!(
            !line.contains("FORGED") || line.contains(r"evil\r\nFORGED"),
            "a line the broker wrote: {line:?}"
        );
    }
    // The node ids without a port are logged once, however often the broker names them.
    let refused: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains("brokers whose node id has no port"))
        .collect();
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert!(refused[0].contains("refused=493"), "{}", refused[0]);
}
