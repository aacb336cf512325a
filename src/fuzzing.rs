//! Entry points for the cargo-fuzz targets in `fuzz/` and for the corpus replay test: each takes
//! arbitrary bytes and drives one parser the way the pipeline does. They must never panic; any
//! panic is a bug the fuzzer reports.

use crate::http::body::Chunked;
use crate::http::head::{self, Framing, Head, Parsed};
use crate::mcp::envelope;
use crate::mcp::json::{self, Decoder};
use crate::rest::template::{Context, Template};

/// Request head parsing plus body framing over `data`, as the connection loop would see it
/// (head first, then the body by its framing), with small limits so limit paths are reached.
pub fn http_request(data: &[u8]) {
    let limits = crate::http::Limits { max_header_bytes: 4096, max_headers: 32, max_body_bytes: 8192 };
    let mut h = Head::default();
    let Ok(Parsed::Complete) = head::parse(data, &limits, &mut h) else { return };
    // Every span must lie inside the buffer.
    for (n, v) in &h.headers {
        assert!(n.end as usize <= data.len() && v.end as usize <= data.len());
    }
    let rest = &data[h.len..];
    match h.framing {
        Framing::Chunked => {
            let mut out = Vec::new();
            let mut dec = Chunked::new(limits.max_body_bytes, limits.max_header_bytes);
            // Feed in two pieces to exercise resumption.
            let mid = rest.len() / 2;
            if let Ok(n) = dec.decode(&rest[..mid], &mut out) {
                if n == mid {
                    let _ = dec.decode(&rest[mid..], &mut out);
                }
            }
            assert!(out.len() <= limits.max_body_bytes);
        }
        Framing::Length(_) | Framing::None => {}
    }
}

/// JSON decoding, envelope extraction, re-serialisation and template rendering over `data`.
pub fn jsonrpc_envelope(data: &[u8]) {
    thread_local! {
        static DECODER: std::cell::RefCell<Decoder> = std::cell::RefCell::new(Decoder::default());
    }
    legacy_answer(data);
    let Ok(template) = Template::compile("{{.args.a}} {{.args.b.c}} {{.config.x}}") else { return };
    let config = serde_json::json!({"x": "y"});
    DECODER.with(|d| {
        let _ = d.borrow_mut().with_tape(data, |tape| {
            if envelope::is_batch(tape) {
                for el in json::elements(tape) {
                    let _ = envelope::decode(el);
                }
            }
            // A message the envelope accepts (no repeated member), renumbered for a shared
            // backend session: still JSON, with the new id and the same members.
            let at = envelope::decode(tape).ok().and_then(|_| envelope::id_value(data));
            if let Some((start, end)) = at {
                let renumbered = [&data[..start], b"\"g-1\"", &data[end..]].concat();
                let members = Decoder::default().with_tape(&renumbered, |t| {
                    let id = json::get(t, "id").and_then(json::as_str).map(str::to_owned);
                    (id, json::entries(t).count())
                });
                assert_eq!(
                    members.ok(),
                    Some((Some("g-1".to_owned()), json::entries(tape).count())),
                    "renumbered request: {}",
                    String::from_utf8_lossy(&renumbered)
                );
            }
            if let Ok(env) = envelope::decode(tape) {
                let mut out = Vec::new();
                json::write_value(&mut out, tape);
                let _ = template.render(
                    &mut out,
                    &Context { args: env.arguments, config: Some(&config), ..Context::default() },
                );
            }
        });
    });
}

/// A backend's 2025 answer completed for a 2026 client, held to two references: the scan's
/// verdict on `data` is serde_json's (UTF-8 checked, as serde_json skips a string without it),
/// and the answer spliced from the backend's bytes is, member for member, the answer written
/// from a simd-json tape whenever both parsers take `data`. Either way the result is JSON.
fn legacy_answer(data: &[u8]) {
    use crate::mcp::reply::{complete_from_tape, complete_legacy_response, scan};
    use serde::de::IgnoredAny;
    let reference = std::str::from_utf8(data).is_ok() && serde_json::from_slice::<IgnoredAny>(data).is_ok();
    if let Some(verdict) = scan::is_json(data) {
        assert_eq!(verdict, reference, "scan and serde_json differ on {:?}", String::from_utf8_lossy(data));
    }
    for (method, id) in [("resources/read", None), ("tools/call", Some(&b"\"r1\""[..]))] {
        let (mut fast, mut slow) = (Vec::new(), Vec::new());
        let spliced = complete_legacy_response(&mut Decoder::default(), data, (method, id), &mut fast);
        let written = complete_from_tape(&mut Decoder::default(), data, (method, id), &mut slow);
        if spliced {
            let text = String::from_utf8_lossy(&fast);
            assert_ne!(scan::is_json(&fast), Some(false), "completed answer is not JSON: {text}");
            assert!(serde_json::from_slice::<IgnoredAny>(&fast).is_ok(), "not JSON to serde_json: {text}");
        } else {
            assert!(fast.is_empty(), "nothing is written for what is not an answer");
        }
        if written && reference {
            assert!(
                spliced,
                "the tape takes an answer the scan refuses: {:?}",
                String::from_utf8_lossy(data)
            );
            let as_value = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).ok();
            if let (Some(a), Some(b)) = (as_value(&fast), as_value(&slow)) {
                assert!(same_json(&a, &b), "answers differ for {:?}: {a} {b}", String::from_utf8_lossy(data));
            }
        }
    }
}

/// Whether two JSON values are the same, numbers compared by value (a tape writes `-0` as `0`
/// and `1e2` as `100.0`, and reads long mantissas to within an ulp or two of serde_json).
fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((kx, x), (ky, y))| kx == ky && same_json(x, y))
        }
        _ => a == b,
    }
}

/// The providers the JWT target verifies against: one key of every type (RSA from the test
/// data, EC P-256, Ed25519, and an `oct` secret the structured mode signs with).
fn jwt_providers() -> &'static [crate::auth::jwt::Provider] {
    use crate::auth::jwk::{Alg, KeySet};
    use crate::auth::jwks::KeySource;
    static PROVIDERS: std::sync::OnceLock<Vec<crate::auth::jwt::Provider>> = std::sync::OnceLock::new();
    PROVIDERS.get_or_init(|| {
        let doc = format!(
            r#"{{"keys":[{rsa},{ec},{ed},{{"kty":"oct","kid":"hs","k":"{k}"}}]}}"#,
            rsa = first_key(include_str!("../tests/data/jwt-rsa2048.jwks.json")),
            ec = first_key(include_str!("../tests/data/jwt-p256.jwks.json")),
            ed = first_key(include_str!("../tests/data/jwt-ed25519.jwks.json")),
            k = base64_simd::URL_SAFE_NO_PAD.encode_to_string(FUZZ_HMAC_SECRET),
        );
        let keys = KeySet::parse(doc.as_bytes()).map(|(k, _)| k).unwrap_or_default();
        vec![crate::auth::jwt::Provider {
            name: "fuzz".into(),
            issuer: "https://idp.fuzz".into(),
            audiences: vec!["https://gw.fuzz/mcp".into()],
            algorithms: Alg::ALL.to_vec(),
            skew: 30,
            require_exp: false,
            claim_to_headers: vec![("sub".into(), "x-user".into()), ("org.id".into(), "x-org".into())],
            keys: KeySource::fixed(keys),
        }]
    })
}

/// The HMAC secret of the fuzz provider's `oct` key.
const FUZZ_HMAC_SECRET: &[u8] = b"portcullis-fuzzing-hmac-secret-0123456789";

fn first_key(jwks: &str) -> String {
    serde_json::from_str::<serde_json::Value>(jwks)
        .ok()
        .and_then(|v| v.get("keys").and_then(|k| k.get(0)).map(|k| k.to_string()))
        .unwrap_or_else(|| "{}".into())
}

/// JWT verification over `data`. An even first byte: `data` is the token as sent. An odd first
/// byte: the rest is `header JSON \0 claims JSON`, encoded and signed with the provider's HMAC
/// key, so the fuzzer reaches the header rules and claim checks behind a valid signature.
pub fn jwt_verify(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let providers = jwt_providers();
    let now = 1_700_000_000;
    if mode & 1 == 0 {
        let _ = crate::auth::jwt::verify(rest, providers, now);
        return;
    }
    let Some(split) = rest.iter().position(|&b| b == 0) else { return };
    header_differential(&rest[..split]);
    claims_differential(&rest[split + 1..]);
    let b64 = base64_simd::URL_SAFE_NO_PAD;
    let mut token = b64.encode_to_string(&rest[..split]);
    token.push('.');
    token.push_str(&b64.encode_to_string(&rest[split + 1..]));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, FUZZ_HMAC_SECRET);
    let sig = ring::hmac::sign(&key, token.as_bytes());
    token.push('.');
    token.push_str(&b64.encode_to_string(sig.as_ref()));
    if let Ok(v) = crate::auth::jwt::verify(token.as_bytes(), providers, now) {
        // Whatever was signed, a claim header never carries a control character.
        for (_, value) in v.principal.headers() {
            assert!(!value.bytes().any(|b| b < 0x20 || b == 0x7f));
        }
        assert!(now < v.deadline);
    }
}

/// The claims tape (`claims::Tape`, what a principal keeps) and the strict parser agree on what
/// they accept, on the value, and on its JSON text.
fn claims_differential(claims: &[u8]) {
    let mut tape = crate::auth::claims::Tape::default();
    match (tape.parse(claims, 16), crate::auth::strict::parse(claims, 16)) {
        (Ok(()), Ok(v)) => {
            assert_eq!(tape.root().to_serde(), v, "the tape reads another value");
            let text = serde_json::to_string(&tape.root()).ok();
            assert_eq!(text, serde_json::to_string(&v).ok(), "the tape writes another text");
        }
        (Err(_), Err(_)) => {}
        (a, b) => panic!("the tape says {a:?}, the strict parser {b:?}"),
    }
}

/// The JOSE header reader (`strict::header`, which builds nothing) and the strict parser agree
/// on what they accept and on `alg`, `kid` and the extensions.
fn header_differential(head: &[u8]) {
    use serde_json::Value;
    let text = |v: Option<&Value>| v.map(|v| v.as_str().map(str::to_owned).ok_or(()));
    let owned = |v: Option<Result<std::borrow::Cow<'_, str>, ()>>| v.map(|r| r.map(|c| c.into_owned()));
    match (crate::auth::strict::header(head, 16), crate::auth::strict::parse(head, 16)) {
        (Ok(h), Ok(Value::Object(m))) => {
            assert_eq!(owned(h.alg), text(m.get("alg")));
            assert_eq!(owned(h.kid), text(m.get("kid")));
            assert_eq!(h.extension, m.contains_key("crit") || m.contains_key("b64"));
        }
        (Err(_), Ok(v)) => assert!(!v.is_object(), "the header reader refused an object the parser took"),
        (Ok(_), _) => panic!("the header reader took what the parser refused"),
        (Err(_), Err(_)) => {}
    }
}

/// JWKS parsing over `data`, then every key asked to verify a signature for every algorithm
/// it accepts (garbage signatures must be refused, never panic).
pub fn jwks_parse(data: &[u8]) {
    let Ok((set, _)) = crate::auth::jwk::KeySet::parse(data) else { return };
    for key in &set.keys {
        for alg in crate::auth::jwk::Alg::ALL {
            if key.accepts(alg) {
                assert!(!key.material.verify(alg, b"message", &[0u8; 64]));
            }
        }
    }
}

/// CEL compile and evaluate: `data` is `expression \0 arguments JSON`. The expression is
/// compiled as a rule condition; when it compiles and the JSON decodes, it is evaluated with
/// the JSON as `args` (and `request.mcp.params.arguments`), fixed headers and claims.
pub fn cel_eval(data: &[u8]) {
    use crate::policy::cel::{self, Auth, HeaderPairs, Jwt, Mcp, Request, RequestActivation};
    thread_local! {
        static DECODER: std::cell::RefCell<Decoder> = std::cell::RefCell::new(Decoder::default());
    }
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let Ok(src) = std::str::from_utf8(&data[..split]) else { return };
    let Ok(program) = cel::compile_with(src, &cel::Options::gateway()) else { return };
    let json = data.get(split + 1..).unwrap_or(b"{}");
    let claims = serde_json::json!({"sub": "alice", "org": {"id": "acme"}, "groups": ["a", "b"], "n": 3, "scope": "echo sum"});
    let principal = crate::auth::Principal::with_claims(crate::auth::PrincipalKind::Jwt, "alice", &claims);
    let headers = [(&b"x-tenant"[..], &b"t-1"[..]), (b"X-Mixed", b"v"), (b"x-bin", b"\xff\xfe")];
    let headers = HeaderPairs(&headers);
    DECODER.with(|d| {
        let _ = d.borrow_mut().with_tape(json, |tape| {
            let act = RequestActivation {
                args: Some(tape),
                request: Request {
                    method: "POST",
                    host: b"gw.example.com",
                    path: b"/mcp",
                    headers: Some(&headers),
                    auth: Auth { jwt: Some(Jwt { principal: &principal }), ..Auth::default() },
                    mcp: Mcp {
                        method: Some("tools/call"),
                        backend: Some("b1"),
                        tool: Some("echo"),
                        params: crate::policy::cel::Params::sent(tape),
                    },
                },
            };
            let _ = program.eval(&act);
            let _ = program.matches(&act);
        });
    });
}

/// Template compile and render: `data` is `template source \0 JSON`. A template that compiles
/// is rendered with the JSON as the arguments tape and as the data, and a fixed config, both
/// plain and URL-escaped, then once more with an empty context. A successful render must
/// append UTF-8 within the output cap; a failed one must leave the buffer as it was.
pub fn template(data: &[u8]) {
    use crate::rest::template::{Escape, MAX_OUTPUT};
    thread_local! {
        static DECODER: std::cell::RefCell<Decoder> = std::cell::RefCell::new(Decoder::default());
    }
    const PREFIX: &[u8] = b"prefix:";
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let Ok(src) = std::str::from_utf8(&data[..split]) else { return };
    let Ok(template) = Template::compile(src) else { return };
    let json = data.get(split + 1..).unwrap_or(b"{}");
    let config =
        serde_json::json!({"apiKey": "k-1", "tags": ["a", "b"], "opts": {"z": 1, "a": [true, null, 1.5]}});
    let doc: Option<serde_json::Value> = serde_json::from_slice(json).ok();
    let check = |cx: &Context<'_, '_, '_>| {
        for escape in [Escape::None, Escape::Url] {
            let mut out = PREFIX.to_vec();
            match template.render_escaped(&mut out, cx, escape) {
                Ok(()) => {
                    assert!(out.len() <= PREFIX.len() + MAX_OUTPUT);
                    assert!(std::str::from_utf8(&out).is_ok(), "rendered output is not UTF-8");
                }
                Err(_) => assert_eq!(out, PREFIX, "a failed render changed the buffer"),
            }
        }
    };
    DECODER.with(|d| {
        let _ = d.borrow_mut().with_tape(json, |tape| {
            check(&Context {
                args: Some(tape),
                config: Some(&config),
                data: doc.as_ref(),
                ..Context::default()
            });
        });
    });
    check(&Context::default());
}
