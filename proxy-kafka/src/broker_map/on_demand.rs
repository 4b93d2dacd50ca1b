//! Discovery on a session's demand, bounded. A session for a broker the map does not know (a
//! client that remembered a broker across a restart, or a server name naming any node id)
//! asks the cluster before it is refused. Without a bound, every such connection would cost
//! the cluster a connection of the proxy's own (with TLS and SASL when configured), an
//! ApiVersions and a Metadata: a client that names unknown brokers could make the proxy
//! flood its own brokers. So one discovery runs at a time per map, sessions that ask meanwhile
//! wait for it and use what it learnt, and a route discovered successfully is not asked again
//! for [`ON_DEMAND_INTERVAL`].

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use proxy_core::route::RouteId;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How long a successful on-demand discovery of a route answers for it.
pub const ON_DEMAND_INTERVAL: Duration = Duration::from_secs(5);

/// When each route was last discovered on demand, behind the lock the discoveries take.
#[derive(Debug, Default)]
pub struct OnDemandDiscovery {
    discovered: Mutex<BTreeMap<RouteId, Instant>>,
}

impl OnDemandDiscovery {
    /// Runs `discover` for `route` unless a discovery of it succeeded within
    /// [`ON_DEMAND_INTERVAL`]; true when it ran. Waits for a discovery already running. A
    /// discovery that fails is not remembered: the next session asks again (one at a time).
    pub async fn run<T, E>(
        &self,
        route: &RouteId,
        discover: impl Future<Output = Result<T, E>>,
    ) -> Result<bool, E> {
        let mut discovered = self.discovered.lock().await;
        let now = Instant::now();
        if discovered
            .get(route)
            .is_some_and(|at| now.saturating_duration_since(*at) < ON_DEMAND_INTERVAL)
        {
            return Ok(false);
        }
        discover.await?;
        discovered.retain(|_, at| now.saturating_duration_since(*at) < ON_DEMAND_INTERVAL);
        discovered.insert(route.clone(), Instant::now());
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn route(name: &str) -> RouteId {
        RouteId::new(name)
    }

    async fn counted(calls: &AtomicUsize, ok: bool) -> Result<(), ()> {
        calls.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        if ok { Ok(()) } else { Err(()) }
    }

    #[tokio::test(start_paused = true)]
    async fn a_route_is_discovered_once_per_interval_and_again_after_a_failure() {
        let gate = OnDemandDiscovery::default();
        let calls = AtomicUsize::new(0);
        let main = route("main");
        assert_eq!(gate.run(&main, counted(&calls, true)).await, Ok(true));
        for _ in 0..10 {
            assert_eq!(gate.run(&main, counted(&calls, true)).await, Ok(false));
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "asked once within the interval"
        );
        // Another route is its own.
        assert_eq!(
            gate.run(&route("other"), counted(&calls, true)).await,
            Ok(true)
        );
        tokio::time::advance(ON_DEMAND_INTERVAL).await;
        assert_eq!(gate.run(&main, counted(&calls, true)).await, Ok(true));
        // A failure is not remembered.
        let down = route("down");
        assert_eq!(gate.run(&down, counted(&calls, false)).await, Err(()));
        assert_eq!(gate.run(&down, counted(&calls, false)).await, Err(()));
        assert_eq!(calls.load(Ordering::SeqCst), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_asking_at_once_wait_for_the_one_discovery() {
        let gate = Arc::new(OnDemandDiscovery::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut asking = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (gate, calls) = (gate.clone(), calls.clone());
            asking.spawn(async move {
                gate.run(&route("main"), async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok::<_, ()>(())
                })
                .await
            });
        }
        let ran = asking
            .join_all()
            .await
            .into_iter()
            .filter(|ran| *ran == Ok(true))
            .count();
        assert_eq!(ran, 1);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
