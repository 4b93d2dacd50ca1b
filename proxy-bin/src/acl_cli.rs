//! `sluice acl test --rules FILE [--principal P] [--source IP] [--sni NAME] [--listener NAME]
//! RESOURCE_TYPE:NAME OPERATION`: what a rules file decides for one request, and the rule that
//! decided it. Exit 0 when allowed, 1 when denied, 2 when the rules or the question are wrong.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use proxy_kafka::authorization::{Acl, Decision, Operation, Requester, ResourceType};

/// The question, as the command line gives it.
#[derive(Debug)]
pub(crate) struct Question<'a> {
    pub(crate) rules: &'a Path,
    pub(crate) principal: Option<&'a str>,
    pub(crate) source: Option<IpAddr>,
    pub(crate) sni: Option<&'a str>,
    pub(crate) listener: &'a str,
    pub(crate) resource: &'a str,
    pub(crate) operation: &'a str,
}

/// Runs `sluice acl test`.
pub(crate) fn test(question: &Question<'_>) -> ExitCode {
    match answer(question) {
        Ok((allowed, text)) => {
            let _ = writeln!(std::io::stdout(), "{text}");
            if allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "sluice: {err}");
            ExitCode::from(2)
        }
    }
}

fn answer(question: &Question<'_>) -> Result<(bool, String), String> {
    let text = std::fs::read_to_string(question.rules)
        .map_err(|err| format!("{}: {err}", question.rules.display()))?;
    let acl = Acl::parse(&text).map_err(|err| format!("{}: {err}", question.rules.display()))?;
    let (kind, name) = match question.resource.split_once(':') {
        Some((kind, name)) => (kind, name),
        None if question.resource == "cluster" => ("cluster", "kafka-cluster"),
        None => {
            return Err(format!(
                "{:?}: expected TYPE:NAME (topic:orders, group:payments, transactional_id:tx-1) \
                 or cluster",
                question.resource
            ));
        }
    };
    let resource = ResourceType::ALL
        .into_iter()
        .find(|resource| resource.label() == kind)
        .ok_or_else(|| {
            format!("unknown resource type {kind:?}: topic, group, transactional_id or cluster")
        })?;
    let operation = Operation::parse(question.operation).ok_or_else(|| {
        format!(
            "unknown operation {:?}: one of {}",
            question.operation,
            Operation::ALL.map(Operation::label).join(", ")
        )
    })?;
    let requester = Requester {
        principal: question.principal,
        source: question.source,
        sni: question.sni,
        listener: question.listener,
    };
    let decision = acl.decide(&requester, resource, name, operation);
    let rule = |index: usize| {
        acl.rules()
            .get(index)
            .map_or_else(String::new, ToString::to_string)
    };
    Ok(match decision {
        Decision::Allowed(index) => (true, format!("allowed by rule {index}: {}", rule(index))),
        Decision::Denied(index) => (false, format!("denied by rule {index}: {}", rule(index))),
        Decision::NoRuleAllows => (false, "denied: no rule allows it".to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(
        rules: &str,
        principal: Option<&str>,
        resource: &str,
        operation: &str,
    ) -> Result<(bool, String), String> {
        let dir = std::env::temp_dir().join(format!("sluice-acl-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // One file per question: tests run at once, and two rule sets may have one length.
        static ASKED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = ASKED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("acl-{n}.toml"));
        std::fs::write(&path, rules).unwrap();
        answer(&Question {
            rules: &path,
            principal,
            source: Some("10.1.2.3".parse().unwrap()),
            sni: None,
            listener: "kafka",
            resource,
            operation,
        })
    }

    const RULES: &str = "[[rule]]\nprincipal = \"alice\"\nresource = \"topic\"\nname = \"orders-\"\n\
                         pattern = \"prefixed\"\noperations = [\"write\", \"describe\"]\n\
                         source = \"10.0.0.0/8\"\n";

    #[test]
    fn it_says_the_decision_and_the_rule() {
        let (allowed, text) = ask(RULES, Some("alice"), "topic:orders-eu", "write").unwrap();
        assert!(allowed);
        assert_eq!(
            text,
            "allowed by rule 0: allow alice topic prefixed \"orders-\" [write, describe] from 10.0.0.0/8"
        );
        let (allowed, text) = ask(RULES, Some("bob"), "topic:orders-eu", "write").unwrap();
        assert!(!allowed);
        assert_eq!(text, "denied: no rule allows it");
    }

    #[test]
    fn a_wrong_question_is_an_error_that_says_what_is_wrong() {
        let err = ask(RULES, Some("alice"), "orders", "write").unwrap_err();
        assert!(err.contains("expected TYPE:NAME"), "{err}");
        let err = ask(RULES, Some("alice"), "topics:orders", "write").unwrap_err();
        assert!(err.contains("unknown resource type \"topics\""), "{err}");
        let err = ask(RULES, Some("alice"), "topic:orders", "produce").unwrap_err();
        assert!(err.contains("unknown operation \"produce\""), "{err}");
        let err = ask(
            "[[rule]]\nprincipal = 1\n",
            Some("alice"),
            "topic:orders",
            "write",
        )
        .unwrap_err();
        assert!(err.contains("rule[0].principal"), "{err}");
    }
}
