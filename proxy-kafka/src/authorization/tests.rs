//! Every rule-matching edge: literal against prefixed, `*`, deny over allow, the operations
//! that imply describe, ANONYMOUS and `*` principals, source networks, SNI and listeners, and
//! errors in rules files that name the rule and the key.

use std::net::IpAddr;

use super::*;

fn acl(text: &str) -> Acl {
    Acl::parse(text).unwrap_or_else(|err| panic!("{err}"))
}

fn who(principal: Option<&'static str>, source: &str) -> Requester<'static> {
    Requester {
        principal,
        source: Some(source.parse::<IpAddr>().unwrap()),
        sni: None,
        listener: "kafka",
    }
}

const ALICE: Option<&str> = Some("alice");

#[test]
fn nothing_is_allowed_without_a_rule() {
    let empty = acl("");
    let decision = empty.decide(
        &who(ALICE, "10.0.0.1"),
        ResourceType::Topic,
        "orders",
        Operation::Write,
    );
    assert_eq!(decision, Decision::NoRuleAllows);
    assert!(!decision.allowed());
}

#[test]
fn literal_names_match_exactly_and_prefixed_ones_by_prefix() {
    let rules = acl(
        "[[rule]]\nprincipal = \"alice\"\nresource = \"topic\"\nname = \"orders\"\noperations = [\"write\"]\n\n\
         [[rule]]\nprincipal = \"alice\"\nresource = \"topic\"\nname = \"audit-\"\npattern = \"prefixed\"\noperations = [\"read\"]\n",
    );
    let alice = who(ALICE, "10.0.0.1");
    assert_eq!(
        rules.decide(&alice, ResourceType::Topic, "orders", Operation::Write),
        Decision::Allowed(0)
    );
    assert_eq!(
        rules.decide(&alice, ResourceType::Topic, "orders-2", Operation::Write),
        Decision::NoRuleAllows
    );
    assert_eq!(
        rules.decide(&alice, ResourceType::Topic, "audit-eu", Operation::Read),
        Decision::Allowed(1)
    );
    assert_eq!(
        rules.decide(&alice, ResourceType::Topic, "audit", Operation::Read),
        Decision::NoRuleAllows
    );
    // The type matters: a group of the same name is another resource.
    assert_eq!(
        rules.decide(&alice, ResourceType::Group, "orders", Operation::Write),
        Decision::NoRuleAllows
    );
}

#[test]
fn a_literal_star_matches_every_name() {
    let rules = acl(
        "[[rule]]\nprincipal = \"alice\"\nresource = \"group\"\nname = \"*\"\noperations = [\"read\"]\n",
    );
    let alice = who(ALICE, "10.0.0.1");
    assert!(
        rules
            .decide(&alice, ResourceType::Group, "anything", Operation::Read)
            .allowed()
    );
    // A prefixed "*" is only names starting with a star.
    let rules = acl(
        "[[rule]]\nprincipal = \"alice\"\nresource = \"group\"\nname = \"*\"\npattern = \"prefixed\"\noperations = [\"read\"]\n",
    );
    assert!(
        !rules
            .decide(&alice, ResourceType::Group, "anything", Operation::Read)
            .allowed()
    );
}

#[test]
fn deny_wins_over_allow_whatever_the_order() {
    let rules = acl(
        "[[rule]]\nprincipal = \"*\"\nresource = \"topic\"\nname = \"*\"\noperations = [\"all\"]\n\n\
         [[rule]]\nprincipal = \"alice\"\nresource = \"topic\"\nname = \"secret-\"\npattern = \"prefixed\"\noperations = [\"read\"]\neffect = \"deny\"\n",
    );
    let alice = who(ALICE, "10.0.0.1");
    assert_eq!(
        rules.decide(&alice, ResourceType::Topic, "secret-plans", Operation::Read),
        Decision::Denied(1)
    );
    // The deny names read only: write is still allowed by the first rule.
    assert_eq!(
        rules.decide(
            &alice,
            ResourceType::Topic,
            "secret-plans",
            Operation::Write
        ),
        Decision::Allowed(0)
    );
    assert_eq!(
        rules.decide(
            &who(Some("bob"), "10.0.0.1"),
            ResourceType::Topic,
            "secret-plans",
            Operation::Read
        ),
        Decision::Allowed(0)
    );
}

#[test]
fn read_write_delete_and_alter_imply_describe_for_allows_only() {
    for op in ["read", "write", "delete", "alter"] {
        let rules = acl(&format!(
            "[[rule]]\nprincipal = \"alice\"\nresource = \"topic\"\nname = \"t\"\noperations = [\"{op}\"]\n"
        ));
        let alice = who(ALICE, "10.0.0.1");
        assert!(
            rules
                .decide(&alice, ResourceType::Topic, "t", Operation::Describe)
                .allowed(),
            "{op}"
        );
        assert!(
            !rules
                .decide(&alice, ResourceType::Topic, "t", Operation::Create)
                .allowed(),
            "{op}"
        );
    }
    let rules = acl(
        "[[rule]]\nprincipal = \"alice\"\nresource = \"topic\"\nname = \"t\"\noperations = [\"alter_configs\"]\n",
    );
    assert!(
        rules
            .decide(
                &who(ALICE, "10.0.0.1"),
                ResourceType::Topic,
                "t",
                Operation::DescribeConfigs
            )
            .allowed()
    );
    // A deny of write does not deny describe.
    let rules = acl(
        "[[rule]]\nprincipal = \"alice\"\nresource = \"topic\"\nname = \"t\"\noperations = [\"describe\"]\n\n\
         [[rule]]\nprincipal = \"alice\"\nresource = \"topic\"\nname = \"t\"\noperations = [\"write\"]\neffect = \"deny\"\n",
    );
    assert_eq!(
        rules.decide(
            &who(ALICE, "10.0.0.1"),
            ResourceType::Topic,
            "t",
            Operation::Describe
        ),
        Decision::Allowed(0)
    );
    // A deny of all denies describe.
    let rules = acl(
        "[[rule]]\nprincipal = \"alice\"\nresource = \"topic\"\nname = \"t\"\noperations = [\"describe\"]\n\n\
         [[rule]]\nprincipal = \"alice\"\nresource = \"topic\"\nname = \"t\"\noperations = [\"all\"]\neffect = \"deny\"\n",
    );
    assert_eq!(
        rules.decide(
            &who(ALICE, "10.0.0.1"),
            ResourceType::Topic,
            "t",
            Operation::Describe
        ),
        Decision::Denied(1)
    );
}

#[test]
fn star_is_any_authenticated_principal_and_anonymous_is_nobody() {
    let rules = acl(
        "[[rule]]\nprincipal = \"*\"\nresource = \"topic\"\nname = \"public\"\noperations = [\"read\"]\n\n\
         [[rule]]\nprincipal = \"ANONYMOUS\"\nresource = \"topic\"\nname = \"open\"\noperations = [\"read\"]\n",
    );
    let anonymous = who(None, "10.0.0.1");
    assert!(
        rules
            .decide(
                &who(ALICE, "10.0.0.1"),
                ResourceType::Topic,
                "public",
                Operation::Read
            )
            .allowed()
    );
    assert!(
        !rules
            .decide(&anonymous, ResourceType::Topic, "public", Operation::Read)
            .allowed()
    );
    assert!(
        rules
            .decide(&anonymous, ResourceType::Topic, "open", Operation::Read)
            .allowed()
    );
    assert!(
        !rules
            .decide(
                &who(ALICE, "10.0.0.1"),
                ResourceType::Topic,
                "open",
                Operation::Read
            )
            .allowed()
    );
}

#[test]
fn sources_snis_and_listeners_narrow_a_rule() {
    let rules = acl(
        "[[rule]]\nprincipal = \"alice\"\nresource = \"topic\"\nname = \"t\"\noperations = [\"write\"]\nsource = \"10.0.0.0/8\"\n\n\
         [[rule]]\nprincipal = \"alice\"\nresource = \"cluster\"\noperations = [\"idempotent_write\"]\nsni = \"Broker-1.example.com\"\nlistener = \"tls\"\n",
    );
    assert!(
        rules
            .decide(
                &who(ALICE, "10.1.2.3"),
                ResourceType::Topic,
                "t",
                Operation::Write
            )
            .allowed()
    );
    assert!(
        !rules
            .decide(
                &who(ALICE, "192.168.1.1"),
                ResourceType::Topic,
                "t",
                Operation::Write
            )
            .allowed()
    );
    // An IPv4-mapped IPv6 client is its IPv4 address.
    assert!(
        rules
            .decide(
                &who(ALICE, "::ffff:10.9.9.9"),
                ResourceType::Topic,
                "t",
                Operation::Write
            )
            .allowed()
    );
    let mut tls = who(ALICE, "10.0.0.1");
    tls.listener = "tls";
    tls.sni = Some("broker-1.example.com");
    assert!(
        rules
            .decide(
                &tls,
                ResourceType::Cluster,
                "kafka-cluster",
                Operation::IdempotentWrite
            )
            .allowed()
    );
    tls.listener = "kafka";
    assert!(
        !rules
            .decide(
                &tls,
                ResourceType::Cluster,
                "kafka-cluster",
                Operation::IdempotentWrite
            )
            .allowed()
    );
}

#[test]
fn errors_name_the_rule_and_the_key() {
    let cases = [
        (
            "[[rule]]\nresource = \"topic\"\nname = \"t\"\noperations = [\"read\"]\n",
            "rule[0].principal: required",
        ),
        (
            "[[rule]]\nprincipal = \"a\"\nresource = \"topics\"\nname = \"t\"\noperations = [\"read\"]\n",
            "rule[0].resource: unknown \"topics\"",
        ),
        (
            "[[rule]]\nprincipal = \"a\"\nresource = \"topic\"\noperations = [\"read\"]\n",
            "rule[0].name: required",
        ),
        (
            "[[rule]]\nprincipal = \"a\"\nresource = \"topic\"\nname = \"t\"\noperations = [\"wrte\"]\n",
            "rule[0].operations: unknown operation \"wrte\"",
        ),
        (
            "[[rule]]\nprincipal = \"a\"\nresource = \"topic\"\nname = \"t\"\noperations = []\n",
            "rule[0].operations: names no operation",
        ),
        (
            "[[rule]]\nprincipal = \"a\"\nresource = \"topic\"\nname = \"t\"\noperations = [\"read\"]\neffect = \"maybe\"\n",
            "rule[0].effect: unknown \"maybe\"",
        ),
        (
            "[[rule]]\nprincipal = \"a\"\nresource = \"topic\"\nname = \"t\"\noperations = [\"read\"]\nsource = \"10.0.0/8\"\n",
            "rule[0].source: \"10.0.0/8\" is not a network",
        ),
        (
            "[[rule]]\nprincipal = \"a\"\nresource = \"topic\"\nname = \"t\"\noperations = [\"read\"]\npatern = \"prefixed\"\n",
            "rule[0].patern: unknown key",
        ),
        ("rules = 1\n", "rules: unknown key"),
        ("[[rule]\n", "not TOML"),
    ];
    for (text, expected) in cases {
        let err = Acl::parse(text).unwrap_err().to_string();
        assert!(err.contains(expected), "{text:?}: {err}");
    }
}

#[test]
fn a_rule_shows_as_written() {
    let rules = acl(
        "[[rule]]\nprincipal = \"alice\"\nresource = \"topic\"\nname = \"orders-\"\npattern = \"prefixed\"\noperations = [\"write\", \"describe\"]\nsource = \"10.0.0.0/8\"\n",
    );
    assert_eq!(
        rules.rules()[0].to_string(),
        "allow alice topic prefixed \"orders-\" [write, describe] from 10.0.0.0/8"
    );
}
