//! A Kafka broker that fails on cue, for fault-injection tests behind a Kafka listener.
//!
//! It answers ApiVersions, Metadata (naming itself as node 1, or whatever brokers a test has it
//! [`announce`](FaultyBroker::announce): hundreds of them, negative node ids, hosts holding line
//! breaks) and ListGroups (no groups), after a SASL PLAIN exchange when it is given credentials. On cue it dies while a request is in
//! flight, as a killed process does: once it has read a request of the chosen API it answers
//! nothing, closes every connection and its listening socket, and the port is free for a new
//! broker. Or it closes each connection in the middle of the SASL exchange: the SaslHandshake
//! is answered, the SaslAuthenticate is read and the connection closed. Or it holds requests of
//! one API unanswered, as a broker holds a long-poll Fetch, and closes when its client does;
//! it keeps reading meanwhile, and what it reads after a held request waits behind it (a broker
//! answers in order). When the hold is lifted, the requests held are answered, in order.
//! Requests are read with `KafkaCodec`; responses are encoded with `kafka-protocol` directly.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI16, AtomicU64, Ordering};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, ListGroupsResponse, MetadataResponse, RequestKind,
    ResponseHeader, ResponseKind, SaslAuthenticateResponse, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use proxy_core::codec::Codec;
use proxy_core::sasl::parse_plain;
use proxy_kafka::{KafkaCodec, KafkaRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::STEP_TIMEOUT;

/// No API chosen to die on.
const NO_API: i16 = -1;

/// The APIs it answers, with the versions it offers.
const VERSIONS: [(ApiKey, i16, i16); 5] = [
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
];

/// A user name and password the broker requires over SASL PLAIN.
#[derive(Debug, Clone, Copy)]
pub struct Plain {
    /// The user name.
    pub username: &'static str,
    /// Its password.
    pub password: &'static str,
}

/// A running broker; dies (as if killed) when dropped.
#[derive(Debug)]
pub struct FaultyBroker {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Becomes true once every connection and the listening socket are closed.
    dead: watch::Receiver<bool>,
}

/// What the connections share with the test.
#[derive(Debug)]
struct Shared {
    addr: SocketAddr,
    sasl: Option<Plain>,
    /// Cancelled to kill the broker.
    kill: CancellationToken,
    /// The API key whose next request kills the broker, or [`NO_API`].
    die_on: AtomicI16,
    /// The API key whose requests are read and not answered until it changes, or [`NO_API`].
    hold: watch::Sender<i16>,
    /// Requests held so far, on every connection.
    held: AtomicU64,
    /// Whether connections are closed once their SaslAuthenticate request is read.
    close_during_sasl: AtomicBool,
    /// Connections closed in the middle of the SASL exchange.
    sasl_closes: AtomicU64,
    /// Connections that authenticated.
    authenticated: AtomicU64,
    /// The brokers Metadata names (node id, host; all on this broker's port), the first one
    /// the controller; `None`: itself, as node 1.
    announced: watch::Sender<Option<Vec<(i32, String)>>>,
}

impl FaultyBroker {
    /// A broker on `addr` (port 0 for a fresh one), requiring `sasl` when given. Binding is
    /// retried for a bounded while: the port of a broker that just died is taken again.
    pub async fn start(addr: SocketAddr, sasl: Option<Plain>) -> Self {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(err) => {
                    tries += 1;
                    assert!(tries < 100, "cannot bind the broker on {addr}: {err}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        let addr = listener.local_addr().expect("broker address");
        let shared = Arc::new(Shared {
            addr,
            sasl,
            kill: CancellationToken::new(),
            die_on: AtomicI16::new(NO_API),
            hold: watch::Sender::new(NO_API),
            held: AtomicU64::new(0),
            close_during_sasl: AtomicBool::new(false),
            sasl_closes: AtomicU64::new(0),
            authenticated: AtomicU64::new(0),
            announced: watch::Sender::new(None),
        });
        let (report, dead) = watch::channel(false);
        tokio::spawn(run(listener, shared.clone(), report));
        Self { addr, shared, dead }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Dies once it has read the next request of `api` (after SASL, when it requires it).
    pub fn die_on(&self, api: ApiKey) {
        self.shared.die_on.store(api as i16, Ordering::SeqCst);
    }

    /// Reads requests of `api` and does not answer them, nor anything read after them on the
    /// same connection, until the hold changes (a connection closing meanwhile leaves them
    /// unanswered); `None` answers what was held, in order, and every API again.
    pub fn hold(&self, api: Option<ApiKey>) {
        let key = api.map_or(NO_API, |api| api as i16);
        self.shared.hold.send_replace(key);
    }

    /// How many requests it has held so far, on every connection.
    pub fn held(&self) -> u64 {
        self.shared.held.load(Ordering::SeqCst)
    }

    /// Whether to close each connection once its SaslAuthenticate request is read (instead of
    /// answering it).
    pub fn close_during_sasl(&self, close: bool) {
        self.shared.close_during_sasl.store(close, Ordering::SeqCst);
    }

    /// Names `brokers` (node id, host), all on this broker's port, in every Metadata response
    /// from now on; the first is the controller. A test makes the broker misbehave with it:
    /// node ids by the hundred, negative ones, a host that holds `"\r\n"`.
    pub fn announce(&self, brokers: Vec<(i32, String)>) {
        self.shared.announced.send_replace(Some(brokers));
    }

    /// How many connections it closed in the middle of the SASL exchange.
    pub fn sasl_closes(&self) -> u64 {
        self.shared.sasl_closes.load(Ordering::SeqCst)
    }

    /// How many connections authenticated.
    pub fn authenticated(&self) -> u64 {
        self.shared.authenticated.load(Ordering::SeqCst)
    }

    /// Waits, within [`STEP_TIMEOUT`], until the broker is dead: every connection and its
    /// listening socket closed.
    pub async fn wait_dead(&mut self) {
        tokio::time::timeout(STEP_TIMEOUT, self.dead.wait_for(|dead| *dead))
            .await
            .expect("the broker died in time")
            .expect("the broker reports its death");
    }
}

impl Drop for FaultyBroker {
    fn drop(&mut self) {
        self.shared.kill.cancel();
    }
}

/// Accepts until killed, then closes everything and reports it.
async fn run(listener: TcpListener, shared: Arc<Shared>, dead: watch::Sender<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = shared.kill.cancelled() => break,
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    connections.spawn(serve(stream, shared.clone()));
                }
            }
        }
    }
    drop(listener);
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    let _ = dead.send(true);
}

/// Serves one connection until the peer leaves, a fault ends it, or the broker dies.
async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    let mut codec = KafkaCodec::default();
    let mut buf = BytesMut::new();
    let mut authenticated = shared.sasl.is_none();
    let mut hold = shared.hold.subscribe();
    // Requests read while holding, oldest first, with the hold they were read under.
    let mut held: VecDeque<(i16, KafkaRequest)> = VecDeque::new();
    loop {
        let mut request = loop {
            release_lifted(&mut stream, &shared, &mut hold, &mut held).await;
            match codec.decode_request(&mut buf) {
                Ok(Some(request)) => break request,
                Ok(None) => {}
                Err(_) => return,
            }
            // `read_buf` is cancel-safe: bytes read before a hold change stay in `buf`.
            tokio::select! {
                read = stream.read_buf(&mut buf) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                },
                changed = hold.changed(), if !held.is_empty() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        };
        let Ok(body) = request.body().cloned() else {
            return;
        };
        let response: ResponseKind = match body {
            RequestKind::SaslHandshake(handshake) => {
                let plain = &*handshake.mechanism == "PLAIN";
                let mut response = SaslHandshakeResponse::default()
                    .with_mechanisms(vec![StrBytes::from_static_str("PLAIN")]);
                if !plain {
                    response.error_code = ResponseError::UnsupportedSaslMechanism.code();
                }
                respond(&mut stream, &request, response.into()).await;
                if !plain {
                    return;
                }
                continue;
            }
            RequestKind::SaslAuthenticate(round) => {
                if shared.close_during_sasl.load(Ordering::SeqCst) {
                    shared.sasl_closes.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                let accepted = shared.sasl.is_some_and(|plain| {
                    parse_plain(&round.auth_bytes).is_some_and(|login| {
                        login.username == plain.username && login.password == plain.password
                    })
                });
                let response = if accepted {
                    authenticated = true;
                    shared.authenticated.fetch_add(1, Ordering::SeqCst);
                    SaslAuthenticateResponse::default()
                } else {
                    SaslAuthenticateResponse::default()
                        .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                };
                respond(&mut stream, &request, response.into()).await;
                if !accepted {
                    return;
                }
                continue;
            }
            // A broker that requires SASL closes a connection that asks anything else first.
            _ if !authenticated => return,
            _ if shared.die_on.load(Ordering::SeqCst) == request.api_key() => {
                shared.kill.cancel();
                // Killed with the request read and unanswered: `run` aborts this task.
                std::future::pending::<()>().await;
                return;
            }
            _ if *hold.borrow() == request.api_key() || !held.is_empty() => {
                shared.held.fetch_add(1, Ordering::SeqCst);
                held.push_back((*hold.borrow(), request));
                continue;
            }
            other => match answer(&shared, other) {
                Some(response) => response,
                None => return,
            },
        };
        respond(&mut stream, &request, response).await;
    }
}

/// Answers, in order, the requests held under a hold that has since changed or been lifted.
async fn release_lifted(
    stream: &mut TcpStream,
    shared: &Shared,
    hold: &mut watch::Receiver<i16>,
    held: &mut VecDeque<(i16, KafkaRequest)>,
) {
    let now = *hold.borrow_and_update();
    while held
        .front()
        .is_some_and(|(under, _)| now == NO_API || *under != now)
    {
        let Some((_, mut request)) = held.pop_front() else {
            return;
        };
        let Some(response) = request.body().cloned().ok().and_then(|b| answer(shared, b)) else {
            return;
        };
        respond(stream, &request, response).await;
    }
}

/// The answer to a request of an API it serves (not SASL), `None` for any other.
fn answer(shared: &Shared, body: RequestKind) -> Option<ResponseKind> {
    Some(match body {
        RequestKind::ApiVersions(_) => ApiVersionsResponse::default()
            .with_api_keys(
                VERSIONS
                    .iter()
                    .map(|&(api, min, max)| {
                        ApiVersion::default()
                            .with_api_key(api as i16)
                            .with_min_version(min)
                            .with_max_version(max)
                    })
                    .collect(),
            )
            .into(),
        RequestKind::Metadata(_) => metadata(shared).into(),
        RequestKind::ListGroups(_) => ListGroupsResponse::default().into(),
        _ => return None,
    })
}

/// The Metadata response: the brokers announced, or itself as node 1.
fn metadata(shared: &Shared) -> MetadataResponse {
    let brokers = shared
        .announced
        .borrow()
        .clone()
        .unwrap_or_else(|| vec![(1, shared.addr.ip().to_string())]);
    let controller = brokers.first().map_or(-1, |(node_id, _)| *node_id);
    MetadataResponse::default()
        .with_brokers(
            brokers
                .into_iter()
                .map(|(node_id, host)| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(node_id))
                        .with_host(StrBytes::from(host))
                        .with_port(i32::from(shared.addr.port()))
                })
                .collect(),
        )
        .with_cluster_id(Some(StrBytes::from_static_str("faulty")))
        .with_controller_id(BrokerId(controller))
}

/// Writes `body` as the response to `request`, in the request's version.
async fn respond(stream: &mut TcpStream, request: &KafkaRequest, body: ResponseKind) {
    let Some(api) = request.api() else { return };
    let version = request.api_version();
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(request.correlation_id())
        .encode(&mut frame, api.response_header_version(version))
        .expect("encode a response header");
    body.encode(&mut frame, version)
        .expect("encode a response body");
    let len = i32::try_from(frame.len() - 4).expect("a small response");
    frame[..4].copy_from_slice(&len.to_be_bytes());
    let _ = stream.write_all(&frame).await;
}
