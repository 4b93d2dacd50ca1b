//! `sluice acl test` as an operator runs it: the decision and the rule that made it on standard
//! output, exit 0 for allowed, 1 for denied, and 2 with the reason (the key path, for a broken
//! rules file) on standard error.

use std::process::Command;

use sluice_tests::process::write_config;

use crate::SLUICE;

const RULES: &str = r#"
[[rule]]
principal = "alice"
resource = "topic"
name = "orders-"
pattern = "prefixed"
operations = ["write", "describe"]
source = "10.0.0.0/8"

[[rule]]
principal = "alice"
resource = "topic"
name = "orders-secret"
operations = ["all"]
effect = "deny"
"#;

/// Runs `sluice acl test` on `rules`: exit code, standard output, standard error.
fn acl_test(rules: &str, name: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let path = write_config(name, rules);
    let out = Command::new(SLUICE)
        .args(["acl", "test", "--rules"])
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn acl_test_prints_the_decision_and_the_rule_and_exits_by_it() {
    let alice = ["--principal", "alice", "--source", "10.1.2.3"];
    let (code, out, _) = acl_test(
        RULES,
        "acl-test-allow.toml",
        &[&alice[..], &["topic:orders-eu", "write"]].concat(),
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.starts_with("allowed by rule 0: allow alice topic prefixed \"orders-\""),
        "{out}"
    );

    // Deny wins, and says which rule denied.
    let (code, out, _) = acl_test(
        RULES,
        "acl-test-deny.toml",
        &[&alice[..], &["topic:orders-secret", "write"]].concat(),
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("denied by rule 1: deny alice"), "{out}");

    // From another network, no rule allows it.
    let (code, out, _) = acl_test(
        RULES,
        "acl-test-source.toml",
        &[
            "--principal",
            "alice",
            "--source",
            "192.168.1.1",
            "topic:orders-eu",
            "write",
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(out.trim(), "denied: no rule allows it");
}

#[test]
fn acl_test_names_the_key_of_a_broken_rule_and_exits_2() {
    let (code, out, err) = acl_test(
        "[[rule]]\nprincipal = \"alice\"\nresource = \"topics\"\nname = \"x\"\noperations = [\"read\"]\n",
        "acl-test-broken.toml",
        &["--principal", "alice", "topic:x", "read"],
    );
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("rule[0].resource"), "{err}");

    let (code, _, err) = acl_test(RULES, "acl-test-question.toml", &["orders", "write"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("expected TYPE:NAME"), "{err}");
}
