//! Stage 2 costs: rule lookup plus evaluation for one `tools/call`, with a 3-rule table whose
//! matching rule has one `matches` condition, and the same call with 10, 1k and 10k tools and
//! 1k unrelated rules in the table (the lookup is by backend and tool, so the figure should not
//! move).
#![allow(missing_docs)]
#![allow(clippy::unwrap_used)] // fixed benchmark inputs: a failure is a broken bench, not a crash

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use portcullis::auth::{Principal, PrincipalKind};
use portcullis::mcp::json::Decoder;
use portcullis::policy::cel::{self, Auth, Jwt, Mcp, Request, RequestActivation};
use portcullis::policy::rules::{Call, Policy, Rule, Target};

fn rule(scopes: &[&str], tool: &str, when: Option<&str>, allow: bool) -> Rule {
    Rule {
        name: None,
        scopes: scopes.iter().map(|s| Box::from(*s)).collect(),
        claims: Vec::new(),
        targets: vec![Target {
            backend: "b1".into(),
            tool: Some(tool.into()),
            when: when.map(|w| cel::compile_with(w, &cel::Options::gateway()).unwrap()),
        }],
        resources: Vec::new(),
        prompts: Vec::new(),
        cel: None,
        allow,
    }
}

/// The seed's table: a deny for one tool, the allow with a `matches` condition, another allow.
fn three_rules() -> Vec<Rule> {
    vec![
        rule(&[], "drop", None, false),
        rule(&["echo"], "echo", Some(r#"args.text.matches("^Hello, .*!$")"#), true),
        rule(&["sum"], "sum", None, true),
    ]
}

fn decide(c: &mut Criterion, label: &str, policy: &Policy) {
    let principal =
        Principal::with_claims(PrincipalKind::Jwt, "alice", &serde_json::json!({"scope": "echo sum"}));
    let mut d = Decoder::default();
    let args = br#"{"text":"Hello, World!"}"#;
    d.with_tape(args, |tape| {
        let act = RequestActivation {
            args: Some(tape),
            request: Request {
                method: "POST",
                host: b"gw.example.com",
                path: b"/mcp",
                headers: None,
                auth: Auth { jwt: Some(Jwt { principal: &principal }), ..Auth::default() },
                mcp: Mcp {
                    method: Some("tools/call"),
                    backend: Some("b1"),
                    tool: Some("echo"),
                    params: Default::default(),
                },
            },
        };
        let call = Call { backend: "b1", tool: "echo", principal: &principal, activation: &act };
        let mut errors = 0;
        assert!(matches!(
            policy.decide(&call, &mut errors).0,
            portcullis::policy::rules::Decision::Allow { .. }
        ));
        c.bench_function(label, |b| b.iter(|| black_box(policy.decide(black_box(&call), &mut errors))));
    })
    .unwrap();
}

fn tables(c: &mut Criterion) {
    decide(c, "authorize_3_rules_matches", &Policy::new(three_rules(), false));
    for (tools, unrelated) in [(10usize, 0usize), (1_000, 1_000), (10_000, 1_000)] {
        let mut rules = three_rules();
        // Unrelated rules on other tools, before and after the ones that match.
        for i in 0..unrelated {
            let r = rule(&["x"], &format!("t{}", i % tools), Some(r#"args.a == "b""#), i % 2 == 0);
            if i % 2 == 0 {
                rules.insert(0, r);
            } else {
                rules.push(r);
            }
        }
        decide(c, &format!("authorize_{tools}_tools_{}_rules", rules.len()), &Policy::new(rules, false));
    }
}

criterion_group!(benches, tables);
criterion_main!(benches);
