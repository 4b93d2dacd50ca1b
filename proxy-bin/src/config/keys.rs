//! The keys each table of the file accepts, listed once: unknown keys are matched against them
//! for a "did you mean" suggestion, and `docs/configuration.md` is checked against them (see
//! `reference_tests`), which also checks them against the [`super::raw`] structs.

/// One table of the file and the keys it accepts.
#[derive(Debug)]
pub(crate) struct Table {
    /// The table as the first pass names it: keys from the root, array indices left out and a
    /// cluster's name written `NAME`, e.g. `listener.tls` or `cluster.NAME.sasl`; empty for
    /// the top level.
    pub(crate) path: &'static str,
    /// Its section heading in `docs/configuration.md`.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "read by reference_tests, to find the table in the docs"
        )
    )]
    pub(crate) heading: &'static str,
    /// Every key it accepts, sub-tables included.
    pub(crate) keys: &'static [&'static str],
}

/// Every table, in the order of `docs/configuration.md`.
pub(crate) const TABLES: &[Table] = &[
    Table {
        path: "",
        heading: "Top level",
        keys: &[
            "listener", "cluster", "shutdown", "admin", "limits", "audit",
        ],
    },
    Table {
        path: "listener",
        heading: "`[[listener]]`",
        keys: &[
            "name",
            "bind",
            "protocol",
            "cluster",
            "idle_timeout",
            "half_close_timeout",
            "read_buffer",
            "high_watermark",
            "low_watermark",
            "proxy_protocol",
            "proxy_protocol_trusted",
            "proxy_protocol_timeout",
            "max_connections",
            "max_connections_per_source",
            "connection_rate_per_source",
            "gateway",
            "advertised_host",
            "advertised_port",
            "broker_port_start",
            "max_brokers",
            "broker_port_grace",
            "broker_host_pattern",
            "max_frame_size",
            "frame_budget",
            "frame_timeout",
            "max_in_flight_requests",
            "tls",
            "sasl",
            "authorization",
            "route",
            "stage",
        ],
    },
    Table {
        path: "listener.tls",
        heading: "`[listener.tls]`",
        keys: &[
            "mode",
            "cert",
            "key",
            "certificate",
            "min_version",
            "alpn",
            "client_auth",
            "client_ca",
            "principal",
            "handshake_timeout",
        ],
    },
    Table {
        path: "listener.tls.certificate",
        heading: "`[[listener.tls.certificate]]`",
        keys: &["names", "cert", "key"],
    },
    Table {
        path: "listener.sasl",
        heading: "`[listener.sasl]`",
        keys: &[
            "mode",
            "mechanisms",
            "users",
            "allow_plain_without_tls",
            "timeout",
            "session_lifetime",
            "accept_mtls_principal",
            "failure_delay",
            "max_unauthenticated",
            "max_unauthenticated_per_source",
        ],
    },
    Table {
        path: "listener.authorization",
        heading: "`[listener.authorization]`",
        keys: &["rules", "audit_allows"],
    },
    Table {
        path: "listener.route",
        heading: "`[[listener.route]]`",
        keys: &["cluster", "authority", "source", "sni", "principal"],
    },
    Table {
        path: "listener.stage",
        heading: "`[[listener.stage]]`",
        // Every other key is the stage's own option, checked by the stage.
        keys: &["kind"],
    },
    Table {
        path: "cluster.NAME",
        heading: "`[cluster.NAME]`",
        keys: &[
            "backends",
            "connect_timeout",
            "send_proxy_protocol",
            "exec",
            "child_stop_timeout",
            "ready_requires",
            "probe_interval",
            "tls",
            "sasl",
        ],
    },
    Table {
        path: "cluster.NAME.tls",
        heading: "`[cluster.NAME.tls]`",
        keys: &["ca", "server_name", "cert", "key", "insecure_skip_verify"],
    },
    Table {
        path: "cluster.NAME.sasl",
        heading: "`[cluster.NAME.sasl]`",
        keys: &[
            "mechanism",
            "username",
            "password_file",
            "allow_plain_without_tls",
        ],
    },
    Table {
        path: "shutdown",
        heading: "`[shutdown]`",
        keys: &[
            "accept_grace",
            "drain_timeout",
            "termination_grace_period",
            "upgrade_timeout",
        ],
    },
    Table {
        path: "admin",
        heading: "`[admin]`",
        keys: &[
            "bind",
            "header_read_timeout",
            "idle_timeout",
            "max_connections",
        ],
    },
    Table {
        path: "limits",
        heading: "`[limits]`",
        keys: &["max_connections", "frame_budget", "threads"],
    },
    Table {
        path: "audit",
        heading: "`[audit]`",
        keys: &[
            "sink",
            "path",
            "cluster",
            "topic",
            "partition",
            "events",
            "queue",
        ],
    },
];

/// The table at `path` (see [`Table::path`]).
pub(crate) fn table(path: &str) -> Option<&'static Table> {
    TABLES.iter().find(|table| table.path == path)
}

/// The known key of table `table` closest to `unknown`, when it is close enough to be a typo:
/// at most two edits, or a third of the key's length for long keys.
pub(crate) fn suggestion(table: &str, unknown: &str) -> Option<&'static str> {
    let keys = self::table(table)?.keys;
    let (distance, key) = keys
        .iter()
        .map(|key| (edit_distance(unknown, key), *key))
        .min_by_key(|(distance, _)| *distance)?;
    let allowed = 2.max(unknown.chars().count() / 3);
    (distance <= allowed).then_some(key)
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            let delete = previous[j + 1] + 1;
            let insert = current[j] + 1;
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::{edit_distance, suggestion};

    #[test]
    fn a_typo_gets_the_closest_key_of_its_table() {
        assert_eq!(edit_distance("idle_timout", "idle_timeout"), 1);
        assert_eq!(suggestion("listener", "idle_timout"), Some("idle_timeout"));
        assert_eq!(suggestion("listener.tls", "cret"), Some("cert"));
        assert_eq!(suggestion("cluster.NAME", "backend"), Some("backends"));
        assert_eq!(suggestion("", "listner"), Some("listener"));
        assert_eq!(suggestion("admin", "completely_different"), None);
        assert_eq!(suggestion("no.such.table", "bind"), None);
    }
}
