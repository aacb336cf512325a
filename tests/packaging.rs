//! Packaging (issue "Observability and packaging"): the container image's Dockerfile against
//! the configuration it serves and the Kubernetes manifests that run it, the `probe` command its
//! HEALTHCHECK uses, and the Grafana dashboard against `/metrics` (every metric a panel queries
//! exists; every family has HELP and TYPE and a unit in its name). The populated scrape is left
//! in `$CARGO_TARGET_TMPDIR/metrics-sample.prom` for CI's `promtool check metrics`.
#![allow(clippy::unwrap_used)] // test harness
#![allow(clippy::disallowed_types)] // fixture bookkeeping across test threads, not the data path

mod common;

use std::net::SocketAddr;
use std::path::Path;

use common::{recorder, Recorder, Seen};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const JWT_KEY: &[u8] = b"packaging-test-hmac-key-0123456789ab";

fn repo(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The Dockerfile's instructions (continuation lines joined), in order.
fn instructions(dockerfile: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let (text, continued) = match line.trim_end().strip_suffix('\\') {
            Some(t) => (t, true),
            None => (line.trim_end(), false),
        };
        current.push_str(text.trim());
        current.push(' ');
        if !continued {
            let i = current.trim().to_string();
            if !i.is_empty() {
                out.push(i);
            }
            current.clear();
        }
    }
    out
}

#[test]
fn the_dockerfile_serves_its_config_as_non_root_and_the_manifests_run_its_image() {
    let docker = repo("Dockerfile");
    let steps = instructions(&docker);
    let of = |word: &str| steps.iter().filter(|s| s.starts_with(word)).cloned().collect::<Vec<_>>();
    // Multi-stage: a build stage, then a small runtime image.
    let froms = of("FROM ");
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(froms[0].ends_with(" AS build"), "{froms:?}");
    assert!(froms[1].contains("distroless") && froms[1].contains("nonroot"), "{froms:?}");
    assert!(of("RUN ").iter().any(|r| r.contains("cargo build --release --locked --bin portcullis")));
    // Non-root, numeric (Pod Security "restricted" needs runAsNonRoot to be checkable).
    let user = of("USER ");
    assert_eq!(user, ["USER 65532:65532"]);
    // The configuration it copies is the one it serves, and it loads.
    assert!(of("COPY ")
        .iter()
        .any(|c| c == "COPY deploy/container/demo.yaml /etc/portcullis/portcullis.yaml"));
    assert_eq!(of("CMD "), [r#"CMD ["run", "--config", "/etc/portcullis/portcullis.yaml"]"#]);
    assert_eq!(of("ENTRYPOINT "), [r#"ENTRYPOINT ["/usr/local/bin/portcullis"]"#]);
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/container/demo.yaml");
    let snap = portcullis::config::compile::compile_file(&config).unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(snap.listen.iter().all(|a| a.ip().is_unspecified()), "reachable from outside the container");
    let admin = snap.admin.unwrap();
    assert!(admin.ip().is_loopback(), "admin stays inside the container");
    // The HEALTHCHECK probes that admin listener's /readyz with the binary itself (no shell).
    let health = of("HEALTHCHECK ");
    let probe = format!(r#""/usr/local/bin/portcullis", "probe", "http://{admin}/readyz""#);
    assert!(health.len() == 1 && health[0].contains(&probe), "{health:?} vs {probe}");
    assert!(of("EXPOSE ").iter().any(|e| e == &format!("EXPOSE {}", snap.listen[0].port())));
    // The Kubernetes Deployment runs the image this Dockerfile is tagged as, by the same path.
    let tag = format!("localhost/portcullis:{}", env!("CARGO_PKG_VERSION"));
    assert!(docker.contains(&format!("podman build -t {tag} .")), "the Dockerfile names its tag");
    let deployment = repo("deploy/kubernetes/deployment.yaml");
    assert!(deployment.contains(&format!("image: {tag}")), "deployment.yaml runs {tag}");
    assert!(deployment.contains(r#"command: ["/usr/local/bin/portcullis"]"#));
    assert!(repo(".dockerignore").lines().any(|l| l == "target/"), "the build context leaves target/ out");
}

#[test]
fn probe_exits_by_the_answer() {
    let gw = common::start(
        "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nworkers: 1\nservers:\n  - name: s\n    path: /mcp\n    tools: [{ name: t, responseTemplate: { body: x } }]\n",
    );
    let admin = gw.admin_addr().unwrap();
    let probe = |url: String| std::process::Command::new(BIN).args(["probe", &url]).output().unwrap();
    assert!(probe(format!("http://{admin}/readyz")).status.success());
    let missing = probe(format!("http://{admin}/nope"));
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("answered 404"));
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    assert!(!probe(format!("http://{dead}/readyz")).status.success());
    assert!(!probe("https://127.0.0.1/readyz".into()).status.success(), "http:// only");
    gw.shutdown();
}

/// A stateless 2025-revision MCP backend with one tool, `echo`.
fn backend() -> Recorder {
    recorder(|seen: &Seen| {
        let msg: Value = serde_json::from_str(&seen.body).unwrap_or(Value::Null);
        if msg.get("id").is_none() {
            return (202, "application/json", Vec::new());
        }
        let result = match msg["method"].as_str().unwrap_or("") {
            "initialize" => {
                json!({"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"b","version":"1"}})
            }
            "tools/list" => json!({"tools":[{"name":"echo","inputSchema":{"type":"object"}}]}),
            "tools/call" => json!({"content":[{"type":"text","text":"ok"}]}),
            _ => json!({}),
        };
        (
            200,
            "application/json",
            json!({"jsonrpc":"2.0","id":msg["id"],"result":result}).to_string().into_bytes(),
        )
    })
}

fn scrape(admin: SocketAddr) -> String {
    let r = common::send(admin, "GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    String::from_utf8(r.body).unwrap()
}

#[test]
fn every_dashboard_query_reads_a_metric_the_gateway_exposes() {
    let (b, rest) = (backend(), recorder(|_| (200, "application/json", b"{}".to_vec())));
    let sts = recorder(|_| {
        (
            200,
            "application/json",
            br#"{"access_token":"t-1","token_type":"Bearer","expires_in":600}"#.to_vec(),
        )
    });
    let dir = std::env::temp_dir().join(format!("portcullis-packaging-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pins = dir.join("pins.json");
    std::fs::write(&pins, "{}").unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let k = base64_simd::URL_SAFE_NO_PAD.encode_to_string(JWT_KEY);
    let gw = common::start(&format!(
        r#"
listen: 127.0.0.1:0
admin: 127.0.0.1:0
workers: 1
audit: {{ file: "{audit}" }}
servers:
  - name: tools
    path: /mcp
    resource: https://gw.test/mcp
    authentication:
      mode: jwt
      jwt: {{ providers: [{{ name: t, issuer: https://idp.test, jwks: {{ inline: {{ keys: [{{ kty: oct, kid: h, k: "{k}" }}] }} }} }}] }}
    authorization:
      rules:
        - {{ name: callers, source: {{ jwt: {{ scopes: [x] }} }} }}
    rateLimits:
      - {{ name: tight, match: {{ tools: [b1__echo] }}, key: sub, requests: 1, per: 1h }}
    pins: "{pins}"
    server:
      securitySchemes:
        - id: service
          type: oauth2
          flows: {{ clientCredentials: {{ tokenUrl: "http://{sts}/token", clientId: c, clientSecret: s }} }}
    tools:
      - {{ name: report, requestTemplate: {{ url: "http://{rest}/report", security: {{ id: service }} }} }}
      - {{ name: dead, requestTemplate: {{ url: "http://{dead}/x" }} }}
    backends:
      - {{ name: b1, url: "http://{b}/mcp", pinning: warn }}
"#,
        audit = dir.join("audit.jsonl").display(),
        pins = pins.display(),
        sts = sts.addr,
        rest = rest.addr,
        b = b.addr,
    ));
    let (addr, admin) = (gw.addrs()[0], gw.admin_addr().unwrap());
    let t = common::hs256_token_with(JWT_KEY, json!({"sub": "u", "scope": "x"}));
    let other = common::hs256_token_with(JWT_KEY, json!({"sub": "v", "scope": "y"}));
    let auth = |t: &str| format!("Authorization: Bearer {t}\r\n");
    // A list (pins: every backend tool lacks one), calls (the second over the limit), a REST tool
    // with a token service, one to a dead port, a denial, a missing token.
    common::rpc_2026(addr, "tools/list", "", &auth(&t));
    for _ in 0..2 {
        common::call_2026(addr, "/mcp", "b1__echo", "{}", &auth(&t));
    }
    common::call_2026(addr, "/mcp", "report", "{}", &auth(&t));
    common::call_2026(addr, "/mcp", "report", "{}", &auth(&t));
    common::call_2026(addr, "/mcp", "dead", "{}", &auth(&t));
    common::call_2026(addr, "/mcp", "report", "{}", &auth(&other));
    common::call_2026(addr, "/mcp", "report", "{}", "");
    let m = scrape(admin);
    std::fs::write(Path::new(env!("CARGO_TARGET_TMPDIR")).join("metrics-sample.prom"), &m).unwrap();

    // Every family: HELP and TYPE, counters in _total, histograms in _seconds.
    let mut families = Vec::new();
    for line in m.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let (name, kind) = line.split_once(' ').unwrap();
        assert!(m.contains(&format!("# HELP {name} ")), "{name} has no HELP");
        match kind {
            "counter" => assert!(name.ends_with("_total"), "counter {name}"),
            "histogram" => {
                assert!(name.ends_with("_seconds") || name.ends_with("_bytes"), "histogram {name}")
            }
            "gauge" => {}
            other => panic!("{name}: type {other}"),
        }
        families.push(name.to_string());
    }
    for line in m.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let name = line.split(['{', ' ']).next().unwrap();
        let base = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        assert!(families.iter().any(|f| f == name || f == base), "sample {name} outside a declared family");
    }

    // Every metric the dashboard reads is exposed.
    let dashboard: Value = serde_json::from_str(&repo("deploy/grafana/portcullis.json")).unwrap();
    let metric = regex::Regex::new(r"portcullis_[a-z_]+").unwrap();
    let mut queried = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for found in metric.find_iter(expr) {
                let name = found.as_str();
                let base = name.strip_suffix("_bucket").unwrap_or(name);
                assert!(
                    families.iter().any(|f| f == base),
                    "panel {:?} reads {name}, not in /metrics:\n{m}",
                    panel["title"]
                );
                queried.push(base.to_string());
            }
        }
    }
    for wanted in [
        "portcullis_requests_total",
        "portcullis_tool_calls_total",
        "portcullis_gateway_duration_seconds",
        "portcullis_backend_duration_seconds",
        "portcullis_authentication_failures_total",
        "portcullis_authorization_decisions_total",
        "portcullis_token_cache_hits_total",
        "portcullis_upstream_pool_idle_connections",
        "portcullis_rate_limited_total",
        "portcullis_tool_pin_mismatches_total",
        "portcullis_backend_token_requests_total",
    ] {
        assert!(queried.iter().any(|q| q == wanted), "the dashboard shows {wanted}");
    }
    gw.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
