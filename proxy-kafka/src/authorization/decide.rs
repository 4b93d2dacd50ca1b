//! One session's decisions: who asks (from the session context), the rules now, and what was
//! decided before. A decision is remembered for the session until the rules are replaced (or the
//! principal changes on re-authentication), so a producer's thousandth Produce to the same topic
//! costs a lookup; a denial is logged once per session, resource and operation, at info.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::ApiKey;
use proxy_core::audit::{AuditDetail, AuditKind};
use proxy_core::context::SessionContext;
use tracing::info;

use super::{Acl, AuthorizationMetrics, Decision, Operation, Requester, ResourceType, TopicIds};

/// Names remembered per session at most; past it the memo starts again.
const MAX_REMEMBERED: usize = 4096;

/// What a session decided, for the rules of one generation and one principal.
#[derive(Debug, Default)]
pub(crate) struct Memo {
    generation: u64,
    principal: Option<Box<str>>,
    /// Per resource type: name → (operations decided, operations allowed), bit per operation.
    decided: [HashMap<Box<str>, (u16, u16)>; ResourceType::ALL.len()],
    remembered: usize,
}

impl Memo {
    /// Forgets everything unless it was decided for `generation` and `principal`.
    pub(crate) fn refresh(&mut self, generation: u64, principal: Option<&str>) {
        if self.generation != generation || self.principal.as_deref() != principal {
            *self = Self {
                generation,
                principal: principal.map(Box::from),
                ..Self::default()
            };
        }
    }

    fn get(&self, resource: ResourceType, name: &str, operation: Operation) -> Option<bool> {
        let bit = 1u16 << operation.index();
        let (decided, allowed) = self.decided[resource.index()].get(name)?;
        (decided & bit != 0).then_some(allowed & bit != 0)
    }

    fn put(&mut self, resource: ResourceType, name: &str, operation: Operation, allowed: bool) {
        if self.remembered >= MAX_REMEMBERED {
            let (generation, principal) = (self.generation, self.principal.take());
            *self = Self {
                generation,
                principal,
                ..Self::default()
            };
        }
        let bit = 1u16 << operation.index();
        let names = &mut self.decided[resource.index()];
        let entry = match names.get_mut(name) {
            Some(entry) => entry,
            None => {
                self.remembered += 1;
                names.entry(Box::from(name)).or_default()
            }
        };
        entry.0 |= bit;
        if allowed {
            entry.1 |= bit;
        }
    }
}

/// Whether allowed decisions are audited too (denials always are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuditAllows {
    /// Only denials.
    #[default]
    No,
    /// Every decision.
    Yes,
}

/// The decisions for one request.
pub(crate) struct Decide<'a> {
    pub(crate) acl: &'a Acl,
    pub(crate) cx: &'a SessionContext,
    pub(crate) memo: &'a mut Memo,
    pub(crate) metrics: &'a AuthorizationMetrics,
    pub(crate) topic_ids: &'a Arc<TopicIds>,
    pub(crate) api: ApiKey,
    pub(crate) audit_allows: AuditAllows,
    /// Filtering an answer: decisions are not counted, logged or audited.
    pub(crate) quiet: bool,
}

impl Decide<'_> {
    /// Runs `decisions` without counting, logging or auditing them: a Metadata answer for
    /// every topic is filtered by asking about each, which is no client asking for any.
    pub(crate) fn quietly<T>(&mut self, decisions: impl FnOnce(&mut Self) -> T) -> T {
        let was = std::mem::replace(&mut self.quiet, true);
        let out = decisions(self);
        self.quiet = was;
        out
    }

    fn requester(&self) -> Requester<'_> {
        Requester {
            principal: self.cx.auth().principal(),
            source: Some(self.cx.client_addr().ip()),
            sni: self.cx.sni(),
            listener: self.cx.listener(),
        }
    }

    /// May the session do `operation` to the `resource` named `name`?
    pub(crate) fn allows(
        &mut self,
        resource: ResourceType,
        name: &str,
        operation: Operation,
    ) -> bool {
        if self.quiet {
            return match self.memo.get(resource, name, operation) {
                Some(allowed) => allowed,
                None => {
                    let allowed = self
                        .acl
                        .decide(&self.requester(), resource, name, operation)
                        .allowed();
                    self.memo.put(resource, name, operation, allowed);
                    allowed
                }
            };
        }
        let allowed = match self.memo.get(resource, name, operation) {
            Some(allowed) => {
                if !allowed || self.audit_allows == AuditAllows::Yes {
                    self.audit(resource, name, operation, allowed, None);
                }
                allowed
            }
            None => {
                let decision = self
                    .acl
                    .decide(&self.requester(), resource, name, operation);
                let allowed = decision.allowed();
                self.memo.put(resource, name, operation, allowed);
                if !allowed {
                    self.log_denial(resource, name, operation, decision);
                }
                if !allowed || self.audit_allows == AuditAllows::Yes {
                    self.audit(resource, name, operation, allowed, Some(decision));
                }
                allowed
            }
        };
        self.metrics.record(resource, operation, allowed);
        allowed
    }

    /// May the session do `operation` to the cluster?
    pub(crate) fn allows_cluster(&mut self, operation: Operation) -> bool {
        self.allows(ResourceType::Cluster, "kafka-cluster", operation)
    }

    /// May the session do `operation` to some resource of the type (Kafka's test for an
    /// idempotent producer: write to some topic)?
    pub(crate) fn allows_any(&mut self, resource: ResourceType, operation: Operation) -> bool {
        let allowed = self.acl.allows_any(&self.requester(), resource, operation);
        if self.quiet {
            return allowed;
        }
        self.metrics.record(resource, operation, allowed);
        if !allowed {
            self.audit(resource, "*", operation, false, None);
        }
        allowed
    }

    /// The name of the topic with `id`, when known.
    pub(crate) fn topic_name(
        &self,
        id: &uuid::Uuid,
    ) -> Option<kafka_protocol::messages::TopicName> {
        self.topic_ids.name(id)
    }

    fn rule_text(&self, decision: Decision) -> Option<String> {
        let index = decision.rule()?;
        self.acl
            .rules()
            .get(index)
            .map(|rule| format!("rule[{index}]: {rule}"))
    }

    fn log_denial(
        &self,
        resource: ResourceType,
        name: &str,
        operation: Operation,
        decision: Decision,
    ) {
        info!(
            session.id = self.cx.id().get(),
            client.addr = %self.cx.client_addr(),
            auth.principal = self.cx.auth().principal().unwrap_or("ANONYMOUS"),
            kafka.api = ?self.api,
            acl.resource = resource.label(),
            acl.name = name,
            acl.operation = operation.label(),
            acl.rule = self.rule_text(decision).as_deref().unwrap_or("no rule allows it"),
            "authorization denied"
        );
    }

    fn audit(
        &self,
        resource: ResourceType,
        name: &str,
        operation: Operation,
        allowed: bool,
        decision: Option<Decision>,
    ) {
        self.cx.audit(
            || AuditDetail::Authorization {
                api: format!("{:?}", self.api).into(),
                resource_type: resource.label(),
                name: name.into(),
                operation: operation.label(),
                allowed,
                rule: self
                    .rule_text(decision.unwrap_or_else(|| {
                        self.acl
                            .decide(&self.requester(), resource, name, operation)
                    }))
                    .map(String::into_boxed_str),
            },
            AuditKind::Authorization,
        );
    }
}
