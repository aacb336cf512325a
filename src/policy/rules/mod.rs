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
    /// `source.jwt.claims[]`: every one must match.
    pub claims: Vec<Claim>,
    /// Tool targets. A rule with no target of any kind applies to every call it can judge.
    pub targets: Vec<Target>,
    /// `target.resources[]`: (backend, URI glob).
    pub resources: Vec<(Box<str>, Glob)>,
    /// `target.prompts[]`: (backend, prompt name; `None` = every prompt of the backend).
    pub prompts: Vec<(Box<str>, Option<Box<str>>)>,
    /// Rule-level condition over `request`.
    pub cel: Option<Program>,
    /// `action: allow` (the default) or `deny`.
    pub allow: bool,
}

/// One `source.jwt.claims[]` entry.
#[derive(Debug)]
pub struct Claim {
    /// Dotted path into the claims (nested objects).
    pub path: Box<str>,
    /// Accepted values; one must match.
    pub values: Vec<Box<str>>,
    /// How the claim is compared.
    pub kind: ClaimKind,
}

/// `valueType`: how a claim is compared with its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimKind {
    /// No `valueType`: a string (or number, or boolean, as its JSON text) equal to a value, or an
    /// array with a string element equal to one.
    Any,
    /// `String`: a string equal to a value (Envoy AI Gateway's default).
    String,
    /// `StringArray`: an array with a string element equal to a value, or such a string.
    StringArray,
}

impl Claim {
    fn matches(&self, claim: Option<crate::auth::claims::Claim<'_>>) -> bool {
        use crate::auth::claims::Json;
        let listed = |s: &str| self.values.iter().any(|v| **v == *s);
        let Some(claim) = claim else { return false };
        match (claim.json(), self.kind) {
            (Json::Str(s), _) => listed(s),
            (Json::Array(a), ClaimKind::Any | ClaimKind::StringArray) => {
                a.items().any(|x| x.as_str().is_some_and(listed))
            }
            // A number as JSON writes it, formatted on the stack.
            (Json::Int(_) | Json::Uint(_) | Json::Double(_), ClaimKind::Any) => {
                let mut text = [0u8; 32];
                let mut w = &mut text[..];
                match claim.number().map(|n| std::io::Write::write_fmt(&mut w, format_args!("{n}"))) {
                    Some(Ok(())) => {
                        let room = w.len();
                        std::str::from_utf8(&text[..32 - room]).is_ok_and(listed)
                    }
                    _ => false,
                }
            }
            (Json::Bool(b), ClaimKind::Any) => listed(if b { "true" } else { "false" }),
            _ => false,
        }
    }
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

/// A `target.resources[].uri` glob: `*` matches any run of characters (`/` included), `?` one
/// character; everything else is literal. Anchored at both ends.
#[derive(Debug)]
pub struct Glob {
    source: Box<str>,
    re: regex::Regex,
}

impl Glob {
    /// Compiles `glob`.
    pub fn new(glob: &str) -> Result<Glob, String> {
        let mut re = String::from("^");
        let mut lit = String::new();
        for c in glob.chars() {
            match c {
                '*' | '?' => {
                    re.push_str(&regex::escape(&lit));
                    lit.clear();
                    re.push_str(if c == '*' { "(?s:.*)" } else { "(?s:.)" });
                }
                c => lit.push(c),
            }
        }
        re.push_str(&regex::escape(&lit));
        re.push('$');
        let re = regex::Regex::new(&re).map_err(|e| e.to_string())?;
        Ok(Glob { source: glob.into(), re })
    }

    /// Whether `uri` matches.
    pub fn matches(&self, uri: &str) -> bool {
        self.re.is_match(uri)
    }

    /// Whether some URI an RFC 6570 `template` expands to could match: the literal text before
    /// the template's first expression and the glob's literal text before its first wildcard
    /// agree (one is a prefix of the other). A listing's "could pass", never a call's decision.
    pub fn could_match_template(&self, template: &str) -> bool {
        let Some(open) = template.find('{') else { return self.matches(template) };
        let t = &template[..open];
        let g = &self.source[..self.source.find(['*', '?']).unwrap_or(self.source.len())];
        t.starts_with(g) || g.starts_with(t)
    }
}

/// A call of a method other than `tools/call` that rules judge, as the backend knows it.
#[derive(Clone, Copy, Debug)]
pub enum Other<'a> {
    /// `resources/read`, `resources/subscribe`: the backend's URI.
    Resource(&'a str),
    /// A `resources/templates/list` entry (listing only): the backend's URI template.
    Template(&'a str),
    /// `prompts/get`: the backend's prompt name.
    Prompt(&'a str),
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
    /// Whether some rule targets resources (then resource reads are judged) or prompts.
    judges_resources: bool,
    judges_prompts: bool,
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
        p.judges_resources = p.rules.iter().any(|r| !r.resources.is_empty());
        p.judges_prompts = p.rules.iter().any(|r| !r.prompts.is_empty());
        for (i, r) in p.rules.iter().enumerate() {
            let i = i as u32;
            if r.untargeted() {
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
        if rule.untargeted() {
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

impl Policy {
    /// Whether rules judge `what` at all: resources when some rule targets resources, prompts
    /// when some rule targets prompts. Otherwise those methods pass unjudged, as before any
    /// rule named them.
    pub fn judges(&self, what: Other<'_>) -> bool {
        match what {
            Other::Resource(_) | Other::Template(_) => self.judges_resources,
            Other::Prompt(_) => self.judges_prompts,
        }
    }

    /// Decides a `resources/read`, `resources/subscribe` or `prompts/get` of `backend`, as
    /// [`Policy::decide`] does a tool call (first match, fail closed, the smallest missing
    /// scope set for the challenge). Allowed unjudged when [`Policy::judges`] says so.
    pub fn decide_other(
        &self,
        backend: &str,
        what: Other<'_>,
        principal: &Principal,
        activation: &dyn Activation,
        errors: &mut u64,
    ) -> (Decision, Option<usize>) {
        if !self.judges(what) {
            return (Decision::Allow { rule: None }, None);
        }
        let mut scope: Option<Vec<Box<str>>> = None;
        for (index, rule) in self.rules.iter().enumerate() {
            if !rule.names(backend, what) || !claims_match(rule, principal) {
                continue;
            }
            let cel = truth(rule.cel.as_ref(), activation);
            if cel == Truth::Error {
                *errors += 1;
            }
            // Fail closed, as for tools: an error makes a deny rule match and an allow rule miss.
            let matched = match cel {
                Truth::True => true,
                Truth::False => false,
                Truth::Error => !rule.allow,
            };
            if !matched {
                continue;
            }
            if !scopes_match(rule, principal) {
                if rule.allow && scope.as_ref().is_none_or(|s| rule.scopes.len() < s.len()) {
                    scope = Some(rule.scopes.clone());
                }
                continue;
            }
            return match rule.allow {
                true => (Decision::Allow { rule: Some(index) }, Some(index)),
                false => (Decision::Deny { rule: Some(index), scope: None }, Some(index)),
            };
        }
        match self.default_allow {
            true => (Decision::Allow { rule: None }, None),
            false => (Decision::Deny { rule: None, scope }, None),
        }
    }

    /// Whether a list shows `what` of `backend` to `principal`: some read of it could be
    /// allowed (for a URI template: of some URI it expands to).
    pub fn may_list_other(
        &self,
        backend: &str,
        what: Other<'_>,
        principal: &Principal,
        activation: &dyn Activation,
    ) -> bool {
        if !self.judges(what) {
            return true;
        }
        for rule in &self.rules {
            if !rule.names(backend, what) || !claims_match(rule, principal) || !scopes_match(rule, principal)
            {
                continue;
            }
            // A template names many URIs: a deny rule's glob may cover only some of them, so
            // it does not hide the template; an allow rule's may, so it shows it.
            let partial = matches!(what, Other::Template(_));
            match (truth(rule.cel.as_ref(), activation), rule.allow) {
                (Truth::True, allow) if !partial || allow => return allow,
                (Truth::Error, false) if !partial => return false,
                _ => {}
            }
        }
        self.default_allow
    }
}

impl Rule {
    /// No target of any kind: the rule applies to every call rules judge.
    fn untargeted(&self) -> bool {
        self.targets.is_empty() && self.resources.is_empty() && self.prompts.is_empty()
    }

    /// Whether the rule applies to `what` of `backend` (`None`: not at all).
    fn names(&self, backend: &str, what: Other<'_>) -> bool {
        if self.untargeted() {
            return true;
        }
        match what {
            Other::Resource(uri) => self.resources.iter().any(|(b, g)| **b == *backend && g.matches(uri)),
            Other::Template(t) => {
                self.resources.iter().any(|(b, g)| **b == *backend && g.could_match_template(t))
            }
            Other::Prompt(name) => {
                self.prompts.iter().any(|(b, n)| **b == *backend && n.as_deref().is_none_or(|n| n == name))
            }
        }
    }
}

fn scopes_match(rule: &Rule, p: &Principal) -> bool {
    // The principal's scopes are sorted.
    rule.scopes.iter().all(|s| p.scopes().contains(s))
}

fn claims_match(rule: &Rule, p: &Principal) -> bool {
    rule.claims.iter().all(|c| c.matches(p.claims().at_path(&c.path)))
}

#[cfg(test)]
mod tests;
