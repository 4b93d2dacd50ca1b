//! The cost of an authorization decision: a Produce to 10 topics (10 decisions, `write` on each
//! topic) against 1 000 rules, the last of which allow it, with deny rules for other principals
//! and prefixes in between, as a large shared cluster's rules file might hold; and the same
//! against 1 000 rules all for any principal (`*`), which the index by principal cannot narrow.
//! (The stage remembers each session's decisions until the rules change, so this is the cost of
//! a session's first request per topic, and after each reload.)
//!
//! ```sh
//! cargo bench -p proxy-kafka --bench acl_decision -- --quick
//! ```
#![expect(clippy::unwrap_used, reason = "benchmark setup")]

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use proxy_kafka::authorization::{Acl, Operation, Requester, ResourceType};

fn rules() -> String {
    let mut text = String::new();
    for n in 0..990 {
        let (effect, pattern) = if n % 10 == 0 {
            ("deny", "prefixed")
        } else {
            ("allow", "literal")
        };
        text.push_str(&format!(
            "[[rule]]\nprincipal = \"user-{n}\"\nresource = \"topic\"\nname = \"team-{n}-\"\n\
             pattern = \"{pattern}\"\noperations = [\"write\", \"read\"]\neffect = \"{effect}\"\n\n"
        ));
    }
    for n in 0..10 {
        text.push_str(&format!(
            "[[rule]]\nprincipal = \"alice\"\nresource = \"topic\"\nname = \"orders-{n}\"\n\
             operations = [\"write\"]\nsource = \"10.0.0.0/8\"\n\n"
        ));
    }
    text
}

fn decide(c: &mut Criterion) {
    let acl = Acl::parse(&rules()).unwrap();
    assert_eq!(acl.rules().len(), 1000);
    let topics: Vec<String> = (0..10).map(|n| format!("orders-{n}")).collect();
    let alice = Requester {
        principal: Some("alice"),
        source: Some("10.1.2.3".parse::<IpAddr>().unwrap()),
        sni: None,
        listener: "kafka",
    };
    for topic in &topics {
        assert!(
            acl.decide(&alice, ResourceType::Topic, topic, Operation::Write)
                .allowed()
        );
    }
    c.bench_function("acl: produce to 10 topics, 1000 rules", |b| {
        b.iter(|| {
            for topic in &topics {
                black_box(acl.decide(
                    black_box(&alice),
                    ResourceType::Topic,
                    black_box(topic),
                    Operation::Write,
                ));
            }
        });
    });
}

/// 990 prefixed rules for any authenticated principal, then the 10 that allow alice's topics.
fn rules_for_everyone() -> String {
    let mut text = String::new();
    for n in 0..990 {
        let effect = if n % 10 == 0 { "deny" } else { "allow" };
        text.push_str(&format!(
            "[[rule]]\nprincipal = \"*\"\nresource = \"topic\"\nname = \"team-{n}-\"\n\
             pattern = \"prefixed\"\noperations = [\"write\", \"read\"]\neffect = \"{effect}\"\n\n"
        ));
    }
    for n in 0..10 {
        text.push_str(&format!(
            "[[rule]]\nprincipal = \"*\"\nresource = \"topic\"\nname = \"orders-{n}\"\n\
             operations = [\"write\"]\nsource = \"10.0.0.0/8\"\n\n"
        ));
    }
    text
}

fn decide_for_everyone(c: &mut Criterion) {
    let acl = Acl::parse(&rules_for_everyone()).unwrap();
    assert_eq!(acl.rules().len(), 1000);
    let topics: Vec<String> = (0..10).map(|n| format!("orders-{n}")).collect();
    let alice = Requester {
        principal: Some("alice"),
        source: Some("10.1.2.3".parse::<IpAddr>().unwrap()),
        sni: None,
        listener: "kafka",
    };
    for topic in &topics {
        assert!(
            acl.decide(&alice, ResourceType::Topic, topic, Operation::Write)
                .allowed()
        );
    }
    c.bench_function(
        "acl: produce to 10 topics, 1000 rules for any principal",
        |b| {
            b.iter(|| {
                for topic in &topics {
                    black_box(acl.decide(
                        black_box(&alice),
                        ResourceType::Topic,
                        black_box(topic),
                        Operation::Write,
                    ));
                }
            });
        },
    );
}

criterion_group!(benches, decide, decide_for_everyone);
criterion_main!(benches);
