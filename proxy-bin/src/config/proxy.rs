//! PROXY-protocol keys: a listener's `proxy_protocol`, `proxy_protocol_trusted` and
//! `proxy_protocol_timeout`, and a cluster's `send_proxy_protocol`.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use proxy_core::proxy_protocol::{
    ProxyProtocolMode, ProxyProtocolPolicy, ProxyProtocolVersion, TrustedNetworks,
};

use super::validate::Validator;
use super::{path, value};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

// === impl Validator ===

impl Validator {
    /// The listener's PROXY-protocol policy. Nothing is trusted by default, so a mode other than
    /// "off" without trusted networks would refuse every header: that is reported as an error.
    pub(super) fn proxy_protocol(
        &mut self,
        at: &str,
        mode: Option<String>,
        trusted: Option<Vec<String>>,
        timeout: Option<String>,
    ) -> Option<ProxyProtocolPolicy> {
        let mode_at = path::key(at, "proxy_protocol");
        let mode = self.or_default(mode_at.clone(), mode, ProxyProtocolMode::Off, |text| {
            match text.as_str() {
                "off" => Ok(ProxyProtocolMode::Off),
                "optional" => Ok(ProxyProtocolMode::Optional),
                "required" => Ok(ProxyProtocolMode::Required),
                _ => Err(format!(
                    "unknown PROXY protocol mode {text:?}: expected \"off\", \"optional\" or \"required\""
                )),
            }
        });
        let trusted_at = path::key(at, "proxy_protocol_trusted");
        let trusted = self.trusted_networks(&trusted_at, trusted.unwrap_or_default());
        let timeout = self.or_default(
            path::key(at, "proxy_protocol_timeout"),
            timeout,
            DEFAULT_TIMEOUT,
            |text| value::duration(&text),
        );
        let (mode, trusted, timeout) = (mode?, trusted?, timeout?);
        if mode != ProxyProtocolMode::Off && trusted.is_empty() {
            self.error(
                trusted_at,
                "no trusted networks: with proxy_protocol enabled, list the addresses of the load \
                 balancers allowed to send headers, such as [\"10.0.4.10/32\"] (a trusted peer \
                 can claim any client address); nothing is trusted by default"
                    .into(),
            );
            return None;
        }
        Some(ProxyProtocolPolicy {
            mode,
            trusted,
            timeout,
            ..ProxyProtocolPolicy::default()
        })
    }

    fn trusted_networks(&mut self, at: &str, list: Vec<String>) -> Option<TrustedNetworks> {
        let mut networks = Some(Vec::with_capacity(list.len()));
        for (i, text) in list.iter().enumerate() {
            match (parse_network(text), networks.as_mut()) {
                (Ok(net), Some(networks)) => networks.push(net),
                (Ok(_), None) => {}
                (Err(message), _) => {
                    self.error(path::index(at, i), message);
                    networks = None;
                }
            }
        }
        networks.map(TrustedNetworks::new)
    }

    /// A cluster's `send_proxy_protocol`.
    pub(super) fn send_proxy_protocol(
        &mut self,
        at: &str,
        raw: Option<String>,
    ) -> Option<Option<ProxyProtocolVersion>> {
        self.or_default(
            path::key(at, "send_proxy_protocol"),
            raw,
            None,
            |text| match text.as_str() {
                "v1" => Ok(Some(ProxyProtocolVersion::V1)),
                "v2" => Ok(Some(ProxyProtocolVersion::V2)),
                _ => Err(format!(
                    "unknown PROXY protocol version {text:?}: expected \"v1\" or \"v2\""
                )),
            },
        )
    }
}

/// A network in CIDR notation, or a single address (a /32 or /128).
pub(super) fn parse_network(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!("invalid network {text:?}: expected CIDR notation such as \"10.0.0.0/8\" or \"::1/128\", or one address")
        })
}
