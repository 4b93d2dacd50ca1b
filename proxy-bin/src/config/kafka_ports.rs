//! The broker ports of a port-per-broker Kafka listener: `broker_port_start` and `max_brokers`
//! make the range `broker_port_start ..= broker_port_start + max_brokers - 1`, the only ports
//! the listener ever opens for brokers, whatever node ids its clusters announce. The range must
//! end at 65535 at most and hold no other socket the config binds: the listener's own
//! bootstrap port, the admin port, another listener's port, or another listener's broker ports.
//! Addresses on different specific IPs do not collide; an unspecified one (`0.0.0.0`, `::`)
//! collides with every address.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use proxy_kafka::broker_map::DEFAULT_MAX_BROKERS;

use super::ports::may_share;
use super::validate::Validator;
use super::{AdminConfig, KafkaGatewayConfig, ListenerConfig, ListenerProtocol, path};

/// A listener's broker ports, for messages that name the keys making them.
#[derive(Debug, Clone, Copy)]
struct BrokerPortRange {
    start: u16,
    max_brokers: u16,
    /// The last port: `start + max_brokers - 1`, checked to be a port.
    last: u16,
}

impl BrokerPortRange {
    fn of(listener: &ListenerConfig) -> Option<Self> {
        let ListenerProtocol::Kafka(kafka) = &listener.protocol else {
            return None;
        };
        let KafkaGatewayConfig::PortPerBroker {
            broker_port_start,
            max_brokers,
            ..
        } = kafka.gateway
        else {
            return None;
        };
        Some(Self {
            start: broker_port_start,
            max_brokers,
            last: broker_port_start.checked_add(max_brokers.checked_sub(1)?)?,
        })
    }

    /// Whether a socket bound to `addr` would take one of these ports, bound on `ip`.
    fn holds(&self, ip: IpAddr, addr: SocketAddr) -> bool {
        (self.start..=self.last).contains(&addr.port()) && may_share(ip, addr.ip())
    }

    fn overlaps(&self, other: &Self) -> bool {
        self.start <= other.last && other.start <= self.last
    }
}

impl fmt::Display for BrokerPortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{} (broker_port_start = {}, max_brokers = {})",
            self.start, self.last, self.start, self.max_brokers
        )
    }
}

// === impl Validator ===

impl Validator {
    /// `broker_port_start` and `max_brokers` of the listener at `at`, checked on their own and
    /// against the listener's own `bind`.
    pub(super) fn broker_port_range(
        &mut self,
        at: &str,
        start: Option<i64>,
        max_brokers: Option<i64>,
        bind: Option<SocketAddr>,
    ) -> Option<(u16, u16)> {
        let start_at = path::key(at, "broker_port_start");
        let max_at = path::key(at, "max_brokers");
        let max_written = max_brokers.is_some();
        let max_brokers = self.or_default(max_at.clone(), max_brokers, DEFAULT_MAX_BROKERS, |n| {
            u16::try_from(n)
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{n} is not a number of broker ports: expected 1 to 65535"))
        });
        let start = self.required(&start_at, start)?;
        let Some(start) = u16::try_from(start).ok().filter(|&p| p > 0) else {
            self.error(start_at, format!("{start} is not a port (1-65535)"));
            return None;
        };
        let max_brokers = max_brokers?;
        let Some(last) = start.checked_add(max_brokers - 1) else {
            let default = if max_written { "" } else { ", the default" };
            let last = u32::from(start) + u32::from(max_brokers) - 1;
            self.error(
                if max_written { max_at } else { start_at },
                format!(
                    "broker_port_start ({start}) + max_brokers ({max_brokers}{default}) - 1 = \
                     {last} is past the last port, 65535: lower broker_port_start or max_brokers"
                ),
            );
            return None;
        };
        let range = BrokerPortRange {
            start,
            max_brokers,
            last,
        };
        if let Some(bind) = bind
            && range.holds(bind.ip(), bind)
        {
            self.error(
                start_at,
                format!(
                    "the broker ports {range} include the bootstrap port {} (bind): broker \
                     node id {} would be served on it",
                    bind.port(),
                    bind.port() - start
                ),
            );
            return None;
        }
        Some((start, max_brokers))
    }

    /// Reports broker port ranges that hold the admin port, another listener's port, or
    /// another listener's broker ports. `listeners` carry their index in the file.
    pub(super) fn broker_port_collisions(
        &mut self,
        listeners: &[(usize, ListenerConfig)],
        admin: Option<&AdminConfig>,
    ) {
        for (i, listener) in listeners {
            let Some(range) = BrokerPortRange::of(listener) else {
                continue;
            };
            let at = path::key(&path::index("listener", *i), "broker_port_start");
            let ip = listener.bind.ip();
            if let Some(admin) = admin
                && range.holds(ip, admin.bind)
            {
                self.error(
                    at.clone(),
                    format!(
                        "the broker ports {range} include admin.bind's port {}",
                        admin.bind.port()
                    ),
                );
            }
            for (j, other) in listeners {
                if j == i {
                    continue;
                }
                if range.holds(ip, other.bind) {
                    self.error(
                        at.clone(),
                        format!(
                            "the broker ports {range} include listener[{j}].bind's port {}",
                            other.bind.port()
                        ),
                    );
                }
                // Each pair once, reported at the first of the two.
                if j > i
                    && let Some(theirs) = BrokerPortRange::of(other)
                    && may_share(ip, other.bind.ip())
                    && range.overlaps(&theirs)
                {
                    self.error(
                        at.clone(),
                        format!(
                            "the broker ports {range} overlap listener[{j}]'s broker ports {theirs}"
                        ),
                    );
                }
            }
        }
    }
}
