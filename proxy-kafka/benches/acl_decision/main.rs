//! The cost of an authorization decision: a Produce to 10 topics (10 decisions, `write` on each
//! topic) against 1 000 rules, the last of which allow it, with deny rules for other principals
//! and prefixes in between, as a large shared cluster's rules file might hold.
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

criterion_group!(benches, decide);
criterion_main!(benches);
