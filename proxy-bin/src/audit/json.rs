//! An audit event as its JSON line: schema `sluice.audit/v1` (docs/audit.md,
//! docs/audit.schema.json). Field names are flat within their object and never both a value and
//! a prefix, as in the logs.

use std::time::SystemTime;

use proxy_core::audit::{AuditDetail, AuditEvent, SessionFacts};
use serde_json::{Value, json};

/// The schema every line names.
pub(crate) const SCHEMA: &str = "sluice.audit/v1";

fn time(at: SystemTime) -> String {
    humantime::format_rfc3339_micros(at).to_string()
}

fn session(facts: &SessionFacts) -> Value {
    let mut session = json!({
        "id": facts.id,
        "listener": &*facts.listener,
        "client_addr": facts.client_addr.to_string(),
        "peer_addr": facts.peer_addr.to_string(),
        "sni": facts.sni.as_deref(),
        "tls_version": facts.tls_version.as_deref(),
        "principal": facts.principal.as_deref(),
        "route": facts.route.as_deref(),
    });
    // Only where a tenant stage runs, so lines of listeners without one stay as they were.
    if let (Some(tenant), Value::Object(map)) = (&facts.tenant, &mut session) {
        map.insert("tenant".into(), Value::from(&**tenant));
    }
    session
}

/// The event's line, without its line break.
pub(crate) fn line(event: &AuditEvent) -> String {
    let mut object = json!({
        "schema": SCHEMA,
        "time": time(event.time),
        "event": event.kind().label(),
        "pid": std::process::id(),
        "generation": crate::generation::current(),
        "session": session(&event.session),
    });
    let (action, detail) = match &event.detail {
        AuditDetail::ConnectionOpen => ("open", None),
        AuditDetail::ConnectionClose {
            bytes_from_client,
            bytes_from_backend,
            duration,
            reason,
            reason_detail,
            fault,
        } => (
            "close",
            Some((
                "connection",
                json!({
                    "bytes_from_client": bytes_from_client,
                    "bytes_from_backend": bytes_from_backend,
                    "duration_ms": u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
                    "close_reason": reason,
                    "close_detail": &**reason_detail,
                    "fault": fault,
                }),
            )),
        ),
        AuditDetail::Authentication {
            mechanism,
            principal,
            outcome,
            reason,
        } => (
            outcome.label(),
            Some((
                "authentication",
                json!({
                    "mechanism": &**mechanism,
                    "principal": principal.as_deref(),
                    "outcome": outcome.label(),
                    "reason": reason.as_deref(),
                }),
            )),
        ),
        AuditDetail::Admin {
            api,
            api_version,
            resources,
            unanswered,
        } => (
            "request",
            Some((
                "admin",
                json!({
                    "api": &**api,
                    "api_version": api_version,
                    "answered": !unanswered,
                    "resources": resources.iter().map(|r| json!({
                        "type": r.resource_type,
                        "name": &*r.name,
                        "error_code": r.error_code,
                        "error_message": r.error_message.as_deref(),
                    })).collect::<Vec<_>>(),
                }),
            )),
        ),
        AuditDetail::Quota {
            per,
            entity,
            quota,
            throttle,
        } => (
            "throttle",
            Some((
                "quota",
                json!({
                    "per": per,
                    "entity": &**entity,
                    "quota": quota,
                    "throttle_ms": u64::try_from(throttle.as_millis()).unwrap_or(u64::MAX),
                }),
            )),
        ),
        AuditDetail::Authorization {
            api,
            resource_type,
            name,
            operation,
            allowed,
            rule,
        } => (
            if *allowed { "allow" } else { "deny" },
            Some((
                "authorization",
                json!({
                    "api": &**api,
                    "resource_type": resource_type,
                    "name": &**name,
                    "operation": operation,
                    "outcome": if *allowed { "allowed" } else { "denied" },
                    "rule": rule.as_deref(),
                }),
            )),
        ),
    };
    if let Value::Object(map) = &mut object {
        map.insert("action".into(), Value::from(action));
        if let Some((key, detail)) = detail {
            map.insert(key.into(), detail);
        }
    }
    object.to_string()
}

/// The line that reports `dropped` events lost since `since`, written once the sink keeps up
/// again.
pub(crate) fn dropped_line(dropped: u64, since: SystemTime) -> String {
    json!({
        "schema": SCHEMA,
        "time": time(SystemTime::now()),
        "event": "audit_dropped",
        "action": "dropped",
        "pid": std::process::id(),
        "generation": crate::generation::current(),
        "audit_dropped": {
            "count": dropped,
            "since": time(since),
        },
    })
    .to_string()
}
