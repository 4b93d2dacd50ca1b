//! Multi-tenancy: many tenants on one Kafka cluster, each seeing its own topics, groups and
//! transactional ids under plain names. The `tenant` stage maps every name a request carries to
//! the broker's (the tenant's prefix before it) and every name an answer carries back, leaving
//! out what is not the tenant's:
//!
//! ```toml
//! [[listener.stage]]
//! kind = "tenant"
//! prefix = "{principal}."          # or "{sni}.", or a literal such as "team-a."
//! # tenants = ["alice", "bob"]     # named in metrics (others count as "other")
//! ```
//!
//! Fail-closed: an API the stage does not map ([`MAPPED_APIS`]) is refused with its
//! authorization error, a topic id that is not the tenant's is answered `UNKNOWN_TOPIC_ID`, a
//! name too long once prefixed `INVALID_TOPIC_EXCEPTION`, and a session without what the prefix
//! needs (no principal for `{principal}`, no server name for `{sni}`) is refused everything but
//! ApiVersions and SASL.

mod metrics;
mod names;
mod requests;
mod responses;
mod stage;

#[cfg(test)]
mod tests;

pub use self::metrics::{OTHER_TENANTS, TenantCount, TenantMetrics};
pub use self::requests::{MAPPED_APIS, maps};
pub use self::stage::{KIND, NewTenant, build};
