//! Address syntax for `listener.bind` and `cluster.*.backends`. A listener binds a literal IP
//! address, while a backend may also be a DNS name, which is kept unresolved so that it is
//! looked up again on every connect and follows the backend when it moves.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::BackendAddr;

/// Parses a bind address: `a.b.c.d:port` or `[v6]:port`.
pub(super) fn parse_bind(text: &str) -> Option<SocketAddr> {
    text.parse().ok()
}

/// Parses a backend as `host:port`, where host is an IPv4 address, a bracketed IPv6 address or
/// a DNS name. The error says which part is wrong.
pub(super) fn parse_backend(text: &str) -> Result<BackendAddr, &'static str> {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (ip, port) = rest
                .split_once("]:")
                .ok_or("a bracketed IPv6 address must be followed by :PORT")?;
            ip.parse::<Ipv6Addr>()
                .map_err(|_| "the part in brackets is not an IPv6 address")?;
            (ip, port)
        }
        None => {
            let (host, port) = text.rsplit_once(':').ok_or("the :PORT is missing")?;
            if host.contains(':') {
                return Err("an IPv6 address must be in brackets");
            }
            if host.parse::<Ipv4Addr>().is_err() {
                check_dns_name(host)?;
            }
            (host, port)
        }
    };
    Ok(BackendAddr {
        host: host.to_owned(),
        port: parse_port(port)?,
    })
}

fn parse_port(text: &str) -> Result<u16, &'static str> {
    // `u16::from_str` also accepts a leading '+', which is not a port.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the port is not a number");
    }
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err("the port must be between 1 and 65535"),
        Ok(port) => Ok(port),
    }
}

/// Checks RFC 1123 host name syntax. Underscores are allowed as well because container
/// runtimes hand out names such as `kafka_1` that resolve fine in practice.
fn check_dns_name(host: &str) -> Result<(), &'static str> {
    const NOT_A_HOST: &str = "the host is not an IP address or a DNS name";
    if host.is_empty() || host.len() > 253 {
        return Err(NOT_A_HOST);
    }
    let valid_label = |label: &str| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !host.split('.').all(valid_label) {
        return Err(NOT_A_HOST);
    }
    // A top-level domain is never all digits, so `10.0.0.256` is a mistyped IPv4 address,
    // not a host name to look up.
    let tld = host.rsplit('.').next().unwrap_or(host);
    if tld.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the host is not a valid IPv4 address");
    }
    Ok(())
}
