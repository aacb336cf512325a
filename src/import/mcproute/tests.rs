use super::*;
use crate::config::raw;

const CONFIG_MAP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: idp-keys, namespace: agents}
data:
  jwks: '{"keys":[{"kty":"oct","kid":"k1","k":"c2VjcmV0LXNpZ25pbmcta2V5LWZvci10aGUtbWNwcm91dGUtdGVzdHM"}]}'
"#;

/// A route in namespace `agents` with `spec` (YAML, indented for `spec:`).
fn route(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: aigateway.envoyproxy.io/v1beta1\nkind: MCPRoute\nmetadata: {{name: {name}, namespace: agents}}\nspec:\n{spec}"
    )
}

fn run(manifest: &str, opts: &McpRouteOptions) -> McpRouteImport {
    let i = import(manifest, opts).unwrap_or_else(|e| panic!("{e}"));
    // Whatever is written is a valid `servers[]` entry.
    let _: raw::Server =
        serde_json::from_value(i.entry.clone()).unwrap_or_else(|e| panic!("{e}: {:#}", i.entry));
    i
}

fn warned(i: &McpRouteImport, needle: &str) -> bool {
    i.warnings.iter().any(|w| w.contains(needle))
}

#[test]
fn oauth_authorization_and_backends_map() {
    let manifest = format!(
        "{CONFIG_MAP}---\n{}",
        route(
            "finance-tools",
            r#"  parentRefs: [{name: gw, kind: Gateway}]
  path: /mcp/finance
  backendRefs:
    - name: docsearch
      port: 8080
      toolSelector: {include: [search], exclude: [reindex]}
      forwardHeaders: [{name: X-Ticket}, {name: X-Locale, backendHeader: Accept-Language}]
    - name: ledger
      kind: Service
      namespace: money
      port: 9000
      path: /v2/mcp
  securityPolicy:
    oauth:
      issuer: https://login.example.net/realms/agents
      audiences: [https://mcp.example.net/mcp/finance]
      jwks:
        localJWKS: {type: ValueRef, valueRef: {group: "", kind: ConfigMap, name: idp-keys}}
      protectedResourceMetadata:
        resource: https://mcp.example.net/mcp/finance
        resourceName: Finance tools
        scopesSupported: [invoices:read]
      claimToHeaders: [{claim: sub, header: X-Sub}]
    authorization:
      defaultAction: Deny
      rules:
        - source: {jwt: {scopes: [invoices:read], claims: [{name: org.units, valueType: StringArray, values: [finance]}]}}
          target: {tools: [{backend: ledger, tool: list_invoices}]}
          cel: request.mcp.params.arguments.limit <= 100
"#
        )
    );
    let i = run(&manifest, &McpRouteOptions::default());
    let e = &i.entry;
    assert_eq!(e["name"], "finance-tools");
    assert_eq!(e["path"], "/mcp/finance");
    assert_eq!(e["resource"], "https://mcp.example.net/mcp/finance");
    let provider = &e["authentication"]["jwt"]["providers"][0];
    assert_eq!(provider["issuer"], "https://login.example.net/realms/agents");
    assert_eq!(provider["audiences"], json!(["https://mcp.example.net/mcp/finance"]));
    assert_eq!(provider["jwks"]["inline"]["keys"][0]["kid"], "k1");
    assert_eq!(provider["claimToHeaders"], json!([{"claim": "sub", "header": "X-Sub"}]));
    assert_eq!(e["authentication"]["protectedResource"]["resourceName"], "Finance tools");
    assert!(e["authentication"]["protectedResource"].get("authorizationServers").is_none());
    assert_eq!(e["authorization"]["defaultAction"], "Deny");
    assert_eq!(e["authorization"]["rules"][0]["source"]["jwt"]["claims"][0]["valueType"], "StringArray");
    assert_eq!(e["backends"][0]["url"], "http://docsearch.agents.svc.cluster.local:8080/mcp");
    assert_eq!(e["backends"][0]["toolSelector"], json!({"include": ["search"], "exclude": ["reindex"]}));
    assert_eq!(e["backends"][0]["forwardHeaders"], json!([{"name": "X-Ticket"}, {"name": "X-Locale"}]));
    assert!(
        warned(&i, "X-Locale is forwarded under its own name, not as Accept-Language"),
        "{:?}",
        i.warnings
    );
    assert_eq!(e["backends"][1]["url"], "http://ledger.money.svc.cluster.local:9000/v2/mcp");

    // --backend overrides the cluster address.
    let opts = McpRouteOptions {
        backends: vec![("ledger".into(), "http://127.0.0.1:9001/mcp".into())],
        ..McpRouteOptions::default()
    };
    assert_eq!(run(&manifest, &opts).entry["backends"][1]["url"], "http://127.0.0.1:9001/mcp");
}

#[test]
fn the_output_compiles_as_a_server() {
    let manifest = route(
        "tools",
        r#"  backendRefs: [{name: b1, port: 80}]
  securityPolicy:
    oauth:
      issuer: https://idp.test
      jwks: {localJWKS: {inline: '{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0LXNpZ25pbmcta2V5LWZvci10aGUtbWNwcm91dGUtdGVzdHM"}]}'}}
      protectedResourceMetadata: {resource: "https://gw.test/mcp", scopesSupported: [echo]}
    authorization:
      rules:
        - source: {jwt: {scopes: [echo]}}
          target: {tools: [{backend: b1, tool: echo}]}
          action: Allow
"#,
    );
    let opts = McpRouteOptions {
        backends: vec![("b1".into(), "http://127.0.0.1:9/mcp".into())],
        ..McpRouteOptions::default()
    };
    let i = run(&manifest, &opts);
    let yaml = i.to_yaml("route.yaml").unwrap();
    assert!(yaml.starts_with("# Imported by `portcullis import mcproute` from route.yaml."), "{yaml}");
    let config = format!(
        "servers:\n{}",
        yaml.lines().filter(|l| !l.starts_with('#')).map(|l| format!("  {l}\n")).collect::<String>()
    );
    let snap = crate::config::compile::compile_str(&config, &|_| None)
        .unwrap_or_else(|e| panic!("{e:#?}\n{config}"));
    assert_eq!(snap.servers[0].policy.rules().len(), 1);
    assert!(warned(&i, "clients see its tools by their own names"), "{:?}", i.warnings);
}

#[test]
fn backends_from_the_file_and_api_keys_never_copied() {
    let manifest = format!(
        "{}\n---\n{}",
        r#"apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: ledger}
spec:
  endpoints: [{fqdn: {hostname: ledger.internal.example.net, port: 8443}}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: plain}
spec:
  endpoints: [{ip: {address: 10.0.0.7, port: 8080}}]"#,
        route(
            "r",
            r#"  backendRefs:
    - name: ledger
      kind: Backend
      group: gateway.envoyproxy.io
      securityPolicy: {apiKey: {secretRef: {name: ledger-api-key}, header: X-Ledger-Key}}
    - name: plain
      kind: Backend
      group: gateway.envoyproxy.io
      securityPolicy: {apiKey: {inline: sk-live-do-not-copy}}
    - name: q
      port: 80
      securityPolicy: {apiKey: {inline: sk-live-query-secret, queryParam: key}}
"#,
        )
    );
    let i = run(&manifest, &McpRouteOptions::default());
    let e = &i.entry;
    assert_eq!(e["backends"][0]["url"], "https://ledger.internal.example.net:8443/mcp");
    assert_eq!(e["backends"][1]["url"], "http://10.0.0.7:8080/mcp");
    let schemes = e["server"]["securitySchemes"].as_array().unwrap();
    assert_eq!(
        schemes[0],
        json!({"id": "ledger-api-key", "type": "apiKey", "in": "header", "name": "X-Ledger-Key", "defaultCredential": "${LEDGER_API_KEY}"})
    );
    assert_eq!(
        schemes[1],
        json!({"id": "plain-api-key", "type": "http", "scheme": "bearer", "defaultCredential": "${PLAIN_API_KEY}"})
    );
    assert_eq!(schemes[2]["in"], "query");
    assert_eq!(e["backends"][0]["security"], json!({"id": "ledger-api-key"}));
    let yaml = i.to_yaml("m.yaml").unwrap();
    assert!(!yaml.contains("sk-live"), "an inline key was copied:\n{yaml}");
    assert!(warned(&i, "set it to key `apiKey` of Secret ledger-api-key"), "{:?}", i.warnings);
    assert!(warned(&i, "the inline API key is not copied: set ${PLAIN_API_KEY}"), "{:?}", i.warnings);
}

#[test]
fn clear_errors() {
    let no_jwks = route(
        "r",
        "  backendRefs: [{name: b, port: 80}]\n  securityPolicy: {oauth: {issuer: https://i, protectedResourceMetadata: {resource: https://r}}}\n",
    );
    let e = import(&no_jwks, &McpRouteOptions::default()).unwrap_err().to_string();
    assert!(e.contains("pass --jwks-uri URL"), "{e}");
    let opts = McpRouteOptions { jwks_uri: Some("https://i/keys".into()), ..McpRouteOptions::default() };
    assert_eq!(
        run(&no_jwks, &opts).entry["authentication"]["jwt"]["providers"][0]["jwks"]["uri"],
        "https://i/keys"
    );

    let missing_map = route(
        "r",
        "  backendRefs: [{name: b, port: 80}]\n  securityPolicy: {oauth: {issuer: https://i, jwks: {localJWKS: {type: ValueRef, valueRef: {kind: ConfigMap, name: nope}}}, protectedResourceMetadata: {resource: https://r}}}\n",
    );
    let e = import(&missing_map, &McpRouteOptions::default()).unwrap_err().to_string();
    assert!(e.contains("ConfigMap \"nope\", which is not in this file"), "{e}");

    let unknown_backend =
        route("r", "  backendRefs: [{name: far, kind: Backend, group: gateway.envoyproxy.io}]\n");
    let e = import(&unknown_backend, &McpRouteOptions::default()).unwrap_err().to_string();
    assert!(e.contains("pass --backend far=URL"), "{e}");

    let two = format!(
        "{}\n---\n{}",
        route("a", "  backendRefs: [{name: b, port: 1}]\n"),
        route("b", "  backendRefs: [{name: b, port: 1}]\n")
    );
    let e = import(&two, &McpRouteOptions::default()).unwrap_err().to_string();
    assert!(e.contains("2 MCPRoutes (a, b): choose one with --route NAME"), "{e}");
    let opts = McpRouteOptions { route: Some("b".into()), ..McpRouteOptions::default() };
    assert_eq!(run(&two, &opts).entry["name"], "b");

    assert!(import("kind: ConfigMap\n", &McpRouteOptions::default())
        .unwrap_err()
        .to_string()
        .contains("no document of kind MCPRoute"));
    assert!(matches!(import("a: [", &McpRouteOptions::default()), Err(ImportError::Syntax(_))));
}

#[test]
fn unmapped_fields_are_named() {
    let manifest = route(
        "r",
        "  hostnames: [mcp.example.net]\n  headers: [{name: x, value: y}]\n  backendRefs: [{name: b, port: 80}]\n  securityPolicy: {extAuth: {http: {}}}\n",
    );
    let i = run(&manifest, &McpRouteOptions::default());
    for needle in ["spec.hostnames", "spec.headers", "securityPolicy.extAuth"] {
        assert!(warned(&i, needle), "{needle}: {:?}", i.warnings);
    }
}

#[test]
fn durations() {
    assert_eq!(duration_seconds("300s"), Some(300));
    assert_eq!(duration_seconds("5m"), Some(300));
    assert_eq!(duration_seconds("1h30m"), Some(5400));
    assert_eq!(duration_seconds("1500ms"), Some(2));
    assert_eq!(duration_seconds("5"), None);
    assert_eq!(duration_seconds("5d"), None);
    assert_eq!(duration_seconds(""), None);
    assert_eq!(duration_seconds("99999999999999999999h"), None);
}
