//! `servers[].authorization` compiled into a rule table (Envoy AI Gateway MCPRoute
//! semantics, BEHAVIOUR.md section 3).
//!
//! Rules keep their configuration order and the first matching rule decides; with no match the
//! `defaultAction` does (deny by default when any rule exists). A rule matches a call when its
//! source matches the principal (every listed scope granted; each listed claim, at a dotted path,
//! equal to one of its values or, for an array claim, containing one), one of its targets names
//! the call's backend and tool (and that target's `when` holds over the arguments), and its `cel`
//! holds over the request. A condition that fails to evaluate (missing field, wrong type) is
//! counted and fails closed: it makes a deny rule match and an allow rule miss.
//!
//! At load the table is indexed by backend and tool, so a call looks at the rules that can match
//! it - exact (backend, tool) targets, whole-backend targets and untargeted rules, merged back into
//! configuration order - and the cost does not grow with the number of tools or unrelated rules.

use rustc_hash::FxHashMap;

use crate::auth::Principal;
use crate::policy::cel::{Activation, Program};

/// One compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// `name`, for logs and metrics.
    pub name: Option<Box<str>>,
    /// Every scope required.
    pub scopes: Vec<Box<str>>,
    /// Claim path and accepted values.
    pub claims: Vec<(Box<str>, Vec<Box<str>>)>,
    /// Tool targets; empty = every tool.
    pub targets: Vec<Target>,
    /// Rule-level condition over `request`.
    pub cel: Option<Program>,
    /// `action: allow` (the default) or `deny`.
    pub allow: bool,
}

/// One `target.tools[]` entry.
#[derive(Debug)]
pub struct Target {
    /// Backend name, or the server's name for its own (template/REST) tools.
    pub backend: Box<str>,
    /// Tool as the backend knows it; `None` = every tool of the backend.
    pub tool: Option<Box<str>>,
    /// Condition over `args`.
    pub when: Option<Program>,
}

/// The rules naming one backend: by tool, and those for every tool of it.
type BackendRules = (FxHashMap<Box<str>, Vec<u32>>, Vec<u32>);

/// The compiled table of one server.
#[derive(Debug, Default)]
pub struct Policy {
    rules: Vec<Rule>,
    default_allow: bool,
    /// backend -> (tool -> rule indices, rule indices targeting every tool of the backend).
    by_backend: FxHashMap<Box<str>, BackendRules>,
    /// Rules without targets.
    untargeted: Vec<u32>,
}

/// What the table decided for one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed, by rule `rule` (`None`: the default action).
    Allow {
        /// Index of the deciding rule.
        rule: Option<usize>,
    },
    /// Denied, by rule `rule` (`None`: the default action).
    Deny {
        /// Index of the deciding rule.
        rule: Option<usize>,
        /// When an allow rule for this tool was missed only for scopes: the smallest such
        /// scope set (for `WWW-Authenticate: Bearer error="insufficient_scope", scope=...`).
        scope: Option<Vec<Box<str>>>,
    },
}

/// A call to decide on.
pub struct Call<'a> {
    /// The backend it routes to (the server's name for its own tools).
    pub backend: &'a str,
    /// The tool as the backend knows it.
    pub tool: &'a str,
    /// Who calls.
    pub principal: &'a Principal,
    /// `args` and `request` for conditions.
    pub activation: &'a dyn Activation,
}

/// The outcome of a condition.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Truth {
    True,
    False,
    /// Evaluation failed (counted; a deny rule matches, an allow rule misses; a `when` over
    /// arguments "could pass" for a listing).
    Error,
}

fn truth(p: Option<&Program>, act: &dyn Activation) -> Truth {
    match p.map(|p| p.matches(act)) {
        None | Some(Ok(true)) => Truth::True,
        Some(Ok(false)) => Truth::False,
        Some(Err(_)) => Truth::Error,
    }
}

impl Policy {
    /// Builds the table (`rules` in configuration order).
    pub fn new(rules: Vec<Rule>, default_allow: bool) -> Policy {
        let mut p = Policy { rules, default_allow, ..Policy::default() };
        for (i, r) in p.rules.iter().enumerate() {
            let i = i as u32;
            if r.targets.is_empty() {
                p.untargeted.push(i);
            }
            for t in &r.targets {
                let entry = p.by_backend.entry(t.backend.clone()).or_default();
                let list = match &t.tool {
                    Some(tool) => entry.0.entry(tool.clone()).or_default(),
                    None => &mut entry.1,
                };
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        p
    }

    /// Whether there are rules at all (without them and with default allow, nothing is checked).
    pub fn is_open(&self) -> bool {
        self.rules.is_empty() && self.default_allow
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The tool name as a rule target stores it, when some rule targets exactly (backend, tool)
    /// (metrics label tools by configured names only).
    pub fn target_tool(&self, backend: &str, tool: &str) -> Option<&str> {
        self.by_backend.get(backend)?.0.get_key_value(tool).map(|(k, _)| &**k)
    }

    /// The rules that can match (backend, tool), in configuration order.
    fn candidates<'s>(&'s self, backend: &str, tool: &str) -> impl Iterator<Item = (usize, &'s Rule)> + 's {
        let (exact, whole): (&[u32], &[u32]) = match self.by_backend.get(backend) {
            Some((by_tool, any)) => (by_tool.get(tool).map_or(&[][..], |v| &v[..]), &any[..]),
            None => (&[], &[]),
        };
        let lists = [exact, whole, &self.untargeted[..]];
        let mut at = [0usize; 3];
        std::iter::from_fn(move || {
            // Three sorted lists merged: the smallest head next (a rule may appear in one only).
            let (k, &i) =
                (0..3).filter_map(|k| lists[k].get(at[k]).map(|i| (k, i))).min_by_key(|&(_, i)| *i)?;
            at[k] += 1;
            Some((i as usize, &self.rules[i as usize]))
        })
    }

    fn target_truth(rule: &Rule, backend: &str, tool: &str, act: &dyn Activation, listing: bool) -> Truth {
        if rule.targets.is_empty() {
            return Truth::True;
        }
        let mut best = Truth::False;
        for t in &rule.targets {
            if *t.backend != *backend || t.tool.as_deref().is_some_and(|x| x != tool) {
                continue;
            }
            match truth(t.when.as_ref(), act) {
                Truth::True => return Truth::True,
                // Listing: a condition on arguments the listing does not have "could pass".
                Truth::Error if listing => best = Truth::Error,
                Truth::Error if best == Truth::False => best = Truth::Error,
                _ => {}
            }
        }
        best
    }

    /// Decides a call; `errors` counts conditions that failed to evaluate.
    pub fn decide(&self, call: &Call<'_>, errors: &mut u64) -> (Decision, Option<usize>) {
        let mut scope: Option<Vec<Box<str>>> = None;
        for (index, rule) in self.candidates(call.backend, call.tool) {
            if !claims_match(rule, call.principal) {
                continue;
            }
            let target = Policy::target_truth(rule, call.backend, call.tool, call.activation, false);
            let cel = match target {
                Truth::False => Truth::False,
                _ => truth(rule.cel.as_ref(), call.activation),
            };
            let failed = target == Truth::Error || cel == Truth::Error;
            if failed {
                *errors += 1;
            }
            // Fail closed: a deny rule whose condition cannot be evaluated denies (when the rest
            // of it matches: its scopes); an allow rule whose condition cannot be evaluated does
            // not allow. The arguments that make a condition fail are the caller's to choose.
            let matched = match (target, cel) {
                (Truth::False, _) | (_, Truth::False) => false,
                (Truth::True, Truth::True) => true,
                _ => !rule.allow,
            };
            if failed {
                log::debug!(
                    target: "authz",
                    "rule {} ({}) could not be evaluated for {}/{}: {}",
                    index,
                    rule.name.as_deref().unwrap_or("unnamed"),
                    call.backend,
                    call.tool,
                    if rule.allow { "does not allow" } else { "denies" }
                );
            }
            if !matched {
                continue;
            }
            if !scopes_match(rule, call.principal) {
                // Missed only for scopes: remember the smallest set that would have allowed it.
                if rule.allow && scope.as_ref().is_none_or(|s| rule.scopes.len() < s.len()) {
                    scope = Some(rule.scopes.clone());
                }
                continue;
            }
            let d = if rule.allow {
                Decision::Allow { rule: Some(index) }
            } else {
                Decision::Deny { rule: Some(index), scope: None }
            };
            return (d, Some(index));
        }
        if self.default_allow {
            (Decision::Allow { rule: None }, None)
        } else {
            (Decision::Deny { rule: None, scope }, None)
        }
    }

    /// Whether `tools/list` shows (backend, tool) to `principal`: some call to it could be
    /// allowed. `activation` is the listing request's, as a call of that tool, without `args`;
    /// a `when` that cannot be decided without them counts as "could pass" for an allow rule
    /// and "could be avoided" for a deny rule.
    pub fn may_list(
        &self,
        backend: &str,
        tool: &str,
        principal: &Principal,
        activation: &dyn Activation,
    ) -> bool {
        for (_, rule) in self.candidates(backend, tool) {
            if !claims_match(rule, principal) || !scopes_match(rule, principal) {
                continue;
            }
            // `when` is over arguments the listing does not have: an error "could pass". The
            // rule-level `cel` is over the request, which the listing has: an error is a miss,
            // as for a call - unless the `cel` reads the arguments too (Envoy AI Gateway writes
            // `request.mcp.params.arguments.text.matches(..) && request.headers[..] == ..`):
            // then an error "could pass" as for `when`, and only a `false` on what the listing
            // has (the wrong header) hides the tool.
            let target = Policy::target_truth(rule, backend, tool, activation, true);
            let cel = truth(rule.cel.as_ref(), activation);
            let undecidable = rule.allow && rule.cel.as_ref().is_some_and(Program::reads_arguments);
            let t = match (target, cel) {
                (Truth::False, _) | (_, Truth::False) => Truth::False,
                (_, Truth::Error) if undecidable => Truth::Error,
                // A request-level condition that fails denies a call under a deny rule (fail
                // closed) and allows none under an allow rule: as for a call.
                (target, Truth::Error) if !rule.allow => target,
                (_, Truth::Error) => Truth::False,
                (target, Truth::True) => target,
            };
            match (t, rule.allow) {
                (Truth::True, allow) => return allow,
                (Truth::Error, true) => return true,
                _ => {}
            }
        }
        self.default_allow
    }
}

fn scopes_match(rule: &Rule, p: &Principal) -> bool {
    // The principal's scopes are sorted.
    rule.scopes.iter().all(|s| p.scopes.binary_search(s).is_ok())
}

fn claims_match(rule: &Rule, p: &Principal) -> bool {
    rule.claims.iter().all(|(path, values)| match crate::auth::jwt::claim_at(&p.claims, path) {
        Some(serde_json::Value::String(s)) => values.iter().any(|v| **v == **s),
        Some(serde_json::Value::Array(a)) => {
            a.iter().any(|x| x.as_str().is_some_and(|x| values.iter().any(|v| &**v == x)))
        }
        Some(serde_json::Value::Number(n)) => values.iter().any(|v| **v == *n.to_string()),
        Some(serde_json::Value::Bool(b)) => values.iter().any(|v| **v == *b.to_string()),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::auth::PrincipalKind;
    use crate::mcp::json::Decoder;
    use crate::policy::cel::{self, Auth, Jwt, Mcp, Request, RequestActivation};

    fn program(src: &str) -> Program {
        cel::compile_with(src, &cel::Options::gateway()).unwrap()
    }

    fn principal(scopes: &[&str], claims: serde_json::Value) -> Principal {
        let mut p = Principal::user(PrincipalKind::Jwt, "alice");
        p.scopes = scopes.iter().map(|s| Box::from(*s)).collect();
        p.scopes.sort();
        p.claims = claims.as_object().cloned().unwrap_or_default();
        p
    }

    fn rule(scopes: &[&str], targets: Vec<Target>, allow: bool) -> Rule {
        Rule {
            name: None,
            scopes: scopes.iter().map(|s| Box::from(*s)).collect(),
            claims: Vec::new(),
            targets,
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
                    host: "gw",
                    path: "/mcp",
                    headers: None,
                    auth: Auth { jwt: Some(Jwt { claims: &p.claims, scopes: &p.scopes }), ..Auth::default() },
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
                host: "gw",
                path: "/mcp",
                headers: None,
                auth: Auth { jwt: Some(Jwt { claims: &p.claims, scopes: &p.scopes }), ..Auth::default() },
                mcp: Mcp {
                    method: Some("tools/list"),
                    backend: None,
                    tool: None,
                    params: Default::default(),
                },
            },
        };
        policy.may_list(backend, tool, p, &act)
    }

    /// A POST to /mcp with no headers, no principal and no MCP fields.
    fn anonymous_request() -> Request<'static> {
        Request {
            method: "POST",
            host: "gw",
            path: "/mcp",
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
            vec![("org.id".into(), vec!["acme".into()]), ("groups".into(), vec!["ops".into(), "dev".into()])];
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
        r.claims = vec![("org.id".into(), vec!["acme".into()])];
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
            let (d, _) = policy
                .decide(&Call { backend: "b1", tool: "t", principal: &p, activation: &act }, &mut errors);
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
        assert_eq!(
            decide(&policy, &p, "pay", "transfer", r#"{"amount":5}"#),
            Decision::Allow { rule: Some(1) }
        );
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
}
