//! `servers[].authorization` -> [`Policy`]: rules checked and their CEL compiled once, every
//! error named by its path (`servers[0].authorization.rules[2].cel`).

use super::common::Errors;
use crate::config::raw;
use crate::policy::cel::{self, Program};
use crate::policy::limits::{parse_period, KeyFrom, Limit};
use crate::policy::rules::{Glob, Policy, Rule, Target};

fn condition(src: &str, path: String, errs: &mut Errors) -> Option<Program> {
    match cel::compile_with(src, &cel::Options::gateway()) {
        Ok(p) => Some(p),
        Err(e) => {
            errs.push(path, format!("invalid CEL: {e}"));
            None
        }
    }
}

/// Compiles `authorization` for a server named `server` with `backends` (a target's backend
/// must be one of them, or the server itself for its own tools, which `own_tool` names).
pub(super) fn compile(
    a: Option<&raw::Authorization>,
    (server, own_tool): (&str, &dyn Fn(&str) -> bool),
    backends: &[&str],
    path: &str,
    errs: &mut Errors,
) -> Policy {
    let Some(a) = a else { return Policy::new(Vec::new(), true) };
    let rules_in = a.rules.as_deref().unwrap_or_default();
    // Envoy AI Gateway: deny by default once there are rules; allow when there are none.
    let default_allow = match a.default_action {
        Some(raw::Action::Allow) => true,
        Some(raw::Action::Deny) => false,
        None => rules_in.is_empty(),
    };
    let mut rules = Vec::new();
    for (i, r) in rules_in.iter().enumerate() {
        let rp = format!("{path}.rules[{i}]");
        let jwt = r.source.as_ref().and_then(|s| s.jwt.as_ref());
        let scopes =
            jwt.and_then(|j| j.scopes.as_ref()).map(|s| s.iter().map(|x| x.as_str().into()).collect());
        let mut claims = Vec::new();
        for (k, c) in jwt.and_then(|j| j.claims.as_ref()).into_iter().flatten().enumerate() {
            if c.name.is_empty() || c.values.is_empty() {
                errs.push(format!("{rp}.source.jwt.claims[{k}]"), "needs a name and at least one value");
            }
            claims.push(crate::policy::rules::Claim {
                path: c.name.as_str().into(),
                values: c.values.iter().map(|v| v.as_str().into()).collect(),
                kind: match c.value_type {
                    None => crate::policy::rules::ClaimKind::Any,
                    Some(raw::ClaimValueType::String) => crate::policy::rules::ClaimKind::String,
                    Some(raw::ClaimValueType::StringArray) => crate::policy::rules::ClaimKind::StringArray,
                },
            });
        }
        let mut targets = Vec::new();
        for (k, t) in r.target.iter().flat_map(|t| &t.tools).enumerate() {
            let tp = format!("{rp}.target.tools[{k}]");
            if t.backend != server && !backends.contains(&t.backend.as_str()) {
                errs.push(
                    format!("{tp}.backend"),
                    format!("{:?} is neither a backend of this server nor the server itself", t.backend),
                );
            }
            let tool = match (&t.tool, &t.tool_name) {
                (Some(a), Some(b)) if a != b => {
                    errs.push(format!("{tp}.toolName"), "disagrees with tool (toolName is an alias)");
                    None
                }
                (Some(a), _) | (None, Some(a)) => Some(a.as_str().into()),
                (None, None) => None,
            };
            if let Some(name) = tool.as_deref().filter(|_| t.backend == server) {
                if !own_tool(name) {
                    errs.push(
                        format!("{tp}.tool"),
                        format!("server {server:?} has no tool {name:?} of its own (template or REST)"),
                    );
                }
            }
            let when = t.when.as_deref().and_then(|w| condition(w, format!("{tp}.when"), errs));
            targets.push(Target { backend: t.backend.as_str().into(), tool, when });
        }
        let known = |b: &str| b == server || backends.contains(&b);
        let mut resources = Vec::new();
        for (k, t) in r.target.iter().flat_map(|t| &t.resources).enumerate() {
            let tp = format!("{rp}.target.resources[{k}]");
            if !known(&t.backend) {
                errs.push(
                    format!("{tp}.backend"),
                    format!("{:?} is not a backend of this server", t.backend),
                );
            }
            match Glob::new(&t.uri) {
                Ok(g) if !t.uri.is_empty() => resources.push((t.backend.as_str().into(), g)),
                Ok(_) => errs.push(format!("{tp}.uri"), "must not be empty (\"*\" matches every URI)"),
                Err(e) => errs.push(format!("{tp}.uri"), format!("invalid glob: {e}")),
            }
        }
        let mut prompts = Vec::new();
        for (k, t) in r.target.iter().flat_map(|t| &t.prompts).enumerate() {
            if !known(&t.backend) {
                errs.push(
                    format!("{rp}.target.prompts[{k}].backend"),
                    format!("{:?} is not a backend of this server", t.backend),
                );
            }
            prompts.push((t.backend.as_str().into(), t.name.as_deref().map(Into::into)));
        }
        if r.target
            .as_ref()
            .is_some_and(|t| t.tools.is_empty() && t.resources.is_empty() && t.prompts.is_empty())
        {
            errs.push(
                format!("{rp}.target"),
                "must list at least one of tools, resources or prompts (omit target to match every call)",
            );
        }
        let cel = r.cel.as_deref().and_then(|c| condition(c, format!("{rp}.cel"), errs));
        rules.push(Rule {
            name: r.name.as_deref().map(Into::into),
            scopes: scopes.unwrap_or_default(),
            claims,
            targets,
            resources,
            prompts,
            cel,
            allow: r.action != Some(raw::Action::Deny),
        });
    }
    Policy::new(rules, default_allow)
}

/// Compiles `rateLimits`: each entry's key, period and budget checked, every error named by its
/// path.
pub(super) fn rate_limits(raw: Option<&[raw::RateLimit]>, path: &str, errs: &mut Errors) -> Vec<Limit> {
    let mut out = Vec::new();
    for (i, r) in raw.unwrap_or_default().iter().enumerate() {
        let rp = format!("{path}.rateLimits[{i}]");
        let key = KeyFrom::parse(&r.key).map_err(|e| errs.push(format!("{rp}.key"), e)).ok();
        let per = parse_period(&r.per).map_err(|e| errs.push(format!("{rp}.per"), e)).ok();
        if r.requests == 0 {
            errs.push(format!("{rp}.requests"), "must be at least 1");
        }
        if r.burst == Some(0) {
            errs.push(format!("{rp}.burst"), "must be at least 1");
        }
        let tools = r.matches.as_ref().map(|m| m.tools.iter().map(|t| t.as_str().into()).collect::<Vec<_>>());
        if tools.as_ref().is_some_and(Vec::is_empty) {
            errs.push(format!("{rp}.match.tools"), "must name at least one tool (omit match for every tool)");
        }
        let (Some(key), Some(per)) = (key, per) else { continue };
        out.push(Limit {
            label: r.name.as_deref().map_or_else(|| i.to_string().into(), Into::into),
            tools,
            key,
            requests: r.requests,
            per,
            burst: r.burst.unwrap_or(r.requests),
        });
    }
    out
}
