//! `compile_str` against the configuration contract (docs/config.md), with an injected environment: every error names
//! its path, every error of a file is reported at once, secrets never reach the admin dump, and the
//! features this build does not implement are refused rather than silently ignored.

use super::*;

use crate::config::redact::REDACTED;
use crate::config::DEMO;
use serde_json::json;
use std::net::SocketAddr;

fn no_env(_: &str) -> Option<String> {
    None
}

/// An environment holding exactly `pairs`.
fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
}

fn load(text: &str) -> Snapshot {
    compile_str(text, &no_env).unwrap_or_else(|e| panic!("config should load, got {e:#?}\n{text}"))
}

fn errors_with(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    match compile_str(text, lookup) {
        Ok(s) => panic!("config should not load, got {s:?}\n{text}"),
        Err(e) => e,
    }
}

fn errors(text: &str) -> Vec<String> {
    errors_with(text, &no_env)
}

/// Asserts that one error is exactly at `path` (the error starts with `path: `) and mentions `needle`.
#[track_caller]
fn assert_error(errs: &[String], path: &str, needle: &str) {
    let prefix = format!("{path}: ");
    assert!(
        errs.iter().any(|e| e.starts_with(&prefix) && e.contains(needle)),
        "no error at {path:?} mentioning {needle:?} in {errs:#?}"
    );
}

/// The smallest valid server list, for configs that test something else.
const ONE_SERVER: &str = "servers: [{name: a, tools: [{name: t, responseTemplate: {body: x}}]}]";

// ---- the embedded demo ---------------------------------------------------------------------

#[test]
fn demo_compiles() {
    let snap = load(DEMO);
    assert_eq!(snap.listen, vec!["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]);
    assert_eq!(snap.admin, Some("127.0.0.1:9901".parse().unwrap()));
    assert_eq!(snap.servers.len(), 1);
    let srv = &snap.servers[0];
    assert_eq!(&*srv.name, "demo");
    assert_eq!(&*srv.path, "/mcp");
    assert!(srv.anonymous, "the demo has no authentication");
    assert_eq!(srv.tools.len(), 3);
    let names: Vec<&str> = srv.tools.iter().map(|t| &*t.name).collect();
    assert_eq!(names, ["hello", "echo", "motd"]);
    for (i, t) in srv.tools.iter().enumerate() {
        assert_eq!(srv.tool_index.get(&t.name), Some(&i));
        let listing: serde_json::Value = serde_json::from_slice(&t.listing).unwrap();
        assert_eq!(listing["name"], json!(&*t.name));
        assert!(listing["description"].as_str().is_some_and(|d| !d.is_empty()));
        assert_eq!(listing["inputSchema"]["type"], json!("object"));
    }
    assert_eq!(required(&srv.tools[0]), ["who"]);
    assert!(required(&srv.tools[2]).is_empty());
    assert_eq!(srv.config, json!({"motd": "Welcome to portcullis."}));
    assert!(snap.route(b"/mcp").is_some_and(|s| &*s.name == "demo"));
    assert!(snap.route(b"/mcp/demo").is_none());
    // Loopback only: no anonymous-endpoint warning, only the ephemeral session key one.
    assert!(!snap.warnings.iter().any(|w| w.contains("anonymous")), "{:?}", snap.warnings);
    assert!(snap.sessions.ephemeral);
}

// ---- unknown keys name their path --------------------------------------------------------

#[test]
fn unknown_top_level_key() {
    let errs = errors(&format!("bogusTopLevel: 1\n{ONE_SERVER}"));
    assert_error(&errs, "bogusTopLevel", "unknown field");
}

#[test]
fn unknown_key_in_server() {
    let errs = errors("servers: [{name: a, colour: red, tools: [{name: t, responseTemplate: {body: x}}]}]");
    assert_error(&errs, "servers[0].colour", "unknown field");
}

#[test]
fn unknown_key_in_tool() {
    let errs = errors(
        r#"
servers:
  - name: a
    tools:
      - {name: t, responseTemplate: {body: x}}
      - {name: u, flavour: sweet, responseTemplate: {body: y}}
"#,
    );
    assert_error(&errs, "servers[0].tools[1].flavour", "unknown field");
    assert_eq!(errs.len(), 1, "{errs:#?}");
}

#[test]
fn unknown_keys_deeper_in_a_tool() {
    let errs = errors(
        r#"
servers:
  - name: a
    tools:
      - name: t
        args: [{name: x, colour: red}]
        responseTemplate: {body: x, footer: y}
"#,
    );
    assert_error(&errs, "servers[0].tools[0].args[0].colour", "unknown field");
}

#[test]
fn unknown_key_in_limits() {
    let errs = errors(&format!("limits: {{maxHeaders: 10, maxBananas: 3}}\n{ONE_SERVER}"));
    assert_error(&errs, "limits.maxBananas", "unknown field");
}

#[test]
fn unknown_keys_in_other_blocks() {
    let errs = errors(
        r#"
sessions: {keys: [{id: k1, secret: "0123456789abcdef0123456789abcdef", algo: x}]}
servers:
  - name: a
    authentication: {mode: none, realm: x}
    server: {name: s, colour: red}
  - name: b
    server:
      securitySchemes: [{id: s, type: http, scheme: bearer, flavour: x}]
"#,
    );
    assert_error(&errs, "sessions.keys[0].algo", "unknown field");
    assert_error(&errs, "servers[0].authentication.realm", "unknown field");
    assert_error(&errs, "servers[0].server.colour", "unknown field");
    assert_error(&errs, "servers[1].server.securitySchemes[0].flavour", "unknown field");
}

#[test]
fn unknown_keys_inside_server_config_are_free_form() {
    let snap = load(
        r#"
servers:
  - name: a
    server:
      config: {anything: {goes: [1, two, {three: true}]}, "odd key": null}
    tools: [{name: t, responseTemplate: {body: "{{.config.anything}}"}}]
"#,
    );
    assert_eq!(
        snap.servers[0].config,
        json!({"anything": {"goes": [1, "two", {"three": true}]}, "odd key": null})
    );
}

/// docs/config.md: "Unknown keys are errors (with the path)". An unknown key inside a `listen` entry
/// must be reported at `listen[0].<key>`, not as an opaque "did not match any variant".
#[test]
fn unknown_key_in_listen_entry_names_its_path() {
    let errs = errors(&format!("listen: [{{address: '127.0.0.1:8080', backlog: 5}}]\n{ONE_SERVER}"));
    assert!(
        errs.iter().any(|e| e.starts_with("listen[0]") && e.contains("backlog")),
        "no error naming listen[0] and the unknown key in {errs:#?}"
    );
}

// ---- every error at once ------------------------------------------------------------------

#[test]
fn independent_errors_are_all_reported() {
    let errs = errors(
        r#"
mystery: 1
limits: {maxHeaders: 513, maxBodyBytes: 0}
sessions: {keys: [{id: k1, secret: too-short}]}
servers:
  - name: a
    server: {config: {token: "${MISSING_TOKEN}"}}
    tools:
      - {name: ok, responseTemplate: {body: fine}}
      - {name: broken, responseTemplate: {body: "{{.args.x"}}
      - {name: extra, surprise: 1, responseTemplate: {body: y}}
  - name: b
    unknownServerKey: 1
  - name: c
    allowTools: [nope]
"#,
    );
    assert_error(&errs, "mystery", "unknown field");
    assert_error(&errs, "limits.maxHeaders", "512");
    assert_error(&errs, "limits.maxBodyBytes", "between");
    assert_error(&errs, "sessions.keys[0].secret", "32 bytes");
    assert_error(&errs, "servers[0].server.config.token", "MISSING_TOKEN");
    assert_error(&errs, "servers[0].tools[1].responseTemplate.body", "unclosed");
    assert_error(&errs, "servers[0].tools[2].surprise", "unknown field");
    assert_error(&errs, "servers[1].unknownServerKey", "unknown field");
    assert_error(&errs, "servers[2].allowTools[0]", "nope");
    assert_eq!(errs.len(), 9, "exactly one error per problem: {errs:#?}");
}

#[test]
fn yaml_syntax_error_is_one_error() {
    let errs = errors("servers: [{name: a");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].contains("not valid YAML"), "{errs:?}");
}

#[test]
fn json_is_accepted() {
    let snap =
        load(r#"{"servers": [{"name": "j", "tools": [{"name": "t", "responseTemplate": {"body": "x"}}]}]}"#);
    assert_eq!(&*snap.servers[0].path, "/mcp/j");
}

#[test]
fn at_least_one_server() {
    assert_error(&errors("servers: []"), "servers", "at least one");
    assert_error(&errors("listen: 127.0.0.1:8080"), "servers", "at least one");
}

// ---- environment substitution ------------------------------------------------------------

#[test]
fn missing_env_var_names_path_and_variable() {
    let errs = errors(
        r#"
servers:
  - name: a
    server: {config: {apiKey: "${WEATHER_KEY}"}}
    tools: [{name: t, responseTemplate: {body: x}}]
"#,
    );
    assert_error(&errs, "servers[0].server.config.apiKey", "WEATHER_KEY");
}

#[test]
fn env_default_and_present_values() {
    let env = env_of(&[("PRESENT", "from-env"), ("PORT", "9090"), ("NESTED", "${PRESENT}")]);
    let snap = compile_str(
        r#"
listen: "127.0.0.1:${PORT}"
servers:
  - name: a
    instructions: "${PRESENT}/${ABSENT:-fallback}"
    server:
      config:
        present: "${PRESENT}"
        defaulted: "${ABSENT:-the-default}"
        present_over_default: "${PRESENT:-unused}"
        mixed: "pre-${PRESENT}-post"
        list: ["${PRESENT}", "${ABSENT:-}"]
        notReexpanded: "${NESTED}"
    tools: [{name: t, responseTemplate: {body: "{{.config.present}}"}}]
"#,
        &env,
    )
    .unwrap();
    assert_eq!(snap.listen, vec!["127.0.0.1:9090".parse::<SocketAddr>().unwrap()]);
    let srv = &snap.servers[0];
    assert_eq!(srv.instructions.as_deref(), Some("from-env/fallback"));
    assert_eq!(
        srv.config,
        json!({
            "present": "from-env",
            "defaulted": "the-default",
            "present_over_default": "from-env",
            "mixed": "pre-from-env-post",
            "list": ["from-env", ""],
            "notReexpanded": "${PRESENT}",
        })
    );
}

#[test]
fn malformed_variable_references() {
    let errs = errors(
        r#"
servers:
  - name: a
    instructions: "${UNTERMINATED"
    server: {config: {bad: "${NOT-A-NAME}", empty: "${}"}}
"#,
    );
    assert_error(&errs, "servers[0].instructions", "unterminated");
    assert_error(&errs, "servers[0].server.config.bad", "invalid environment variable name");
    assert_error(&errs, "servers[0].server.config.empty", "invalid environment variable name");
}

#[test]
fn missing_env_var_in_a_list_and_session_secret() {
    let errs = errors(
        r#"
listen: ["127.0.0.1:8080", "${SECOND_LISTEN}"]
sessions: {keys: [{id: k1, secret: "${SESSION_KEY}"}]}
servers: [{name: a, tools: [{name: t, responseTemplate: {body: x}}]}]
"#,
    );
    assert_error(&errs, "listen[1]", "SECOND_LISTEN");
    assert_error(&errs, "sessions.keys[0].secret", "SESSION_KEY");
}

// ---- authentication and the features this build refuses -----------------------------------

#[test]
fn proxy_mode_requires_trusted_sources() {
    for auth in [
        "{mode: proxy}",
        "{mode: proxy, proxy: {userHeader: X-User}}",
        "{mode: proxy, proxy: {trustedSources: []}}",
    ] {
        let errs = errors(&format!(
            "servers: [{{name: a, authentication: {auth}, tools: [{{name: t, responseTemplate: {{body: x}}}}]}}]"
        ));
        assert_error(&errs, "servers[0].authentication.proxy.trustedSources", "required");
    }
}

/// A JWKS file with one HMAC key, in a temporary folder named after `tag`.
fn jwks_file(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks = dir.join("jwks.json");
    std::fs::write(
        &jwks,
        r#"{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0"}]}"#,
    )
    .unwrap();
    jwks
}

#[test]
fn authentication_modes_compile() {
    let jwks = jwks_file("jwks");
    let snap = load(&format!(
        r#"
servers:
  - name: j
    resource: https://gw.example.com/mcp/j
    authentication:
      mode: jwt
      jwt: {{providers: [{{name: corp, issuer: "https://idp.example.com", jwks: {{file: "{}"}}, claimToHeaders: [{{claim: sub, header: X-User}}]}}]}}
      protectedResource: {{authorizationServers: ["https://idp.example.com"], scopesSupported: [a, b]}}
  - name: k
    authentication: {{mode: apiKey, apiKey: {{in: header, name: X-Api-Key, keys: [{{id: ci, value: v-123456789}}]}}}}
  - name: b
    authentication: {{mode: basic, basic: {{users: [{{name: alice, password: pw}}]}}}}
  - name: p
    authentication: {{mode: proxy, proxy: {{trustedSources: [127.0.0.1/32, "::1"]}}}}
"#,
        jwks.display()
    ));
    assert!(snap.servers.iter().all(|s| !s.anonymous));
    let j = &snap.servers[0].auth;
    assert_eq!(
        j.providers()[0].audiences,
        vec![Box::<str>::from("https://gw.example.com/mcp/j")],
        "default audience"
    );
    assert!(j.strips(b"X-User"), "a claim header is never taken from the client");
    let prm = j.prm.as_ref().unwrap();
    assert_eq!(prm.url.as_deref(), Some("https://gw.example.com/.well-known/oauth-protected-resource/mcp/j"));
    assert!(snap.metadata(b"/.well-known/oauth-protected-resource/mcp/j").is_some());
    assert!(snap.metadata(b"/.well-known/oauth-protected-resource").is_none(), "root only with one server");
    assert!(snap.servers[3].auth.strips(b"x-authenticated-user"));
    assert!(snap.servers[1].auth.strips(b"x-api-key"), "the client's API key never reaches a backend");
    assert!(snap.key_sources().is_empty(), "file keys are not fetched");
}

#[test]
fn token_passthrough_is_a_loud_choice() {
    let jwks = jwks_file("passthrough");
    let auth = format!(
        r#"{{mode: jwt, jwt: {{providers: [{{name: corp, issuer: "https://idp.example.com", jwks: {{file: "{}"}}}}]}}}}"#,
        jwks.display()
    );
    let snap = load(&format!(
        r#"
servers:
  - name: j
    resource: https://gw.example.com/mcp/j
    authentication: {auth}
    server:
      securitySchemes: [{{id: cb, type: http, scheme: bearer}}, {{id: key, type: apiKey, in: header, name: X-Key, defaultCredential: k-1234}}]
    tools:
      - {{name: relay, security: {{id: cb, passthrough: true}}, requestTemplate: {{url: "http://127.0.0.1:9/a"}}}}
      - {{name: keyed, requestTemplate: {{url: "http://127.0.0.1:9/b", security: {{id: key}}}}}}
  - name: h
    resource: https://gw.example.com/mcp/h
    authentication: {auth}
    server: {{passthroughAuthHeader: true}}
    tools:
      - {{name: whole, requestTemplate: {{url: "http://127.0.0.1:9/c"}}}}
  - name: open
    server: {{passthroughAuthHeader: true}}
    tools:
      - {{name: anon, requestTemplate: {{url: "http://127.0.0.1:9/d"}}}}
  - name: pw
    authentication: {{mode: basic, basic: {{users: [{{name: alice, password: pw}}]}}}}
    server: {{passthroughAuthHeader: true}}
    tools:
      - {{name: basic, requestTemplate: {{url: "http://127.0.0.1:9/e"}}}}
"#
    ));
    let passthrough: Vec<&String> =
        snap.warnings.iter().filter(|w| w.contains("token passthrough")).collect();
    assert_eq!(passthrough.len(), 3, "{:?}", snap.warnings);
    assert!(passthrough[0].contains("servers[j] tool relay"), "{passthrough:?}");
    assert!(passthrough[1].contains("servers[h] tool whole"), "{passthrough:?}");
    assert!(passthrough[2].contains("servers[pw] tool basic"), "{passthrough:?}");
}

#[test]
fn authentication_errors_name_their_paths() {
    let errs = errors(
        r#"
servers:
  - name: j
    authentication:
      mode: jwt
      jwt: {providers: [{name: corp, issuer: "https://idp.example.com", algorithms: [none, RS256], jwks: {uri: "http://10.1.2.3/jwks.json"}, claimToHeaders: [{claim: sub, header: Host}]}]}
  - name: k
    authentication: {mode: apiKey, apiKey: {in: header, name: X-Api-Key, keys: [{id: ci, value: short}]}}
  - name: b
    authentication: {mode: basic, basic: {users: [{name: "al:ice", password: pw}]}}
  - name: p
    authentication: {mode: proxy, proxy: {trustedSources: [10.0.0.1/8]}}
  - name: q
    authentication: {mode: proxy, proxy: {userHeader: X-User}}
  - name: m
    authentication: {mode: mtls}
  - name: n
    authentication: {mode: jwt}
"#,
    );
    assert_error(&errs, "servers[0].authentication.jwt.providers[0].audiences", "required");
    assert_error(&errs, "servers[0].authentication.jwt.providers[0].algorithms[0]", "never none");
    assert_error(&errs, "servers[0].authentication.jwt.providers[0].jwks.uri", "https");
    assert_error(
        &errs,
        "servers[0].authentication.jwt.providers[0].claimToHeaders[0].header",
        "cannot carry",
    );
    assert_error(&errs, "servers[1].authentication.apiKey.keys[0].value", "at least 8");
    assert_error(&errs, "servers[2].authentication.basic.users[0].name", "without ':'");
    assert_error(&errs, "servers[3].authentication.proxy.trustedSources[0]", "host bits");
    assert_error(&errs, "servers[4].authentication.proxy.trustedSources", "required");
    assert_error(&errs, "servers[5].authentication.mtls", "caFile");
    assert_error(&errs, "servers[6].authentication.jwt", "required");
}

#[test]
fn mode_none_is_anonymous_and_loads() {
    let snap = load(
        "servers: [{name: a, authentication: {mode: none}, tools: [{name: t, responseTemplate: {body: x}}]}]",
    );
    assert!(snap.servers[0].anonymous);
}

#[test]
fn unknown_authentication_mode() {
    let errs = errors("servers: [{name: a, authentication: {mode: kerberos}}]");
    assert_error(&errs, "servers[0].authentication.mode", "unknown variant");
}

#[test]
fn authorization_compiles() {
    let snap = load(
        r#"
servers:
  - name: a
    authorization:
      defaultAction: deny
      rules:
        - source: {jwt: {scopes: [echo], claims: [{name: org.id, values: [acme]}]}}
          target: {tools: [{backend: a, tool: t, when: 'args.text.matches("^Hello")'}]}
          cel: 'request.headers["x-tenant"] == "t-1"'
          action: allow
        - target: {tools: [{backend: a, toolName: u}]}
          action: deny
    tools: [{name: t, responseTemplate: {body: x}}, {name: u, responseTemplate: {body: y}}]
"#,
    );
    let policy = &snap.servers[0].policy;
    assert_eq!(policy.rules().len(), 2);
    assert!(!policy.is_open());
    assert!(!policy.rules()[1].allow);
}

/// docs/config.md: `defaultAction: deny` with no rules denies every tool call.
#[test]
fn authorization_default_deny_without_rules_is_enforced() {
    let snap = load("servers: [{name: a, authorization: {defaultAction: deny}, tools: [{name: t, responseTemplate: {body: x}}]}]");
    assert!(!snap.servers[0].policy.is_open());
    let open =
        load("servers: [{name: a, authorization: {}, tools: [{name: t, responseTemplate: {body: x}}]}]");
    assert!(open.servers[0].policy.is_open(), "no rules and no defaultAction: allow");
}

#[test]
fn authorization_errors_name_their_paths() {
    let errs = errors(
        r#"
servers:
  - name: a
    authorization:
      rules:
        - target: {tools: [{backend: nope, tool: t}]}
        - target: {tools: [{backend: a, tool: t, when: 'args.x.matches(args.y)'}]}
        - cel: 'request.headers["x"] =='
        - target: {tools: [{backend: a, tool: t, toolName: u}]}
    tools: [{name: t, responseTemplate: {body: x}}]
"#,
    );
    assert_error(&errs, "servers[0].authorization.rules[0].target.tools[0].backend", "neither a backend");
    assert_error(&errs, "servers[0].authorization.rules[1].target.tools[0].when", "invalid CEL");
    assert_error(&errs, "servers[0].authorization.rules[2].cel", "invalid CEL");
    assert_error(&errs, "servers[0].authorization.rules[3].target.tools[0].toolName", "alias");
}

#[test]
fn backends_compile() {
    let snap = load(
        r#"
servers:
  - name: a
    toolNameSeparator: "."
    backends:
      - name: b1
        url: http://127.0.0.1:9001/mcp
        toolSelector: {include: [echo]}
      - name: b2
        url: http://unused.invalid/
        endpoints: [http://127.0.0.1:9002/mcp, http://127.0.0.1:9003/mcp]
"#,
    );
    let s = &snap.servers[0];
    assert_eq!(s.backends.len(), 2);
    assert_eq!(s.backends[0].targets[0].addr.port(), 9001);
    assert_eq!(s.backends[1].targets.len(), 2, "endpoints replace url");
    assert!(s.backends[0].selector.selects("echo") && !s.backends[0].selector.selects("sum"));
    assert_eq!(&*s.separator, ".");
    assert!(s.prefixed(), "two backends: names are prefixed");
}

#[test]
fn backend_blocks_are_validated_with_paths() {
    let errs = errors(
        r#"
servers:
  - name: a
    server:
      securitySchemes:
        - {id: noCred, type: http, scheme: bearer}
    backends:
      - name: b1
        url: ftp://127.0.0.1:9001/mcp
      - name: b2
        url: http://127.0.0.1:9002/mcp
        toolSelector: {includeRegex: ["(unclosed"]}
        security: {id: missing}
      - name: b3
        url: http://127.0.0.1:9003/mcp
        security: {id: noCred}
        forwardHeaders: [{name: Authorization}]
      - name: b3
        url: http://127.0.0.1:9004/mcp
      - name: b5
        url: https://127.0.0.1:9005/mcp
        caFile: /nonexistent/ca.pem
      - name: b6
        url: http://127.0.0.1:9006/mcp
        caFile: /nonexistent/ca.pem
"#,
    );
    assert_error(&errs, "servers[0].backends[0].url", "http:// or https://");
    assert_error(&errs, "servers[0].backends[4].caFile", "cannot read");
    assert_error(&errs, "servers[0].backends[5].caFile", "only meaningful for https://");
    assert_error(&errs, "servers[0].backends[1].toolSelector.includeRegex[0]", "invalid regex");
    assert_error(&errs, "servers[0].backends[1].security.id", "no securitySchemes entry");
    assert_error(&errs, "servers[0].backends[2].security", "no defaultCredential");
    assert_error(&errs, "servers[0].backends[2].forwardHeaders[0].name", "cannot be forwarded");
    assert_error(&errs, "servers[0].backends[3].name", "duplicate backend name");
}

#[test]
fn tool_selector_semantics() {
    use crate::config::snapshot::ToolSelector;
    let re = |p: &str| regex::Regex::new(p).unwrap();
    let s = ToolSelector {
        include: vec!["echo".into()],
        include_regex: vec![re("^get_")],
        exclude: vec!["get_secret".into()],
        exclude_regex: vec![re("_admin$")],
    };
    assert!(s.selects("echo"));
    assert!(s.selects("get_weather"));
    assert!(!s.selects("get_secret"), "exclude wins");
    assert!(!s.selects("get_admin"), "excludeRegex wins");
    assert!(!s.selects("sum"), "not included");
    assert!(!s.selects("xget_weather"), "anchored where the pattern says so");
    assert!(ToolSelector::default().selects("anything"));
    // Unanchored where it does not (Envoy AI Gateway's includeRegex: ["^ec"] selects echo, and
    // "ec" selects it too).
    let snap = load(
        r#"
servers:
  - name: a
    backends:
      - { name: b1, url: "http://127.0.0.1:9/mcp", toolSelector: { includeRegex: ["^ec"] } }
      - { name: b2, url: "http://127.0.0.1:9/mcp", toolSelector: { includeRegex: ["ch"], excludeRegex: ["min"] } }
"#,
    );
    let (b1, b2) = (&snap.servers[0].backends[0].selector, &snap.servers[0].backends[1].selector);
    assert!(b1.selects("echo") && !b1.selects("becho"));
    assert!(b2.selects("echo") && b2.selects("search") && !b2.selects("admin_search"));
}

#[test]
fn rest_tools_compile_with_their_errors_at_exact_paths() {
    // A loadable REST tool: a host that resolves (loopback) and one that may not (a warning,
    // never an error: a Higress config copied in must load even where DNS is unavailable).
    let snap = load(
        r#"
servers:
  - name: a
    server:
      name: s
      securitySchemes: [{id: k, type: apiKey, in: query, name: key, defaultCredential: sekret}]
      defaultUpstreamSecurity: {id: k}
    tools:
      - name: local
        args: [{name: id, position: path, required: true}, {name: q, position: query}]
        requestTemplate: {url: "http://127.0.0.1:9/items/{id}?v=1", method: get}
      - name: remote
        requestTemplate: {url: "https://api.invalid/v1/forecast?city={{.args.city}}"}
"#,
    );
    let tools = &snap.servers[0].tools;
    let crate::config::snapshot::ToolKind::Rest(rt) = &tools[0].kind else { panic!("a REST tool") };
    assert_eq!(&*rt.method, "GET");
    assert!(rt.target.is_ok());
    assert!(rt.upstream.as_ref().is_some_and(|u| u.configured.is_some()), "server default upstream scheme");
    assert!(!format!("{rt:?}").contains("sekret"), "Debug redacts the credential");
    let crate::config::snapshot::ToolKind::Rest(remote) = &tools[1].kind else { panic!("a REST tool") };
    if remote.target.is_err() {
        assert!(snap.warnings.iter().any(|w| w.starts_with("servers[0].tools[1].requestTemplate.url: ")));
    }

    let errs = errors(
        r#"
servers:
  - name: a
    server:
      securitySchemes: [{id: b, type: http, scheme: bearer}]
      defaultDownstreamSecurity: {id: nope}
    tools:
      - name: t0
        requestTemplate: {url: "http://127.0.0.1:9/x"}
      - name: t1
        requestTemplate: {url: "ftp://h/x"}
      - name: t2
        requestTemplate: {url: "http://127.0.0.1:9/a b", method: "GE T"}
      - name: t3
        requestTemplate:
          url: http://127.0.0.1:9/x
          headers: [{key: Host, value: evil}, {key: "bad name", value: x}, {key: X-Ok, value: "{{if}}"}]
          argsToJsonBody: true
          argsToFormBody: true
      - name: t4
        requestTemplate: {url: http://127.0.0.1:9/x, security: {id: missing}}
        responseTemplate: {body: x, prependBody: y}
        outputSchema: {type: array}
        args: [{name: content-length, position: header}]
"#,
    );
    assert_error(&errs, "servers[0].server.defaultDownstreamSecurity.id", "no securitySchemes entry");
    assert_error(&errs, "servers[0].tools[1].requestTemplate.url", "http:// or https://");
    assert_error(&errs, "servers[0].tools[2].requestTemplate.url", "percent-encoded");
    assert_error(&errs, "servers[0].tools[2].requestTemplate.method", "not an HTTP method");
    assert_error(&errs, "servers[0].tools[3].requestTemplate.headers[0].key", "set by the gateway");
    assert_error(&errs, "servers[0].tools[3].requestTemplate.headers[1].key", "not a valid header name");
    assert_error(&errs, "servers[0].tools[3].requestTemplate.headers[2].value", "");
    assert_error(&errs, "servers[0].tools[3].requestTemplate", "only one of argsToJsonBody");
    assert_error(&errs, "servers[0].tools[4].requestTemplate.security.id", "no securitySchemes entry");
    assert_error(&errs, "servers[0].tools[4].responseTemplate", "cannot be used together with body");
    assert_error(&errs, "servers[0].tools[4].outputSchema", "type: object");
    assert_error(&errs, "servers[0].tools[4].args[0].name", "set by the gateway");
}

#[test]
fn tls_listener_files_must_exist() {
    let errs = errors(&format!(
        "listen: [{{address: '127.0.0.1:8443', tls: {{cert: /nonexistent/c.pem, key: k.pem}}}}]\n{ONE_SERVER}"
    ));
    assert_error(&errs, "listen[0].tls", "cannot read");
}

#[test]
fn anonymous_server_beyond_loopback_warns() {
    let snap = load(&format!("listen: ['127.0.0.1:8080', '0.0.0.0:8081']\n{ONE_SERVER}"));
    assert!(
        snap.warnings.iter().any(|w| w.contains("anonymous") && w.contains("\"a\"")),
        "{:?}",
        snap.warnings
    );
    let snap = load(&format!("listen: ['127.0.0.1:8080', '[::1]:8081']\n{ONE_SERVER}"));
    assert!(!snap.warnings.iter().any(|w| w.contains("anonymous")), "{:?}", snap.warnings);
}

// ---- servers -------------------------------------------------------------------------------

#[test]
fn default_path_is_mcp_slash_name() {
    let snap = load(
        r#"
servers:
  - {name: weather, tools: [{name: t, responseTemplate: {body: x}}]}
  - {name: Other_2-x, path: /custom}
"#,
    );
    assert_eq!(&*snap.servers[0].path, "/mcp/weather");
    assert_eq!(&*snap.servers[1].path, "/custom");
    assert!(snap.route(b"/mcp/weather").is_some_and(|s| &*s.name == "weather"));
    assert!(snap.route(b"/custom").is_some_and(|s| &*s.name == "Other_2-x"));
    assert_eq!(snap.routes.len(), 2);
}

#[test]
fn duplicate_server_names() {
    let errs = errors("servers: [{name: a, path: /one}, {name: a, path: /two}]");
    assert_error(&errs, "servers[1].name", "duplicate");
}

#[test]
fn duplicate_server_paths() {
    let errs = errors("servers: [{name: a, path: /x}, {name: b, path: /x}]");
    assert_error(&errs, "servers[1].path", "/x");
    // An explicit path may collide with another server's default path too.
    let errs = errors("servers: [{name: b}, {name: c, path: /mcp/b}]");
    assert_error(&errs, "servers[1].path", "/mcp/b");
}

#[test]
fn invalid_server_names() {
    for name in ["'has space'", "'slash/name'", "'dot.name'", "''", "'caf\u{e9}'", "'semi;colon'"] {
        let errs = errors(&format!("servers: [{{name: {name}, path: /p}}]"));
        assert_error(&errs, "servers[0].name", "[A-Za-z0-9_-]");
    }
    let long = "n".repeat(129);
    assert_error(&errors(&format!("servers: [{{name: {long}, path: /p}}]")), "servers[0].name", "1-128");
    let ok = "n".repeat(128);
    load(&format!("servers: [{{name: {ok}}}]"));
}

#[test]
fn invalid_server_path_and_resource() {
    for path in ["relative", "'/with?query'", "'/with#frag'", "'/with space'"] {
        let errs = errors(&format!("servers: [{{name: a, path: {path}}}]"));
        assert_error(&errs, "servers[0].path", "absolute path");
    }
    assert_error(&errors("servers: [{name: a, resource: 'ftp://x'}]"), "servers[0].resource", "http");
    let snap = load("servers: [{name: a, resource: 'https://gw.example.com/mcp/a'}]");
    assert_eq!(snap.servers[0].resource.as_deref(), Some("https://gw.example.com/mcp/a"));
}

#[test]
fn tool_names_and_duplicates() {
    let errs = errors(
        r#"
servers:
  - name: a
    tools:
      - {name: "bad tool", responseTemplate: {body: x}}
      - {name: t, responseTemplate: {body: x}}
      - {name: t, responseTemplate: {body: y}}
      - {name: "", responseTemplate: {body: z}}
"#,
    );
    assert_error(&errs, "servers[0].tools[0].name", "[A-Za-z0-9_./-]");
    assert_error(&errs, "servers[0].tools[2].name", "duplicate");
    assert_error(&errs, "servers[0].tools[3].name", "1-128");
}

#[test]
fn a_slash_in_a_tool_name_loads_with_a_warning() {
    let snap = load(
        r#"
servers:
  - name: a
    tools:
      - {name: "repos/get", responseTemplate: {body: x}}
      - {name: "repos.get_x-1", responseTemplate: {body: x}}
"#,
    );
    let slash: Vec<_> = snap.warnings.iter().filter(|w| w.contains("contains '/'")).collect();
    assert_eq!(slash.len(), 1, "{:?}", snap.warnings);
    assert!(slash[0].contains("servers[0].tools[0].name"), "{slash:?}");
}

#[test]
fn tool_without_url_or_body() {
    for tool in [
        "{name: t}",
        "{name: t, responseTemplate: {prependBody: x}}",
        "{name: t, requestTemplate: {method: GET}}",
    ] {
        let errs = errors(&format!("servers: [{{name: a, tools: [{tool}]}}]"));
        assert_error(&errs, "servers[0].tools[0].responseTemplate.body", "needs a body");
    }
}

#[test]
fn template_syntax_errors() {
    for body in ["'{{.args.x'", "'{{if .x}}y'", "'{{ nosuch \"%s\" .x }}'", "'a {{}} b'", "'{{end}}'"] {
        let errs = errors(&format!(
            "servers: [{{name: a, tools: [{{name: t, responseTemplate: {{body: {body}}}}}]}}]"
        ));
        assert_error(&errs, "servers[0].tools[0].responseTemplate.body", "");
        assert_eq!(errs.len(), 1, "{body}: {errs:#?}");
    }
}

#[test]
fn valid_templates_compile() {
    let snap = load(
        r#"
servers:
  - name: a
    tools:
      - name: t
        description: ""
        args: [{name: who, type: string, required: true}, {name: n, type: integer, default: 3}]
        responseTemplate: {body: "Hi {{ .args.who }}, {{- .config.x -}} !{{.data.y}}"}
"#,
    );
    let tool = &snap.servers[0].tools[0];
    let listing: serde_json::Value = serde_json::from_slice(&tool.listing).unwrap();
    assert_eq!(listing["description"], json!("t"), "an empty description falls back to the name");
    assert_eq!(required(tool), ["who"]);
}

#[test]
fn argument_checks() {
    let errs = errors(
        r#"
servers:
  - name: a
    tools:
      - name: t
        args: [{name: x}, {name: x, type: str}, {name: y, position: elsewhere}]
        responseTemplate: {body: x}
"#,
    );
    assert_error(&errs, "servers[0].tools[0].args[1].type", "must be one of");
    assert_error(&errs, "servers[0].tools[0].args[2].position", "query");
    // Higress's reading: the later of two same-named arguments is used, `int` is `integer`.
    let snap = load(
        r#"
servers:
  - name: a
    tools:
      - name: t
        args: [{name: x, default: en}, {name: n, type: int}, {name: x, default: en-US, enum: [en, en-US]}]
        responseTemplate: {body: x}
"#,
    );
    let listing: serde_json::Value = serde_json::from_slice(&snap.servers[0].tools[0].listing).unwrap();
    assert_eq!(listing["inputSchema"]["properties"]["x"]["default"], "en-US");
    assert_eq!(listing["inputSchema"]["properties"]["n"]["type"], "integer");
    assert!(
        snap.warnings.iter().any(|w| w.contains("args[0]: argument \"x\" is declared again later")),
        "{:?}",
        snap.warnings
    );
    assert!(
        snap.warnings.iter().any(|w| w.contains("args[1].type: \"int\" is read as \"integer\"")),
        "{:?}",
        snap.warnings
    );
}

#[test]
fn allow_tools() {
    let errs = errors(
        r#"
servers:
  - name: a
    allowTools: [t, missing]
    tools: [{name: t, responseTemplate: {body: x}}]
"#,
    );
    assert_error(&errs, "servers[0].allowTools[1]", "missing");
    assert_eq!(errs.len(), 1);
    let snap = load("servers: [{name: a, allowTools: [t], tools: [{name: t, responseTemplate: {body: x}}, {name: u, responseTemplate: {body: y}}]}]");
    assert_eq!(snap.servers[0].allow_tools.as_deref().map(|l| l.len()), Some(1));
    assert_eq!(snap.servers[0].tools.len(), 2);
}

#[test]
fn tool_name_separator_must_not_be_empty() {
    assert_error(
        &errors("servers: [{name: a, toolNameSeparator: ''}]"),
        "servers[0].toolNameSeparator",
        "empty",
    );
    load("servers: [{name: a, toolNameSeparator: '__'}]");
}

// ---- Higress blocks ------------------------------------------------------------------------

/// The `server:` block of docs/config.md, copied verbatim (comments included), with a template tool.
const HIGRESS: &str = r#"
servers:
  - name: weather
    path: /mcp/weather
    server:
      name: weather-api
      config: { apiKey: ${WEATHER_KEY} }   # free-form, visible to templates as .config
      securitySchemes:
        - id: backendBearer
          type: http            # http | apiKey
          scheme: bearer        # basic | bearer (type http)
          defaultCredential: ${WEATHER_TOKEN}
        - id: backendKey
          type: apiKey
          in: query             # header | query
          name: key
    tools:
      - name: get-forecast
        description: Forecast for a city
        args:
          - { name: city, type: string, required: true, description: City name }
          - { name: days, type: integer, default: 3 }
        responseTemplate:
          body: "{{.args.city}}"
        security: { id: backendKey }
"#;

/// [`HIGRESS`] with the one `${...}` that sits in a YAML flow mapping quoted. In flow context a
/// plain scalar may not contain `{` or `}`, so the verbatim line is not YAML at all unless the
/// loader substitutes variables before parsing.
fn higress_quoted() -> String {
    let quoted = HIGRESS.replace("{ apiKey: ${WEATHER_KEY} }", "{ apiKey: \"${WEATHER_KEY}\" }");
    assert_ne!(quoted, HIGRESS);
    quoted
}

fn check_higress(snap: &Snapshot) {
    let srv = &snap.servers[0];
    assert_eq!(&*srv.path, "/mcp/weather");
    assert_eq!(srv.config, json!({"apiKey": "wk-123"}));
    assert_eq!(srv.tools.len(), 1);
    let listing: serde_json::Value = serde_json::from_slice(&srv.tools[0].listing).unwrap();
    assert_eq!(listing["inputSchema"]["required"], json!(["city"]));
    assert!(!snap.effective.contains("wk-123") && !snap.effective.contains("wt-456"));
}

const WEATHER_ENV: &[(&str, &str)] = &[("WEATHER_KEY", "wk-123"), ("WEATHER_TOKEN", "wt-456")];

/// docs/config.md's `server:` block exactly as written there (`config: { apiKey: ${WEATHER_KEY} }`).
#[test]
fn higress_server_block_from_config_md_loads() {
    let snap = compile_str(HIGRESS, &env_of(WEATHER_ENV)).unwrap_or_else(|e| panic!("{e:#?}"));
    check_higress(&snap);
}

#[test]
fn higress_server_block_with_quoted_variable_loads() {
    let snap = compile_str(&higress_quoted(), &env_of(WEATHER_ENV)).unwrap_or_else(|e| panic!("{e:#?}"));
    check_higress(&snap);
}

#[test]
fn higress_block_without_its_env_names_both_paths() {
    let errs = errors(&higress_quoted());
    assert_error(&errs, "servers[0].server.config.apiKey", "WEATHER_KEY");
    assert_error(&errs, "servers[0].server.securitySchemes[0].defaultCredential", "WEATHER_TOKEN");
    assert_eq!(errs.len(), 2, "{errs:#?}");
}

#[test]
fn security_scheme_checks() {
    let errs = errors(
        r#"
servers:
  - name: a
    server:
      securitySchemes:
        - {id: s1, type: http, scheme: digest}
        - {id: s2, type: apiKey, name: key}
        - {id: s3, type: apiKey, in: header}
        - {id: s1, type: http, scheme: Basic}
        - {id: s5, type: http, scheme: Bearer}
        - {id: s6, type: apiKey, in: header, name: X-Key}
"#,
    );
    assert_error(&errs, "servers[0].server.securitySchemes[0].scheme", "basic or bearer");
    assert_error(&errs, "servers[0].server.securitySchemes[1].in", "required");
    assert_error(&errs, "servers[0].server.securitySchemes[2].name", "required");
    assert_error(&errs, "servers[0].server.securitySchemes[3].id", "duplicate");
    assert_eq!(errs.len(), 4, "{errs:#?}");
    // oauth2 (a token service) needs its flow.
    let errs = errors("servers: [{name: a, server: {securitySchemes: [{id: o, type: oauth2}]}}]");
    assert_error(
        &errs,
        "servers[0].server.securitySchemes[0].flows",
        "exactly one of clientCredentials and tokenExchange",
    );
}

#[test]
fn tool_security_must_name_a_scheme() {
    let errs = errors(
        r#"
servers:
  - name: a
    server: {securitySchemes: [{id: real, type: http, scheme: bearer}]}
    tools:
      - {name: t, security: {id: nope}, responseTemplate: {body: x}}
      - {name: u, requestTemplate: {security: {id: nada}}, responseTemplate: {body: x}}
      - {name: v, security: {id: real, passthrough: true}, responseTemplate: {body: x}}
"#,
    );
    assert_error(&errs, "servers[0].tools[0].security.id", "nope");
    assert_error(&errs, "servers[0].tools[1].requestTemplate.security.id", "nada");
    assert_eq!(errs.len(), 2, "{errs:#?}");
}

// ---- limits --------------------------------------------------------------------------------

#[test]
fn limits_defaults_and_values() {
    let snap = load(ONE_SERVER);
    assert_eq!(snap.limits, crate::config::snapshot::Limits::default());
    assert_eq!(snap.limits.http, crate::http::Limits::default());
    let snap = load(&format!(
        r#"
limits:
  maxHeaderBytes: 8192
  maxHeaders: 512
  maxBodyBytes: 1024
  headerTimeoutMs: 1500
  idleTimeoutMs: 2500
  upstreamConnectTimeoutMs: 300
  upstreamTimeoutMs: 4000
  maxConnectionsPerWorker: 7
{ONE_SERVER}"#
    ));
    let l = snap.limits;
    assert_eq!(
        l.http,
        crate::http::Limits { max_header_bytes: 8192, max_headers: 512, max_body_bytes: 1024 }
    );
    assert_eq!(l.header_timeout, Duration::from_millis(1500));
    assert_eq!(l.idle_timeout, Duration::from_millis(2500));
    assert_eq!(l.upstream_connect_timeout, Duration::from_millis(300));
    assert_eq!(l.upstream_timeout, Duration::from_millis(4000));
    assert_eq!(l.max_connections_per_worker, 7);
}

#[test]
fn limits_out_of_range() {
    let errs = errors(&format!(
        r#"
limits:
  maxHeaderBytes: 0
  maxHeaders: 513
  maxBodyBytes: 2000000000
  headerTimeoutMs: 3600001
  idleTimeoutMs: 0
  upstreamConnectTimeoutMs: 600001
  upstreamTimeoutMs: 86400001
  maxConnectionsPerWorker: 10000001
{ONE_SERVER}"#
    ));
    for key in [
        "maxHeaderBytes",
        "maxHeaders",
        "maxBodyBytes",
        "headerTimeoutMs",
        "idleTimeoutMs",
        "upstreamConnectTimeoutMs",
        "upstreamTimeoutMs",
        "maxConnectionsPerWorker",
    ] {
        assert_error(&errs, &format!("limits.{key}"), "between 1 and");
    }
    assert_eq!(errs.len(), 8, "{errs:#?}");
}

#[test]
fn max_headers_cap_is_512() {
    assert_error(&errors(&format!("limits: {{maxHeaders: 513}}\n{ONE_SERVER}")), "limits.maxHeaders", "512");
    assert_error(
        &errors(&format!("limits: {{maxHeaders: 100000}}\n{ONE_SERVER}")),
        "limits.maxHeaders",
        "512",
    );
    assert_eq!(load(&format!("limits: {{maxHeaders: 512}}\n{ONE_SERVER}")).limits.http.max_headers, 512);
}

#[test]
fn limits_wrong_type() {
    let errs = errors(&format!("limits: {{maxHeaders: many}}\n{ONE_SERVER}"));
    assert_error(&errs, "limits.maxHeaders", "expected a non-negative integer");
    let errs = errors(&format!("limits: {{maxHeaders: -1}}\n{ONE_SERVER}"));
    assert_error(&errs, "limits.maxHeaders", "");
}

#[test]
fn numbers_and_flags_from_environment_variables() {
    let env = |name: &str| match name {
        "W" => Some("3".to_string()),
        "MAX" => Some("2048".to_string()),
        "GRACE" => Some("1500".to_string()),
        "REQ" => Some("true".to_string()),
        _ => None,
    };
    let text = format!(
        "workers: ${{W}}\nshutdownGraceMs: ${{GRACE}}\nlimits: {{maxBodyBytes: ${{MAX}}}}\n{}",
        "servers:\n  - name: a\n    tools:\n      - name: t\n        args: [{name: x, required: ${REQ}}]\n        responseTemplate: {body: ok}\n"
    );
    let snap = compile_str(&text, &env).unwrap();
    assert_eq!(snap.workers, 3);
    assert_eq!(snap.limits.http.max_body_bytes, 2048);
    assert_eq!(snap.shutdown_grace, std::time::Duration::from_millis(1500));
    assert_eq!(required(&snap.servers[0].tools[0]), ["x"]);
}

// ---- sessions ------------------------------------------------------------------------------

#[test]
fn short_session_secret() {
    let errs = errors(&format!(
        "sessions: {{keys: [{{id: k1, secret: 'only-31-bytes-of-key-material!!'}}]}}\n{ONE_SERVER}"
    ));
    assert_error(&errs, "sessions.keys[0].secret", "32 bytes");
    assert!(!errs.iter().any(|e| e.contains("only-31-bytes")), "the secret is echoed: {errs:#?}");
}

#[test]
fn session_keys_configured() {
    let snap = load(&format!(
        r#"
sessions:
  keys:
    - {{id: k1, secret: "a-raw-secret-of-thirty-two-bytes"}}
    - {{id: k0, secret: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}}
  ttlSeconds: 600
{ONE_SERVER}"#
    ));
    assert!(!snap.sessions.ephemeral);
    assert_eq!(snap.sessions.ttl_seconds, 600);
    assert!(!snap.warnings.iter().any(|w| w.contains("sessions.keys")), "{:?}", snap.warnings);
}

#[test]
fn session_key_errors() {
    let errs = errors(&format!(
        r#"
sessions:
  keys:
    - {{id: k1, secret: "0123456789abcdef0123456789abcdef"}}
    - {{id: k1, secret: "0123456789abcdef0123456789abcdefXY"}}
    - {{id: k3, secret: "short"}}
  ttlSeconds: 0
{ONE_SERVER}"#
    ));
    assert_error(&errs, "sessions.keys[1].id", "duplicate");
    assert_error(&errs, "sessions.keys[2].secret", "32 bytes");
    assert_error(&errs, "sessions.ttlSeconds", "at least 1");
}

#[test]
fn no_session_keys_means_ephemeral_with_warning() {
    for text in [
        ONE_SERVER.to_string(),
        format!("sessions: {{ttlSeconds: 60}}\n{ONE_SERVER}"),
        format!("sessions: {{keys: []}}\n{ONE_SERVER}"),
    ] {
        let snap = load(&text);
        assert!(snap.sessions.ephemeral, "{text}");
        assert!(snap.warnings.iter().any(|w| w.contains("sessions.keys")), "{:?}", snap.warnings);
    }
}

/// Without `sessions.keys` the random key is made once per process: a reload (a new
/// compilation) still opens the sessions the previous configuration sealed.
#[test]
fn the_random_session_key_survives_reloads() {
    use crate::mcp::version::Version;
    let first = load(ONE_SERVER);
    let rng = ring::rand::SystemRandom::new();
    let sid = first
        .sessions
        .seal_new(Version::parse(b"2025-11-25").unwrap(), "key alice", Vec::new(), ("s", 1_000), &rng)
        .unwrap();
    let reloaded = load(ONE_SERVER);
    let claims = reloaded.sessions.open(sid.as_bytes(), "s", 1_001).expect("opened after a reload");
    assert_eq!(&*claims.principal, "key alice");
}

// ---- workers, listen, admin, origins -----------------------------------------------------

#[test]
fn workers() {
    assert_eq!(load(&format!("workers: 3\n{ONE_SERVER}")).workers, 3);
    assert_eq!(load(&format!("workers: 1024\n{ONE_SERVER}")).workers, 1024);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    assert_eq!(load(&format!("workers: auto\n{ONE_SERVER}")).workers, cores);
    assert_eq!(load(ONE_SERVER).workers, cores, "auto is the default");
    for bad in ["0", "1025", "many", "-2", "[1]"] {
        assert_error(&errors(&format!("workers: {bad}\n{ONE_SERVER}")), "workers", "");
    }
}

#[test]
fn listen_forms() {
    let snap = load(&format!("listen: ['127.0.0.1:8080', '[::1]:8081']\n{ONE_SERVER}"));
    assert_eq!(
        snap.listen,
        vec!["127.0.0.1:8080".parse::<SocketAddr>().unwrap(), "[::1]:8081".parse::<SocketAddr>().unwrap()]
    );
    let snap = load(&format!("listen: {{address: '127.0.0.1:9000'}}\n{ONE_SERVER}"));
    assert_eq!(snap.listen, vec!["127.0.0.1:9000".parse::<SocketAddr>().unwrap()]);
    assert_eq!(load(ONE_SERVER).listen, vec!["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]);
    let errs = errors(&format!("listen: ['127.0.0.1:8080', '127.0.0.1:notaport']\n{ONE_SERVER}"));
    assert_error(&errs, "listen[1]", "host:port");
    let errs = errors(&format!("listen: '127.0.0.1'\n{ONE_SERVER}"));
    assert_error(&errs, "listen", "host:port");
    assert_error(&errors(&format!("listen: []\n{ONE_SERVER}")), "listen", "at least one");
}

#[test]
fn admin_and_shutdown() {
    let snap = load(&format!("admin: '127.0.0.1:9901'\nshutdownGraceMs: 1234\n{ONE_SERVER}"));
    assert_eq!(snap.admin, Some("127.0.0.1:9901".parse().unwrap()));
    assert_eq!(snap.shutdown_grace, Duration::from_millis(1234));
    let snap = load(ONE_SERVER);
    assert_eq!(snap.admin, None, "omit = disabled");
    assert_eq!(snap.shutdown_grace, Duration::from_millis(10_000));
    assert_error(&errors(&format!("admin: 'nowhere'\n{ONE_SERVER}")), "admin", "host:port");
}

#[test]
fn allowed_origins() {
    load(&format!("allowedOrigins: ['http://localhost', 'https://app.example.com:8443']\n{ONE_SERVER}"));
    let errs = errors(&format!("allowedOrigins: ['http://localhost', 'notanorigin']\n{ONE_SERVER}"));
    assert_error(&errs, "allowedOrigins[1]", "not an origin");
}

// ---- the admin dump --------------------------------------------------------------------------

#[test]
fn effective_config_never_contains_secrets() {
    let env = env_of(&[
        ("ENV_SESSION_SECRET", "ENVSESSION-zq81-0123456789abcdefghijklmn"),
        ("ENV_CFG", "ENVCFG-ww71"),
    ]);
    let snap = compile_str(
        r#"
listen: 127.0.0.1:8080
sessions:
  keys:
    - {id: k1, secret: "SESSIONSECRET-7f3a-0123456789abcdefghijkl"}
    - {id: k2, secret: "${ENV_SESSION_SECRET}"}
servers:
  - name: leaky
    authentication:
      mode: none
      apiKey: {in: header, name: X-Api-Key, keys: [{id: ci, value: "APIKEYVALUE-9c2e"}]}
      basic: {users: [{name: alice, password: "BASICPASSWORD-41d7"}]}
    server:
      name: s
      config:
        apiKey: "CFGAPIKEY-55b1"
        nested: {deep: "CFGDEEP-18aa", list: ["CFGLIST-0f0f", {inner: "CFGINNER-3c3c"}]}
        number: 987654321
        fromEnv: "${ENV_CFG}"
      securitySchemes:
        - {id: bearer, type: http, scheme: bearer, defaultCredential: "DEFAULTCRED-d00d"}
        - {id: key, type: apiKey, in: query, name: key, defaultCredential: "DEFAULTCRED-beef"}
    tools:
      - name: t
        requestTemplate:
          headers: [{key: Authorization, value: "Bearer HDRTOKEN-6e6e"}]
          security: {id: bearer, credential: "TOOLCRED-abab"}
        responseTemplate: {body: "{{.config.apiKey}}"}
        security: {id: key, credential: "TOOLCRED-cdcd"}
"#,
        &env,
    )
    .unwrap_or_else(|e| panic!("{e:#?}"));
    let dump = &snap.effective;
    for secret in [
        "SESSIONSECRET-7f3a",
        "ENVSESSION-zq81",
        "APIKEYVALUE-9c2e",
        "BASICPASSWORD-41d7",
        "CFGAPIKEY-55b1",
        "DEFAULTCRED-d00d",
        "DEFAULTCRED-beef",
        "HDRTOKEN-6e6e",
        "TOOLCRED-abab",
        "TOOLCRED-cdcd",
    ] {
        assert!(!dump.contains(secret), "{secret} leaked into the admin dump:\n{dump}");
    }
    // server.config values whose key and origin say nothing secret are shown (the dump is for
    // operators; keys such as apiKey, token or secret, and values from ${...KEY/TOKEN/...}
    // variables, are not).
    for shown in ["CFGDEEP-18aa", "CFGLIST-0f0f", "CFGINNER-3c3c", "987654321", "ENVCFG-ww71"] {
        assert!(dump.contains(shown), "{shown} hidden from the admin dump:\n{dump}");
    }
    // The dump is still useful: structure and non-secret values stay.
    let v: serde_json::Value = serde_json::from_str(dump).unwrap();
    assert_eq!(v["servers"][0]["name"], json!("leaky"));
    assert_eq!(v["sessions"]["keys"][1]["id"], json!("k2"));
    assert_eq!(v["sessions"]["keys"][0]["secret"], json!(REDACTED));
    assert_eq!(v["servers"][0]["server"]["securitySchemes"][1]["name"], json!("key"));
    assert!(dump.contains("Authorization"));
    // The compiled server still sees the real config values.
    assert_eq!(snap.servers[0].config["apiKey"], json!("CFGAPIKEY-55b1"));
    assert_eq!(snap.servers[0].config["fromEnv"], json!("ENVCFG-ww71"));
}

#[test]
fn demo_effective_config_is_json() {
    let snap = load(DEMO);
    let v: serde_json::Value = serde_json::from_str(&snap.effective).unwrap();
    assert_eq!(v["servers"][0]["path"], json!("/mcp"));
    assert!(
        snap.effective.contains("Welcome to portcullis"),
        "a server.config value that is no secret is shown"
    );
}

#[test]
fn type_errors_do_not_echo_values() {
    // Regression: serde's "invalid type: string \"...\"" printed the value, which may be a secret
    // from the environment, into logs and the admin /reload answer.
    let env = |name: &str| (name == "KEYS").then(|| "sk-live-very-secret-value".to_string());
    let errs = compile_str(&format!("sessions: {{keys: ${{KEYS}}}}\n{ONE_SERVER}"), &env).unwrap_err();
    assert!(errs.iter().any(|e| e.starts_with("sessions.keys")), "{errs:?}");
    assert!(errs.iter().all(|e| !e.contains("sk-live")), "{errs:?}");
}

/// Names of a tool's required arguments.
fn required(t: &crate::config::snapshot::LocalTool) -> Vec<&str> {
    t.args().iter().filter(|a| a.required).map(|a| &*a.name).collect()
}

#[test]
fn higress_server_allow_tools_intersects_with_the_entry_list() {
    let tool = |n: &str| format!("      - {{ name: {n}, responseTemplate: {{ body: x }} }}\n");
    let text = format!(
        "servers:\n  - name: a\n    allowTools: [t1, t2]\n    server: {{ allowTools: [t2, t3] }}\n    tools:\n{}{}{}",
        tool("t1"),
        tool("t2"),
        tool("t3")
    );
    let snap = load(&text);
    let allowed: Vec<&str> = snap.servers[0].tools.iter().filter(|t| t.allowed).map(|t| &*t.name).collect();
    assert_eq!(allowed, ["t2"]);
    let errs = errors(&text.replace("[t2, t3]", "[t2, nope]"));
    assert_error(&errs, "servers[0].server.allowTools[1]", "no tool named");
}

#[test]
fn openapi_file_errors_name_the_field() {
    let errs = errors("servers:\n  - name: a\n    openapi: { file: /nonexistent/spec.yaml }\n");
    assert_error(&errs, "servers[0].openapi.file", "cannot read");
    let errs = errors("servers:\n  - name: a\n    openapi: { file: x, bogus: 1 }\n");
    assert!(errs.iter().any(|e| e.starts_with("servers[0].openapi") && e.contains("bogus")), "{errs:#?}");
}

#[test]
fn log_block() {
    use crate::config::snapshot::{LogFormat, LogSettings};
    let servers = "servers: [{ name: a, tools: [{ name: t, responseTemplate: { body: x } }] }]";
    assert_eq!(load(servers).log, LogSettings::default());
    let s = load(&format!("log: {{ level: DEBUG, format: json, access: \"false\" }}\n{servers}"));
    assert_eq!(s.log, LogSettings { level: log::LevelFilter::Debug, format: LogFormat::Json, access: false });
    let errs = errors(&format!("log: {{ level: loud, format: xml }}\n{servers}"));
    assert_error(&errs, "log.level", "one of off, error, warn, info, debug, trace");
    assert_error(&errs, "log.format", "json or text");
    let errs = errors(&format!("log: {{ colour: true }}\n{servers}"));
    assert!(errs.iter().any(|e| e.starts_with("log") && e.contains("colour")), "{errs:#?}");
}

// ---- load-time checks that help -------------------------------------------------------------

#[test]
fn a_rule_naming_a_tool_the_server_does_not_have_is_an_error() {
    let errs = errors(
        r#"
servers:
  - name: s
    authorization:
      rules:
        - target: { tools: [{ backend: s, tool: helo }] }
        - target: { tools: [{ backend: s, tool: hello }] }
    tools:
      - { name: hello, responseTemplate: { body: hi } }
"#,
    );
    assert_error(&errs, "servers[0].authorization.rules[0].target.tools[0].tool", "no tool \"helo\"");
    assert_eq!(errs.len(), 1, "{errs:#?}");
}

#[test]
fn a_default_must_be_a_value_its_argument_accepts() {
    let errs = errors(
        r#"
servers:
  - name: s
    tools:
      - name: t
        responseTemplate: { body: x }
        args:
          - { name: a, type: integer, default: "ten" }
          - { name: b, type: string, enum: [red, green], default: blue }
          - { name: c, type: boolean, default: 3 }
          - { name: d, type: object, default: [1] }
"#,
    );
    assert_error(&errs, "servers[0].tools[0].args[0].default", "type integer");
    assert_error(&errs, "servers[0].tools[0].args[1].default", "enum");
    assert_error(&errs, "servers[0].tools[0].args[2].default", "type boolean");
    assert_error(&errs, "servers[0].tools[0].args[3].default", "type object");
    // The documented coercions are defaults too.
    load(
        r#"
servers:
  - name: s
    tools:
      - name: t
        responseTemplate: { body: x }
        args:
          - { name: a, type: integer, default: "10" }
          - { name: b, type: number, default: 2 }
          - { name: c, type: boolean, default: "true" }
          - { name: d, type: string, enum: [red, green], default: green }
          - { name: e, type: integer, enum: [1, 2], default: 2 }
          - { name: f, default: anything }
"#,
    );
}

#[test]
fn follow_on_errors_are_not_reported() {
    // A `server:` block that fails to parse leaves its schemes unknown: the tools that use them
    // do not each report a missing scheme (twice, as they used to).
    let errs = errors(
        r#"
servers:
  - name: s
    server:
      securitySchemes:
        - { id: k, type: apiKey, in: header, name: X-K, bogus: 1 }
    tools:
      - { name: t, requestTemplate: { url: "http://127.0.0.1:9/x", method: GET, security: { id: k } } }
      - { name: u, requestTemplate: { url: "http://127.0.0.1:9/x", method: GET, security: { id: k } } }
"#,
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_error(&errs, "servers[0].server.securitySchemes[0].bogus", "unknown field");
    // A scheme that is really missing is one error per reference.
    let errs = errors(
        r#"
servers:
  - name: s
    tools:
      - { name: t, requestTemplate: { url: "http://127.0.0.1:9/x", method: GET, security: { id: nope } } }
"#,
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
}

#[test]
fn the_config_dump_redacts_secrets_not_every_server_config_value() {
    let env = |name: &str| match name {
        "GITHUB_TOKEN" => Some("ghp-env-secret-123".to_string()),
        "REGION" => Some("eu-west-1".to_string()),
        _ => None,
    };
    let snap = compile_str(
        r#"
servers:
  - name: s
    server:
      config:
        org: acme
        region: "${REGION}"
        apiToken: plain-secret-in-file
        auth: { clientSecret: nested-secret }
        owner: "${GITHUB_TOKEN}"
    tools:
      - { name: t, responseTemplate: { body: x } }
"#,
        &env,
    )
    .unwrap();
    let dump = &snap.effective;
    for shown in ["acme", "eu-west-1"] {
        assert!(dump.contains(shown), "{shown} hidden: {dump}");
    }
    for secret in ["plain-secret-in-file", "nested-secret", "ghp-env-secret-123"] {
        assert!(!dump.contains(secret), "{secret} leaked: {dump}");
    }
}

#[test]
fn yaml_anchors_and_merge_keys_work() {
    let snap = load(
        r#"
x-tool: &tool
  responseTemplate: { body: "hi" }
  description: shared
servers:
  - name: s
    tools:
      - <<: *tool
        name: a
      - <<: *tool
        name: b
        description: own
"#,
    );
    let listing = |i: usize| -> serde_json::Value {
        serde_json::from_slice(&snap.servers[0].tools[i].listing).unwrap()
    };
    assert_eq!(
        (listing(0)["name"].clone(), listing(0)["description"].clone()),
        (json!("a"), json!("shared"))
    );
    assert_eq!((listing(1)["name"].clone(), listing(1)["description"].clone()), (json!("b"), json!("own")));
}

#[test]
fn json_files_are_read_as_json() {
    let dir = std::env::temp_dir().join(format!("portcullis-json-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.json");
    std::fs::write(
        &file,
        r#"{"servers": [{"name": "s", "tools": [{"name": "t", "description": "thumbs \ud83d\udc4d", "responseTemplate": {"body": "x"}}]}]}"#,
    )
    .unwrap();
    let snap = super::compile_file(&file).unwrap_or_else(|e| panic!("{e:#?}"));
    let listing: serde_json::Value = serde_json::from_slice(&snap.servers[0].tools[0].listing).unwrap();
    assert_eq!(listing["description"], json!("thumbs \u{1f44d}"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn each_host_is_resolved_once_and_warned_about_once() {
    use crate::upstream::target::{lookups, seed_resolution};
    let tools: String = (0..40)
        .map(|i| format!("      - {{ name: t{i}, requestTemplate: {{ url: \"http://localhost:9/x{i}\", method: GET }} }}\n"))
        .collect();
    let before = lookups();
    load(&format!("servers:\n  - name: s\n    tools:\n{tools}"));
    assert!(lookups() - before <= 1, "{} lookups for one host", lookups() - before);
    // A host that does not resolve: one warning, whatever the number of tools on it.
    seed_resolution("unresolvable.test:80", Err("cannot resolve unresolvable.test: no such host".into()));
    let tools: String = (0..10)
        .map(|i| format!("      - {{ name: u{i}, requestTemplate: {{ url: \"http://unresolvable.test/x{i}\", method: GET }} }}\n"))
        .collect();
    let snap = load(&format!("servers:\n  - name: s\n    tools:\n{tools}"));
    let about: Vec<_> = snap.warnings.iter().filter(|w| w.contains("unresolvable.test")).collect();
    assert_eq!(about.len(), 1, "{:?}", snap.warnings);
}
