//! `quota`: Kafka's client quotas at the proxy (KIP-13, KIP-124, KIP-219), enforced the way a
//! broker enforces them.
//!
//! ```toml
//! [[listener.stage]]
//! kind = "quota"
//! per = "principal"                  # principal | client_id | principal_client_id | source | listener
//! produce_bytes_per_second = "1MiB"  # Produce request bytes
//! fetch_bytes_per_second = "4MiB"    # Fetch response bytes
//! requests_per_second = 200          # requests of every API
//! # window = "1s"                    # the ring: `samples` windows of `window` (Kafka's defaults)
//! # samples = 11
//! # max_entities = 10000             # beyond, new entities share one overflow entity
//! # metrics_entities = ["alice"]     # entities with their own metric labels
//! # entities = ["alice", "bob"]      # only these are limited (Kafka's per-user quotas);
//! #                                  # others pass uncounted
//! ```
//!
//! Several `quota` stages, each with its own `entities`, give entities limits of their own, as
//! Kafka's per-user and per-client-id quota overrides do.
//!
//! Each request is passed on at once and counted against its entity (who `per` says it is),
//! as a broker counts it: over a ring of `samples` windows. When a request puts an entity over
//! a limit, the session stops reading from the client for the throttle time through the read
//! gate ([`PauseReason::Quota`](proxy_core::PauseReason)), as a broker mutes the connection —
//! from that request on, so requests pipelined behind it wait too — and the request's answer
//! carries `throttle_time_ms` (the larger of the broker's and the proxy's: clients back off and
//! report it); other sessions are untouched. Fetch quotas count response bytes, so a Fetch is
//! throttled when its answer passes, and that answer carries it.
//!
//! Limits are per proxy process, as Kafka's are per broker: behind a load balancer with N
//! replicas, an entity spread over all of them gets up to N times the limit.

mod entities;
mod metrics;
mod throttle_field;
mod window;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use parking_lot::Mutex;
use proxy_core::audit::{AuditDetail, AuditKind};
use proxy_core::context::SessionContext;
use proxy_core::stage::{Flow, NewStage, Stage, StageConfigError, StageContext, StageOptions};
use tokio::time::Instant;
use tracing::debug;

use self::entities::{EntityTable, Measured};
pub use self::metrics::{
    EntitySnapshot, OTHER_ENTITIES, QuotaKind, QuotaMetrics, QuotaSnapshot, THROTTLE_BUCKETS,
    ThrottleSnapshot,
};
use crate::{Kafka, KafkaRequest, KafkaResponse, Origin};

/// The kind name used in configuration.
pub const KIND: &str = "quota";

/// The principal of sessions nobody authenticated, as Kafka names it.
const ANONYMOUS: &str = "ANONYMOUS";

/// Kafka's `quota.window.size.seconds` and `quota.window.num`.
const DEFAULT_WINDOW: Duration = Duration::from_secs(1);
const DEFAULT_SAMPLES: u64 = 11;
const DEFAULT_MAX_ENTITIES: u64 = 10_000;

/// Separates principal and client id in a `principal_client_id` key: SASL names cannot hold
/// it (PLAIN uses it as its own separator).
const KEY_SEPARATOR: char = '\0';

/// Requests a session keeps track of beyond which the oldest are forgotten: far above the
/// codec's in-flight limit, which pauses the client long before.
const MAX_PENDING: usize = 100_000;

/// What identifies an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Per {
    Principal,
    ClientId,
    PrincipalClientId,
    Source,
    Listener,
}

impl Per {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "principal" => Self::Principal,
            "client_id" => Self::ClientId,
            "principal_client_id" => Self::PrincipalClientId,
            "source" => Self::Source,
            "listener" => Self::Listener,
            _ => return None,
        })
    }

    fn label(self) -> &'static str {
        match self {
            Self::Principal => "principal",
            Self::ClientId => "client_id",
            Self::PrincipalClientId => "principal_client_id",
            Self::Source => "source",
            Self::Listener => "listener",
        }
    }

    fn uses_client_id(self) -> bool {
        matches!(self, Self::ClientId | Self::PrincipalClientId)
    }
}

/// The configured limits, per second.
#[derive(Debug, Clone, Copy)]
struct Limits {
    produce: Option<u64>,
    fetch: Option<u64>,
    requests: Option<u64>,
}

/// Builds a quota factory from its options.
pub fn build(options: &mut StageOptions<'_>) -> Result<Arc<dyn NewStage<Kafka>>, StageConfigError> {
    let per_text = options
        .string("per")?
        .ok_or(StageConfigError::MissingOption { key: "per" })?;
    let per = Per::parse(per_text).ok_or_else(|| StageConfigError::InvalidOption {
        key: "per",
        message: format!(
            "unknown {per_text:?}: one of principal, client_id, principal_client_id, source, listener"
        ),
    })?;
    let positive = |key: &'static str, value: Option<u64>| match value {
        Some(0) => Err(StageConfigError::InvalidOption {
            key,
            message: "must be greater than zero".into(),
        }),
        other => Ok(other),
    };
    let limits = Limits {
        produce: positive(
            "produce_bytes_per_second",
            options.byte_size("produce_bytes_per_second")?,
        )?,
        fetch: positive(
            "fetch_bytes_per_second",
            options.byte_size("fetch_bytes_per_second")?,
        )?,
        requests: positive("requests_per_second", options.count("requests_per_second")?)?,
    };
    if limits.produce.is_none() && limits.fetch.is_none() && limits.requests.is_none() {
        return Err(StageConfigError::InvalidOption {
            key: "produce_bytes_per_second",
            message: "a quota needs at least one of produce_bytes_per_second, \
                      fetch_bytes_per_second, requests_per_second"
                .into(),
        });
    }
    let window = options.duration("window")?.unwrap_or(DEFAULT_WINDOW);
    if !(Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&window) {
        return Err(StageConfigError::InvalidOption {
            key: "window",
            message: "must be between 100ms and 1h".into(),
        });
    }
    let samples = options.count("samples")?.unwrap_or(DEFAULT_SAMPLES);
    if !(2..=100).contains(&samples) {
        return Err(StageConfigError::InvalidOption {
            key: "samples",
            message: "must be between 2 and 100".into(),
        });
    }
    let max_entities = options
        .count("max_entities")?
        .unwrap_or(DEFAULT_MAX_ENTITIES);
    if !(1..=10_000_000).contains(&max_entities) {
        return Err(StageConfigError::InvalidOption {
            key: "max_entities",
            message: "must be between 1 and 10000000".into(),
        });
    }
    let only = options
        .strings("entities")?
        .map(|names| names.into_iter().map(Box::from).collect::<Vec<Box<str>>>());
    if only.as_ref().is_some_and(Vec::is_empty) {
        return Err(StageConfigError::InvalidOption {
            key: "entities",
            message: "must name at least one entity (leave it out to limit every entity)".into(),
        });
    }
    let named = options.strings("metrics_entities")?.unwrap_or_default();
    if named.len() > 100 {
        return Err(StageConfigError::InvalidOption {
            key: "metrics_entities",
            message: "at most 100 entities (each is a label value of its own)".into(),
        });
    }
    let measured = Measured {
        produce: limits.produce.is_some(),
        fetch: limits.fetch.is_some(),
        requests: limits.requests.is_some(),
        samples: usize::try_from(samples).unwrap_or(usize::MAX),
        window,
    };
    let max_entities = usize::try_from(max_entities).unwrap_or(usize::MAX);
    Ok(Arc::new(NewQuota {
        shared: Arc::new(Shared {
            per,
            only,
            limits,
            window,
            table: Mutex::new(EntityTable::new(measured, max_entities, Instant::now())),
            metrics: Arc::new(QuotaMetrics::new(per.label(), &named)),
        }),
    }))
}

/// The per-listener factory: the entities and metrics its sessions share.
#[derive(Debug)]
pub struct NewQuota {
    shared: Arc<Shared>,
}

impl NewQuota {
    /// What the stage measured and throttled.
    pub fn metrics(&self) -> Arc<QuotaMetrics> {
        self.shared.metrics.clone()
    }
}

#[derive(Debug)]
struct Shared {
    per: Per,
    /// `entities`: when set, only these are limited.
    only: Option<Vec<Box<str>>>,
    limits: Limits,
    window: Duration,
    table: Mutex<EntityTable>,
    metrics: Arc<QuotaMetrics>,
}

impl NewStage<Kafka> for NewQuota {
    fn new_stage(&self, _cx: &SessionContext) -> Box<dyn Stage<Kafka>> {
        Box::new(Quota {
            shared: self.shared.clone(),
            key: None,
            pending: VecDeque::new(),
        })
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// One session's view: its entity (cached while what names it stays the same) and the
/// throttles its requests earned, until their answers carry them.
#[derive(Debug)]
struct Quota {
    shared: Arc<Shared>,
    key: Option<SessionKey>,
    pending: VecDeque<Pending>,
}

#[derive(Debug)]
struct SessionKey {
    /// The client id it was made for (when `per` uses one).
    client_id: Option<Box<str>>,
    /// Whether the session had a principal then (SASL may authenticate mid-session).
    authenticated: bool,
    /// `None`: an entity this stage does not limit (not in its `entities`).
    key: Option<Arc<str>>,
    slot: usize,
}

/// A request on its way, and what its answer must carry.
#[derive(Debug)]
struct Pending {
    correlation_id: i32,
    key: Arc<str>,
    slot: usize,
    /// The throttle its request earned, already held: the answer reports it.
    throttle: Duration,
    fetch: bool,
}

impl Quota {
    /// The session's entity for a request with `client_id`, and its metrics slot; `None` for
    /// one the stage does not limit.
    fn entity(
        &mut self,
        client_id: Option<&str>,
        session: &SessionContext,
    ) -> Option<(Arc<str>, usize)> {
        let per = self.shared.per;
        let authenticated = session.auth().principal().is_some();
        let fresh = self.key.as_ref().is_some_and(|cached| {
            cached.authenticated == authenticated
                && (!per.uses_client_id() || cached.client_id.as_deref() == client_id)
        });
        if !fresh {
            let principal = session.auth().principal().unwrap_or(ANONYMOUS);
            let client = client_id.unwrap_or("");
            let (name, shown) = match per {
                Per::Principal => (principal.to_owned(), principal.to_owned()),
                Per::ClientId => (client.to_owned(), client.to_owned()),
                Per::PrincipalClientId => (
                    format!("{principal}{KEY_SEPARATOR}{client}"),
                    format!("{principal}/{client}"),
                ),
                Per::Source => {
                    let ip: IpAddr = session.client_addr().ip().to_canonical();
                    (ip.to_string(), ip.to_string())
                }
                // One table per listener's stage: the listener's name is the one entity.
                Per::Listener => (session.listener().to_owned(), session.listener().to_owned()),
            };
            let limited = self
                .shared
                .only
                .as_ref()
                .is_none_or(|only| only.iter().any(|entity| **entity == *shown));
            let key = limited.then(|| self.shared.table.lock().key(&name));
            self.key = Some(SessionKey {
                client_id: client_id.map(Box::from),
                authenticated,
                key,
                slot: self.shared.metrics.slot_of(&shown),
            });
        }
        let cached = self.key.as_ref()?;
        Some((cached.key.clone()?, cached.slot))
    }

    fn hold(
        &self,
        cx: &mut StageContext<'_>,
        key: &str,
        slot: usize,
        quota: QuotaKind,
        throttle: Duration,
    ) {
        cx.session_mut()
            .hold_client_reads_until(Instant::now() + throttle);
        self.shared.metrics.throttled(slot, quota, throttle);
        let per = self.shared.per.label();
        cx.session().audit(
            || AuditDetail::Quota {
                per,
                entity: key.replace(KEY_SEPARATOR, "/").into_boxed_str(),
                quota: quota.label(),
                throttle,
            },
            AuditKind::Quota,
        );
    }
}

/// The larger of two throttles, with the quota that imposed it.
fn worse(current: (Duration, QuotaKind), other: (Duration, QuotaKind)) -> (Duration, QuotaKind) {
    if other.0 > current.0 { other } else { current }
}

impl Stage<Kafka> for Quota {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn on_request(
        &mut self,
        msg: KafkaRequest,
        cx: &mut StageContext<'_>,
    ) -> Flow<KafkaRequest, KafkaResponse> {
        if msg.origin() != Origin::Client {
            return Flow::Forward(msg);
        }
        let Some((key, slot)) = self.entity(msg.client_id(), cx.session()) else {
            return Flow::Forward(msg);
        };
        let shared = &self.shared;
        let (window, limits, metrics) = (shared.window, shared.limits, &shared.metrics);
        let produce = msg.api_key() == ApiKey::Produce as i16;
        let now = Instant::now();
        let mut throttle = (Duration::ZERO, QuotaKind::Request);
        {
            let mut table = shared.table.lock();
            let entity = table.entity(&key, now);
            if produce && let (Some(limit), Some(ring)) = (limits.produce, entity.produce.as_mut())
            {
                let bytes = msg.wire_len() as u64;
                ring.record(bytes, now, window);
                throttle = worse(
                    throttle,
                    (ring.throttle(limit, now, window), QuotaKind::Produce),
                );
                metrics.count(slot, QuotaKind::Produce, bytes);
            }
            if let (Some(limit), Some(ring)) = (limits.requests, entity.requests.as_mut()) {
                ring.record(1, now, window);
                throttle = worse(
                    throttle,
                    (ring.throttle(limit, now, window), QuotaKind::Request),
                );
                metrics.count(slot, QuotaKind::Request, 1);
            }
            metrics.set_table(table.len(), table.refused());
        }
        if !throttle.0.is_zero() {
            // Held from now, not from the answer: the requests the client pipelined behind
            // this one wait too (a broker reads one request at a time per connection).
            self.hold(cx, &key, slot, throttle.1, throttle.0);
        }
        if msg.expects_response() {
            if self.pending.len() >= MAX_PENDING {
                self.pending.pop_front();
            }
            self.pending.push_back(Pending {
                correlation_id: msg.correlation_id(),
                key,
                slot,
                throttle: throttle.0,
                fetch: msg.api_key() == ApiKey::Fetch as i16,
            });
        }
        Flow::Forward(msg)
    }

    fn on_response(
        &mut self,
        mut msg: KafkaResponse,
        cx: &mut StageContext<'_>,
    ) -> Flow<KafkaResponse, KafkaRequest> {
        if msg.origin() != Origin::Client || msg.is_unsolicited() {
            return Flow::Forward(msg);
        }
        // Answers come in request order; anything older was answered without passing here.
        let correlation_id = msg.correlation_id();
        let pending = loop {
            match self.pending.pop_front() {
                Some(pending) if pending.correlation_id == correlation_id => break Some(pending),
                Some(_) => {}
                None => break None,
            }
        };
        let Some(pending) = pending else {
            return Flow::Forward(msg);
        };
        // Fetch quotas count the answer: its throttle starts now.
        let mut fetch_throttle = Duration::ZERO;
        if pending.fetch
            && let Some(limit) = self.shared.limits.fetch
        {
            let shared = &self.shared;
            let now = Instant::now();
            let bytes = msg.wire_len() as u64;
            let mut table = shared.table.lock();
            if let Some(ring) = table.entity(&pending.key, now).fetch.as_mut() {
                ring.record(bytes, now, shared.window);
                fetch_throttle = ring.throttle(limit, now, shared.window);
            }
            shared.metrics.count(pending.slot, QuotaKind::Fetch, bytes);
            shared.metrics.set_table(table.len(), table.refused());
        }
        if !fetch_throttle.is_zero() {
            self.hold(
                cx,
                &pending.key,
                pending.slot,
                QuotaKind::Fetch,
                fetch_throttle,
            );
        }
        let throttle = pending.throttle.max(fetch_throttle);
        if throttle.is_zero() {
            return Flow::Forward(msg);
        }
        let millis = i32::try_from(throttle.as_millis())
            .unwrap_or(i32::MAX)
            .max(1);
        if let Err(err) = throttle_field::raise(&mut msg, millis) {
            // The hold still throttles; only the client is not told why.
            debug!(error = %err, "quota: cannot set throttle_time_ms");
        }
        Flow::Forward(msg)
    }
}
