//! The API versions a SASL-terminating listener tells clients before they have a backend.
//!
//! A client asks ApiVersions once per connection, first thing, and keeps the answer; when the
//! proxy terminates SASL that question comes before any broker is chosen (the route may depend
//! on the principal). So the proxy asks each cluster itself, on its own discovery connection,
//! remembers the answer per route, and offers what every cluster the listener can route to
//! supports, capped to what the proxy can rewrite; SaslHandshake and SaslAuthenticate are the
//! proxy's own (SaslHandshake listed 0..1, as brokers list it, though only v1 is served).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, SaslAuthenticateResponse};
use kafka_protocol::protocol::Message;
use parking_lot::RwLock;
use proxy_core::close::CloseReason;
use proxy_core::route::RouteId;
use tokio::time::Instant;

use crate::rewrite::rewritable_versions;

/// After a failed attempt to learn a cluster's versions, clients do not cause another for this
/// long: an unauthenticated client must not be able to make the proxy connect at will.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Each route's cluster's API versions, as its brokers answered ApiVersions.
#[derive(Debug, Default)]
pub struct BrokerVersions {
    known: RwLock<HashMap<RouteId, Arc<[ApiVersion]>>>,
    /// One fetch at a time, and the last one's failure: when, and why.
    fetching: tokio::sync::Mutex<Option<(Instant, CloseReason)>>,
}

impl BrokerVersions {
    /// Remembers `route`'s versions.
    pub fn record(&self, route: &RouteId, versions: Arc<[ApiVersion]>) {
        self.known.write().insert(route.clone(), versions);
    }

    /// `route`'s versions, if known.
    pub fn get(&self, route: &RouteId) -> Option<Arc<[ApiVersion]>> {
        self.known.read().get(route).cloned()
    }

    /// The versions of every route in `routes`, fetching missing ones with `fetch` (one fetch
    /// at a time, and none within five seconds of a failed one).
    pub async fn of_all<F, Fut>(
        &self,
        routes: &[RouteId],
        mut fetch: F,
    ) -> Result<Vec<Arc<[ApiVersion]>>, CloseReason>
    where
        F: FnMut(RouteId) -> Fut,
        Fut: Future<Output = Result<Arc<[ApiVersion]>, CloseReason>>,
    {
        if let Some(all) = self.all_known(routes) {
            return Ok(all);
        }
        let mut last_failure = self.fetching.lock().await;
        let mut all = Vec::with_capacity(routes.len());
        for route in routes {
            if let Some(known) = self.get(route) {
                all.push(known);
                continue;
            }
            if let Some((at, reason)) = &*last_failure
                && at.elapsed() < RETRY_AFTER
            {
                return Err(reason.clone());
            }
            match fetch(route.clone()).await {
                Ok(versions) => {
                    self.known.write().insert(route.clone(), versions.clone());
                    all.push(versions);
                }
                Err(reason) => {
                    *last_failure = Some((Instant::now(), reason.clone()));
                    return Err(reason);
                }
            }
        }
        *last_failure = None;
        Ok(all)
    }

    fn all_known(&self, routes: &[RouteId]) -> Option<Vec<Arc<[ApiVersion]>>> {
        let known = self.known.read();
        routes
            .iter()
            .map(|route| known.get(route).cloned())
            .collect()
    }
}

/// SaslHandshake versions offered: 0..1, what brokers offer. Older librdkafka releases (2.0.2,
/// Debian bookworm's, for one) turn their SASL handshake on only when the range holds v0 (their
/// feature check asks for SaslHandshake 0..0), then send the highest version both sides have,
/// v1; offered 1..1, they failed every mechanism ("SASL Handshake not supported by broker"). A
/// v0 handshake, followed by bare SASL frames rather than SaslAuthenticate requests, is still
/// refused with UNSUPPORTED_VERSION when one comes (`SaslServer`).
const SASL_HANDSHAKE: (i16, i16) = (0, 1);

/// What a terminating listener offers: the versions every cluster in `clusters` supports,
/// capped to what the proxy rewrites, with the proxy's own SASL versions.
pub fn offered_versions(clusters: &[Arc<[ApiVersion]>]) -> Vec<ApiVersion> {
    let mut ranges: BTreeMap<i16, (i16, i16)> = BTreeMap::new();
    if let Some((first, rest)) = clusters.split_first() {
        for entry in first.iter() {
            ranges.insert(entry.api_key, (entry.min_version, entry.max_version));
        }
        for cluster in rest {
            ranges.retain(|key, (min, max)| {
                let Some(other) = cluster.iter().find(|e| e.api_key == *key) else {
                    return false;
                };
                *min = (*min).max(other.min_version);
                *max = (*max).min(other.max_version);
                true
            });
        }
    }
    for (key, range) in &mut ranges {
        if let Some(proxy) = ApiKey::try_from(*key).ok().and_then(rewritable_versions) {
            range.0 = range.0.max(proxy.min);
            range.1 = range.1.min(proxy.max);
        }
    }
    ranges.insert(ApiKey::SaslHandshake as i16, SASL_HANDSHAKE);
    ranges.insert(
        ApiKey::SaslAuthenticate as i16,
        (0, SaslAuthenticateResponse::VERSIONS.max),
    );
    ranges
        .into_iter()
        .filter(|(_, (min, max))| min <= max)
        .map(|(key, (min, max))| {
            ApiVersion::default()
                .with_api_key(key)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(entries: &[(ApiKey, i16, i16)]) -> Arc<[ApiVersion]> {
        entries
            .iter()
            .map(|&(key, min, max)| {
                ApiVersion::default()
                    .with_api_key(key as i16)
                    .with_min_version(min)
                    .with_max_version(max)
            })
            .collect()
    }

    fn range(offered: &[ApiVersion], key: ApiKey) -> Option<(i16, i16)> {
        offered
            .iter()
            .find(|e| e.api_key == key as i16)
            .map(|e| (e.min_version, e.max_version))
    }

    #[test]
    fn offers_what_every_cluster_supports_and_the_proxys_own_sasl() {
        let a = versions(&[
            (ApiKey::Produce, 0, 9),
            (ApiKey::ListOffsets, 1, 7),
            (ApiKey::SaslHandshake, 0, 1),
            (ApiKey::OffsetCommit, 0, 8),
        ]);
        let b = versions(&[
            (ApiKey::Produce, 3, 7),
            (ApiKey::ListOffsets, 0, 5),
            (ApiKey::SaslHandshake, 0, 1),
        ]);
        let offered = offered_versions(&[a, b]);
        assert_eq!(range(&offered, ApiKey::Produce), Some((3, 7)));
        assert_eq!(range(&offered, ApiKey::ListOffsets), Some((1, 5)));
        assert_eq!(range(&offered, ApiKey::OffsetCommit), None, "b lacks it");
        assert_eq!(
            range(&offered, ApiKey::SaslHandshake),
            Some((0, 1)),
            "what brokers offer: librdkafka needs v0 listed to start its handshake"
        );
        assert_eq!(
            range(&offered, ApiKey::SaslAuthenticate),
            Some((0, SaslAuthenticateResponse::VERSIONS.max))
        );
    }

    #[test]
    fn versions_the_proxy_cannot_rewrite_are_capped() {
        let offered = offered_versions(&[versions(&[(ApiKey::Metadata, 0, i16::MAX)])]);
        let cap = rewritable_versions(ApiKey::Metadata).unwrap();
        assert_eq!(range(&offered, ApiKey::Metadata), Some((0, cap.max)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_fetch_is_not_repeated_for_a_while() {
        let cache = BrokerVersions::default();
        let route = RouteId::new("main");
        let routes = [route.clone()];
        let mut calls = 0;
        let failing = |_| {
            calls += 1;
            async { Err::<Arc<[ApiVersion]>, _>(CloseReason::BackendClosed) }
        };
        assert!(cache.of_all(&routes, failing).await.is_err());
        let mut more = 0;
        let counting = |_| {
            more += 1;
            async { Ok(versions(&[])) }
        };
        assert_eq!(
            cache.of_all(&routes, counting).await.unwrap_err(),
            CloseReason::BackendClosed,
            "the last failure's reason"
        );
        assert_eq!((calls, more), (1, 0), "no second fetch within RETRY_AFTER");
        tokio::time::advance(RETRY_AFTER).await;
        let filling = |_| async { Ok(versions(&[(ApiKey::Produce, 0, 9)])) };
        let all = cache.of_all(&routes, filling).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(cache.get(&route), Some(all[0].clone()), "recorded");
    }
}
