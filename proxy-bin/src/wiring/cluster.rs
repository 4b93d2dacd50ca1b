//! A cluster's spec: its backends, timeouts, PROXY header, child program, TLS (certificate
//! files read here) and SASL credentials.

use std::sync::Arc;

use proxy_backend::{BackendTls, BackendTlsOptions, ChildSpec, ClusterSpec};
use proxy_core::route::RouteId;

use super::error;
use crate::config::{ClusterConfig, ConfigError};

/// The spec of cluster `name`, or `None` with its errors recorded.
pub(super) fn spec(
    name: &str,
    cluster: &ClusterConfig,
    errors: &mut Vec<ConfigError>,
) -> Option<ClusterSpec> {
    let tls = match &cluster.tls {
        None => None,
        Some(tls) => {
            let options = BackendTlsOptions {
                ca: tls.ca.clone(),
                server_name: tls.server_name.clone(),
                client_cert: tls.cert.clone(),
                client_key: tls.key.clone(),
                insecure_skip_verify: tls.insecure_skip_verify,
            };
            match BackendTls::from_files(&options) {
                Ok(tls) => Some(tls),
                Err(err) => {
                    error(errors, format!("cluster.{name}.tls"), &err);
                    return None;
                }
            }
        }
    };
    Some(ClusterSpec {
        route: RouteId::new(name),
        backends: cluster.backends.clone(),
        connect_timeout: cluster.connect_timeout,
        send_proxy_protocol: cluster.send_proxy_protocol,
        exec: cluster.exec.as_ref().map(|exec| ChildSpec {
            argv: exec.argv.clone(),
            stop_timeout: exec.stop_timeout,
        }),
        tls,
        sasl: cluster.sasl.clone().map(Arc::new),
    })
}
