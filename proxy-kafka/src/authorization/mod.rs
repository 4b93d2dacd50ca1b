//! Authorization at the proxy: Kafka's ACL model (the rules a `kafka-acls` user knows), decided
//! fail-closed — a request no rule allows is denied, and a deny rule wins over any allow.
//!
//! This module is the decision: [`Acl::decide`] for one principal, source, resource and
//! operation, naming the rule that made it. `sluice acl test` asks it from the command line.

mod rules;

#[cfg(test)]
mod tests;

pub use self::rules::{
    Effect, Operation, Pattern, PrincipalMatch, Requester, ResourceType, Rule, RulesError,
    parse_rules,
};

/// A rules file's rules, in file order (a rule's number is its index there).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    rules: Vec<Rule>,
}

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
}

impl Acl {
    /// The rules of a rules file's text.
    pub fn parse(text: &str) -> Result<Self, RulesError> {
        Ok(Self {
            rules: parse_rules(text)?,
        })
    }

    /// These rules.
    pub fn new(rules: Vec<Rule>) -> Self {
        Self { rules }
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
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
        let mut allowed = None;
        for (index, rule) in self.rules.iter().enumerate() {
            if !rule.covers(requester, resource, name) {
                continue;
            }
            match rule.effect {
                Effect::Deny if rule.operations.iter().any(|op| op.denies(operation)) => {
                    return Decision::Denied(index);
                }
                Effect::Allow
                    if allowed.is_none()
                        && rule.operations.iter().any(|op| op.allows(operation)) =>
                {
                    allowed = Some(index);
                }
                _ => {}
            }
        }
        allowed.map_or(Decision::NoRuleAllows, Decision::Allowed)
    }
}
