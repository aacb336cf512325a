#![allow(clippy::unwrap_used)]
use super::*;
use crate::auth::PrincipalKind;
use crate::mcp::json::Decoder;
use crate::policy::cel::{self, Auth, Jwt, Mcp, Request, RequestActivation};

fn program(src: &str) -> Program {
    cel::compile_with(src, &cel::Options::gateway()).unwrap()
}

fn principal(scopes: &[&str], claims: serde_json::Value) -> Principal {
    let mut claims = claims.as_object().cloned().unwrap_or_default();
    claims.insert("scope".into(), scopes.join(" ").into());
    Principal::with_claims(PrincipalKind::Jwt, "alice", &claims.into())
}

fn rule(scopes: &[&str], targets: Vec<Target>, allow: bool) -> Rule {
    Rule {
        name: None,
        scopes: scopes.iter().map(|s| Box::from(*s)).collect(),
        claims: Vec::new(),
        targets,
        resources: Vec::new(),
        prompts: Vec::new(),
        cel: None,
        allow,
    }
}

fn target(backend: &str, tool: Option<&str>, when: Option<&str>) -> Target {
    Target { backend: backend.into(), tool: tool.map(Into::into), when: when.map(program) }
}

/// Decides a call of `backend`/`tool` with arguments `args` (JSON) by `p`.
fn decide(policy: &Policy, p: &Principal, backend: &str, tool: &str, args: &str) -> Decision {
    let mut d = Decoder::default();
    let params = format!(r#"{{"name":"{tool}","arguments":{args}}}"#);
    d.with_tape(params.as_bytes(), |params| {
        let tape = crate::mcp::json::get(params, "arguments").unwrap();
        let act = RequestActivation {
            args: Some(tape),
            request: Request {
                method: "POST",
                host: b"gw",
                path: b"/mcp",
                headers: None,
                auth: Auth { jwt: Some(Jwt { principal: p }), ..Auth::default() },
                mcp: Mcp {
                    method: Some("tools/call"),
                    backend: Some(backend),
                    tool: Some(tool),
                    params: cel::Params { sent: Some(params), arguments: None },
                },
            },
        };
        let mut errors = 0;
        policy.decide(&Call { backend, tool, principal: p, activation: &act }, &mut errors).0
    })
    .unwrap()
}

fn listed(policy: &Policy, p: &Principal, backend: &str, tool: &str) -> bool {
    let act = RequestActivation {
        args: None,
        request: Request {
            method: "POST",
            host: b"gw",
            path: b"/mcp",
            headers: None,
            auth: Auth { jwt: Some(Jwt { principal: p }), ..Auth::default() },
            mcp: Mcp { method: Some("tools/list"), backend: None, tool: None, params: Default::default() },
        },
    };
    policy.may_list(backend, tool, p, &act)
}

/// A POST to /mcp with no headers, no principal and no MCP fields.
fn anonymous_request() -> Request<'static> {
    Request {
        method: "POST",
        host: b"gw",
        path: b"/mcp",
        headers: None,
        auth: Auth::default(),
        mcp: Mcp::default(),
    }
}

#[test]
fn the_seed_example() {
    // Envoy AI Gateway's MCPRoute example: scope `echo`, tool b1/echo, arguments matching.
    let policy = Policy::new(
        vec![rule(
            &["echo"],
            vec![target("b1", Some("echo"), Some(r#"args.text.matches("^Hello, .*!$")"#))],
            true,
        )],
        false,
    );
    let ok = principal(&["echo", "other"], serde_json::json!({}));
    assert_eq!(
        decide(&policy, &ok, "b1", "echo", r#"{"text":"Hello, World!"}"#),
        Decision::Allow { rule: Some(0) }
    );
    assert_eq!(
        decide(&policy, &ok, "b1", "echo", r#"{"text":"Goodbye"}"#),
        Decision::Deny { rule: None, scope: None },
        "condition false: plain deny"
    );
    let no_scope = principal(&["other"], serde_json::json!({}));
    assert_eq!(
        decide(&policy, &no_scope, "b1", "echo", r#"{"text":"Hello, World!"}"#),
        Decision::Deny { rule: None, scope: Some(vec!["echo".into()]) },
        "missed only for scopes: insufficient_scope"
    );
    assert_eq!(decide(&policy, &ok, "b1", "sum", "{}"), Decision::Deny { rule: None, scope: None });
    assert!(listed(&policy, &ok, "b1", "echo"), "some arguments could pass");
    assert!(!listed(&policy, &no_scope, "b1", "echo"));
    assert!(!listed(&policy, &ok, "b1", "sum"));
}

#[test]
fn first_match_wins_and_defaults() {
    let policy = Policy::new(
        vec![
            rule(&[], vec![target("b1", Some("drop"), None)], false),
            rule(&[], vec![target("b1", None, None)], true),
        ],
        false,
    );
    let p = principal(&[], serde_json::json!({}));
    assert_eq!(decide(&policy, &p, "b1", "drop", "{}"), Decision::Deny { rule: Some(0), scope: None });
    assert_eq!(decide(&policy, &p, "b1", "any", "{}"), Decision::Allow { rule: Some(1) });
    assert_eq!(decide(&policy, &p, "b2", "any", "{}"), Decision::Deny { rule: None, scope: None });
    assert!(!listed(&policy, &p, "b1", "drop"));
    assert!(listed(&policy, &p, "b1", "any"));
    let open = Policy::new(vec![rule(&[], vec![target("b1", Some("x"), None)], false)], true);
    assert_eq!(decide(&open, &p, "b2", "y", "{}"), Decision::Allow { rule: None });
    assert!(Policy::new(Vec::new(), true).is_open());
}

#[test]
fn claims_nested_and_arrays() {
    let mut r = rule(&[], Vec::new(), true);
    r.claims =
        vec![claim("org.id", &["acme"], ClaimKind::Any), claim("groups", &["ops", "dev"], ClaimKind::Any)];
    let policy = Policy::new(vec![r], false);
    let yes = principal(&[], serde_json::json!({"org": {"id": "acme"}, "groups": ["x", "dev"]}));
    let wrong_org = principal(&[], serde_json::json!({"org": {"id": "evil"}, "groups": ["dev"]}));
    let no_group = principal(&[], serde_json::json!({"org": {"id": "acme"}, "groups": []}));
    assert_eq!(decide(&policy, &yes, "b", "t", "{}"), Decision::Allow { rule: Some(0) });
    assert!(matches!(decide(&policy, &wrong_org, "b", "t", "{}"), Decision::Deny { .. }));
    assert!(matches!(decide(&policy, &no_group, "b", "t", "{}"), Decision::Deny { .. }));
}

#[test]
fn claim_paths_walk_nested_objects_only() {
    let mut r = rule(&[], Vec::new(), true);
    r.claims = vec![claim("org.id", &["acme"], ClaimKind::Any)];
    let policy = Policy::new(vec![r], false);
    let flat = principal(&[], serde_json::json!({"org.id": "acme"}));
    assert!(matches!(decide(&policy, &flat, "b", "t", "{}"), Decision::Deny { rule: None, .. }));
    let nested = principal(&[], serde_json::json!({"org.id": "evil", "org": {"id": "acme"}}));
    assert_eq!(decide(&policy, &nested, "b", "t", "{}"), Decision::Allow { rule: Some(0) });
}

#[test]
fn smallest_scope_set_is_challenged() {
    let policy = Policy::new(
        vec![
            rule(&["a", "b", "c"], vec![target("b1", Some("t"), None)], true),
            rule(&["d"], vec![target("b1", Some("t"), None)], true),
            rule(&["e"], vec![target("b1", Some("other"), None)], true),
        ],
        false,
    );
    let p = principal(&["a"], serde_json::json!({}));
    assert_eq!(
        decide(&policy, &p, "b1", "t", "{}"),
        Decision::Deny { rule: None, scope: Some(vec!["d".into()]) }
    );
}

#[test]
fn conditions_that_fail_do_not_match_and_are_counted() {
    let mut r = rule(&[], vec![target("b1", Some("t"), Some("args.n > 3"))], true);
    r.cel = Some(program(r#"request.headers["x-tenant"] == "t-1""#));
    let policy = Policy::new(vec![r], false);
    let p = principal(&[], serde_json::json!({}));
    let mut d = Decoder::default();
    d.with_tape(br#"{"n":"not a number"}"#, |tape| {
        let act = RequestActivation { args: Some(tape), request: anonymous_request() };
        let mut errors = 0;
        let (d, _) =
            policy.decide(&Call { backend: "b1", tool: "t", principal: &p, activation: &act }, &mut errors);
        assert!(matches!(d, Decision::Deny { .. }));
        assert_eq!(errors, 1);
    })
    .unwrap();
}

#[test]
fn deny_fails_closed() {
    // The attack: `amount` sent as a string makes `args.amount > 100` fail to evaluate; a
    // deny rule that is skipped on error would let the call through to the allow rule.
    let policy = Policy::new(
        vec![
            rule(&[], vec![target("pay", Some("transfer"), Some("args.amount > 100"))], false),
            rule(&[], vec![target("pay", None, None)], true),
        ],
        false,
    );
    let p = principal(&[], serde_json::json!({}));
    assert_eq!(
        decide(&policy, &p, "pay", "transfer", r#"{"amount":"5000"}"#),
        Decision::Deny { rule: Some(0), scope: None },
        "a deny rule that cannot be evaluated denies"
    );
    assert_eq!(
        decide(&policy, &p, "pay", "transfer", r#"{}"#),
        Decision::Deny { rule: Some(0), scope: None },
        "a missing argument is an evaluation error too"
    );
    assert_eq!(decide(&policy, &p, "pay", "transfer", r#"{"amount":5}"#), Decision::Allow { rule: Some(1) });
    assert_eq!(
        decide(&policy, &p, "pay", "transfer", r#"{"amount":5000}"#),
        Decision::Deny { rule: Some(0), scope: None }
    );
    // An allow rule that cannot be evaluated does not allow; the default decides.
    let allow_only = Policy::new(
        vec![rule(&[], vec![target("pay", Some("transfer"), Some("args.amount < 100"))], true)],
        true,
    );
    let mut errors = 0;
    let mut d = Decoder::default();
    let decision = d
        .with_tape(br#"{"amount":"1"}"#, |tape| {
            let act = RequestActivation { args: Some(tape), request: anonymous_request() };
            let call = Call { backend: "pay", tool: "transfer", principal: &p, activation: &act };
            allow_only.decide(&call, &mut errors).0
        })
        .unwrap();
    assert_eq!(decision, Decision::Allow { rule: None }, "default allow, not rule 0");
    assert_eq!(errors, 1);
    // A deny rule whose scopes the caller lacks does not apply, error or not.
    let scoped = Policy::new(
        vec![
            rule(&["payments"], vec![target("pay", Some("transfer"), Some("args.amount > 100"))], false),
            rule(&[], vec![target("pay", None, None)], true),
        ],
        false,
    );
    assert_eq!(
        decide(&scoped, &p, "pay", "transfer", r#"{"amount":"5000"}"#),
        Decision::Allow { rule: Some(1) }
    );
}

#[test]
fn deny_fails_closed_in_listings() {
    // A request-level condition that fails hides the tool a deny rule targets.
    let mut deny = rule(&[], vec![target("b1", Some("t"), None)], false);
    deny.cel = Some(program(r#"request.headers["x-tenant"] == "t-1""#));
    let policy = Policy::new(vec![deny, rule(&[], vec![target("b1", None, None)], true)], false);
    let p = principal(&[], serde_json::json!({}));
    assert!(!listed(&policy, &p, "b1", "t"), "no x-tenant header: the deny rule's condition fails");
    assert!(listed(&policy, &p, "b1", "u"));
}

#[test]
fn a_rule_level_condition_over_arguments_lists_the_tool() {
    // Envoy AI Gateway's example puts the argument check in the rule-level `cel`: the
    // listing cannot evaluate it, and the call may pass, so the tool is listed.
    let mut allow = rule(&["echo"], vec![target("b1", Some("echo"), None)], true);
    allow.cel = Some(program(r#"request.mcp.params.arguments.text.matches("^Hello, .*!$")"#));
    let policy = Policy::new(vec![allow], false);
    let p = principal(&["echo"], serde_json::json!({}));
    assert!(listed(&policy, &p, "b1", "echo"));
    assert_eq!(
        decide(&policy, &p, "b1", "echo", r#"{"text":"Hello, you!"}"#),
        Decision::Allow { rule: Some(0) }
    );
    assert!(matches!(decide(&policy, &p, "b1", "echo", r#"{"text":"bye"}"#), Decision::Deny { .. }));
    assert!(!listed(&policy, &principal(&[], serde_json::json!({})), "b1", "echo"), "scopes still apply");
    // What the listing has still decides: a condition false on the request hides the tool.
    let mut tenant = rule(&["echo"], vec![target("b1", Some("echo"), None)], true);
    tenant.cel =
        Some(program(r#"request.mcp.params.arguments.text.matches("^H") && request.method == "GET""#));
    let policy = Policy::new(vec![tenant], false);
    assert!(!listed(&policy, &p, "b1", "echo"), "false && unknown is false");
    // A condition that does not read arguments and fails is a miss, as before.
    let mut header = rule(&["echo"], vec![target("b1", Some("echo"), None)], true);
    header.cel = Some(program(r#"request.headers["x-tenant"] == "t-1""#));
    assert!(!listed(&Policy::new(vec![header], false), &p, "b1", "echo"));
}

#[test]
fn lookup_is_by_tool_not_by_table_size() {
    // 1k rules on other tools do not change which rules a call sees.
    let mut rules: Vec<Rule> =
        (0..1000).map(|i| rule(&[], vec![target("b1", Some(&format!("t{i}")), None)], false)).collect();
    rules.push(rule(&[], vec![target("b1", Some("mine"), None)], true));
    let policy = Policy::new(rules, false);
    assert_eq!(policy.candidates("b1", "mine").count(), 1);
    assert_eq!(policy.candidates("b1", "t5").count(), 1);
    assert_eq!(policy.candidates("b2", "mine").count(), 0);
}

#[test]
fn uri_globs() {
    let g = Glob::new("file:///docs/*").unwrap();
    assert!(
        g.matches("file:///docs/a.md") && g.matches("file:///docs/deep/b.md") && g.matches("file:///docs/")
    );
    assert!(!g.matches("file:///docs") && !g.matches("file:///etc/passwd") && !g.matches("xfile:///docs/a"));
    let q = Glob::new("db://t?/(x)+.[y]").unwrap();
    assert!(q.matches("db://t1/(x)+.[y]") && !q.matches("db://t12/(x)+.[y]"), "only * and ? are special");
    assert!(g.could_match_template("file:///docs/{name}") && g.could_match_template("file:///{path}"));
    assert!(!g.could_match_template("file:///etc/{name}"));
}

#[test]
fn resource_and_prompt_rules_fail_closed() {
    let mut deny = rule(&[], Vec::new(), false);
    deny.resources = vec![("b1".into(), Glob::new("file:///*").unwrap())];
    deny.cel = Some(program(r#"request.headers["x-tenant"] == "t-1""#));
    let mut allow = rule(&["docs"], Vec::new(), true);
    allow.resources = vec![("b1".into(), Glob::new("*").unwrap())];
    allow.prompts = vec![("b1".into(), None)];
    let policy = Policy::new(vec![deny, allow], false);
    let p = principal(&["docs"], serde_json::json!({}));
    let act = RequestActivation { args: None, request: anonymous_request() };
    let mut errors = 0;
    let (d, _) = policy.decide_other("b1", Other::Resource("file:///x"), &p, &act, &mut errors);
    assert_eq!(
        d,
        Decision::Deny { rule: Some(0), scope: None },
        "the deny rule's condition cannot be evaluated"
    );
    assert_eq!(errors, 1);
    let (d, _) = policy.decide_other("b1", Other::Resource("db://x"), &p, &act, &mut errors);
    assert_eq!(d, Decision::Allow { rule: Some(1) });
    let (d, _) = policy.decide_other("b1", Other::Prompt("any"), &p, &act, &mut errors);
    assert_eq!(d, Decision::Allow { rule: Some(1) });
    let (d, _) = policy.decide_other(
        "b1",
        Other::Prompt("any"),
        &principal(&[], serde_json::json!({})),
        &act,
        &mut errors,
    );
    assert_eq!(d, Decision::Deny { rule: None, scope: Some(vec!["docs".into()]) });
    // Tool calls are not named by resource or prompt targets.
    assert!(matches!(decide(&policy, &p, "b1", "t", "{}"), Decision::Deny { rule: None, .. }));
}

fn claim(path: &str, values: &[&str], kind: ClaimKind) -> Claim {
    Claim { path: path.into(), values: values.iter().map(|v| (*v).into()).collect(), kind }
}

#[test]
fn claim_value_types() {
    // Envoy AI Gateway's valueType: String wants a string; StringArray an array holding a value,
    // or such a string; without valueType, either (and numbers or booleans by their JSON text).
    let cases = [
        (ClaimKind::String, serde_json::json!("eng"), true),
        (ClaimKind::String, serde_json::json!(["eng"]), false),
        (ClaimKind::String, serde_json::json!(7), false),
        (ClaimKind::StringArray, serde_json::json!(["x", "eng"]), true),
        (ClaimKind::StringArray, serde_json::json!("eng"), true),
        (ClaimKind::StringArray, serde_json::json!([["eng"]]), false),
        (ClaimKind::StringArray, serde_json::json!({"eng": true}), false),
        (ClaimKind::Any, serde_json::json!(["eng"]), true),
        (ClaimKind::Any, serde_json::json!("eng"), true),
        (ClaimKind::Any, serde_json::json!("ops"), false),
    ];
    for (kind, value, allowed) in cases {
        let mut r = rule(&[], Vec::new(), true);
        r.claims = vec![claim("team", &["eng", "7"], kind)];
        let policy = Policy::new(vec![r], false);
        let p = principal(&[], serde_json::json!({ "team": value }));
        let d = decide(&policy, &p, "b", "t", "{}");
        assert_eq!(matches!(d, Decision::Allow { .. }), allowed, "{kind:?} {value}");
    }
}
