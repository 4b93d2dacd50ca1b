//! Authorization at the proxy: Kafka's ACL model (the rules a `kafka-acls` user knows), decided
//! fail-closed — a request no rule allows is denied, and a deny rule wins over any allow.
//!
//! [`Acl::decide`] is the decision for one principal, source, resource and operation, naming the
//! rule that made it (`sluice acl test` asks it from the command line). The stage
//! ([`NewAuthorization`]) asks it for every resource a request names and answers what is denied
//! the way a broker does, with Kafka's own error codes, never by closing the connection.

mod apis;
mod decide;
mod error_answer;
mod metrics;
mod rules;
mod shared;
mod stage;
mod topic_ids;

#[cfg(test)]
mod stage_tests;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

pub use self::apis::{COVERED_APIS, covers};
pub(crate) use self::apis::{learn_topic_ids, refusal_code};
pub(crate) use self::error_answer::error_answer;
#[cfg(test)]
pub(crate) use self::error_answer::error_answer_tests::defaults as default_request_for_tests;
pub use self::metrics::{AuthorizationMetrics, DecisionCount};
pub use self::rules::{
    Effect, Operation, Pattern, PrincipalMatch, Requester, ResourceType, Rule, RulesError,
    parse_rules,
};
pub use self::shared::SharedAcl;
pub use self::stage::{AuditAllows, KIND, NewAuthorization};
pub use self::topic_ids::TopicIds;

/// A rules file's rules, in file order (a rule's number is its index there), indexed by
/// resource type and principal so a decision reads only the rules that can apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    rules: Vec<Rule>,
    /// Rule indexes by principal and resource type, each list in file order.
    index: RuleIndex,
}

/// Rule indexes, `[resource type]` lists in file order, by the principal they are for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RuleIndex {
    named: HashMap<Box<str>, ByResource>,
    any_authenticated: ByResource,
    anonymous: ByResource,
}

type ByResource = [Vec<usize>; ResourceType::ALL.len()];

/// An answer, with the rule that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by the rule at this index.
    Allowed(usize),
    /// Denied by the deny rule at this index.
    Denied(usize),
    /// Denied because no rule allows it.
    NoRuleAllows,
}

impl Decision {
    /// Whether the request may go on.
    pub fn allowed(self) -> bool {
        matches!(self, Self::Allowed(_))
    }

    /// The rule that made it, if one did.
    pub fn rule(self) -> Option<usize> {
        match self {
            Self::Allowed(index) | Self::Denied(index) => Some(index),
            Self::NoRuleAllows => None,
        }
    }
}

impl Acl {
    /// The rules of a rules file's text.
    pub fn parse(text: &str) -> Result<Self, RulesError> {
        Ok(Self::new(parse_rules(text)?))
    }

    /// These rules.
    pub fn new(rules: Vec<Rule>) -> Self {
        let mut index = RuleIndex::default();
        for (at, rule) in rules.iter().enumerate() {
            let lists = match &rule.principal {
                PrincipalMatch::Named(name) => index.named.entry(name.clone()).or_default(),
                PrincipalMatch::AnyAuthenticated => &mut index.any_authenticated,
                PrincipalMatch::Anonymous => &mut index.anonymous,
            };
            lists[rule.resource.index()].push(at);
        }
        Self { rules, index }
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rules that may apply to `requester` and `resource`: those for its principal, and
    /// for any authenticated principal (or for ANONYMOUS), each in file order.
    fn candidates<'a>(
        &'a self,
        requester: &Requester<'_>,
        resource: ResourceType,
    ) -> impl Iterator<Item = (usize, &'a Rule)> + 'a {
        let kind = resource.index();
        let lists: [Option<&Vec<usize>>; 2] = match requester.principal {
            Some(principal) => [
                self.index.named.get(principal).map(|lists| &lists[kind]),
                Some(&self.index.any_authenticated[kind]),
            ],
            None => [Some(&self.index.anonymous[kind]), None],
        };
        lists
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|&at| self.rules.get(at).map(|rule| (at, rule)))
    }

    /// May `requester` do `operation` to the `resource` named `name`? A matching deny rule
    /// wins (the first in file order is named); else the first matching allow rule allows;
    /// else it is denied.
    pub fn decide(
        &self,
        requester: &Requester<'_>,
        resource: ResourceType,
        name: &str,
        operation: Operation,
    ) -> Decision {
        let mut allowed: Option<usize> = None;
        let mut denied: Option<usize> = None;
        for (at, rule) in self.candidates(requester, resource) {
            if !rule.covers(requester, resource, name) {
                continue;
            }
            match rule.effect {
                Effect::Deny if rule.operations.iter().any(|op| op.denies(operation)) => {
                    denied = Some(denied.map_or(at, |first| first.min(at)));
                }
                Effect::Allow if rule.operations.iter().any(|op| op.allows(operation)) => {
                    allowed = Some(allowed.map_or(at, |first| first.min(at)));
                }
                _ => {}
            }
        }
        match (denied, allowed) {
            (Some(rule), _) => Decision::Denied(rule),
            (None, Some(rule)) => Decision::Allowed(rule),
            (None, None) => Decision::NoRuleAllows,
        }
    }

    /// May `requester` do `operation` to *some* resource of type `resource`? Kafka asks this
    /// where a permission on any topic will do (an idempotent producer may write to some
    /// topic): an allow rule for it whose names no deny rule takes in whole.
    pub fn allows_any(
        &self,
        requester: &Requester<'_>,
        resource: ResourceType,
        operation: Operation,
    ) -> bool {
        let applying: Vec<&Rule> = self
            .candidates(requester, resource)
            .map(|(_, rule)| rule)
            .filter(|rule| rule.applies_to(requester))
            .collect();
        applying.iter().any(|allow| {
            allow.effect == Effect::Allow
                && allow.operations.iter().any(|op| op.allows(operation))
                && !applying.iter().any(|deny| {
                    deny.effect == Effect::Deny
                        && deny.operations.iter().any(|op| op.denies(operation))
                        && deny.names_all_of(allow)
                })
        })
    }
}
