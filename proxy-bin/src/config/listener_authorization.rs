//! A Kafka listener's `[listener.authorization]` table: the ACL rules file its requests are
//! decided by (read and checked with the other files, so `sluice check` names the rule and key
//! of a mistake in it).

use serde::Deserialize;

use super::files::FileKind;
use super::validate::Validator;
use super::{AuthorizationConfig, path};

/// `[listener.authorization]`, as written.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawAuthorization {
    pub(super) rules: Option<String>,
    pub(super) audit_allows: Option<bool>,
}

impl Validator {
    /// The listener's authorization; `Some(None)` without the table.
    pub(super) fn listener_authorization(
        &mut self,
        listener: &str,
        raw: Option<RawAuthorization>,
    ) -> Option<Option<AuthorizationConfig>> {
        let Some(raw) = raw else {
            return Some(None);
        };
        let at = path::key(listener, "authorization");
        let rules_at = path::key(&at, "rules");
        let rules = self.required(&rules_at, raw.rules)?;
        if rules.is_empty() {
            self.error(rules_at, "must name the rules file".into());
            return None;
        }
        let rules = self.file(rules_at, rules, FileKind::AclRules);
        Some(Some(AuthorizationConfig {
            rules,
            audit_allows: raw.audit_allows.unwrap_or(false),
        }))
    }
}
