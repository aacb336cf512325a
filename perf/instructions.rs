//! Runs one parser N times over a fixed input, for instruction counting under callgrind:
//! `instructions head|envelope|serde|token-hit N`. perf/instructions.sh runs N and 3N and reports
//! (Ir(3N) - Ir(N)) / 2N, which cancels start-up cost.
#![allow(clippy::unwrap_used)] // fixed inputs: a failure is a broken harness

#[path = "auth_fixtures.rs"]
mod auth_fixtures;
#[path = "fixtures.rs"]
mod fixtures;

use std::hint::black_box;

use portcullis::http::head::{self, Head};
use portcullis::mcp::envelope;
use portcullis::mcp::json::Decoder;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let what = std::env::args().nth(1).unwrap_or_default();
    let n: usize = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(1000);
    match what.as_str() {
        "head" => {
            let bytes = fixtures::mcp_head();
            let limits = portcullis::http::Limits::default();
            let mut h = Head::default();
            for _ in 0..n {
                head::parse(black_box(&bytes), &limits, &mut h).unwrap();
                black_box((h.authorization, h.session_id, h.framing));
            }
        }
        "envelope" => {
            let mut d = Decoder::default();
            for _ in 0..n {
                d.with_tape(black_box(fixtures::TOOLS_CALL), |t| {
                    let e = envelope::decode(t).unwrap();
                    black_box((e.id, e.method, e.name, e.arguments.map(<[_]>::len)));
                })
                .unwrap();
            }
        }
        "serde" => {
            for _ in 0..n {
                let v: serde_json::Value = serde_json::from_slice(black_box(fixtures::TOOLS_CALL)).unwrap();
                black_box(&v["params"]["name"]);
            }
        }
        "token-hit" => {
            // Phase 3 on a verified-token cache hit: bearer extraction, hash, full comparison,
            // expiry and key-epoch checks (the signature was checked once, before the loop).
            let auth = auth_fixtures::authenticator();
            let bytes = auth_fixtures::head_with(&auth_fixtures::token(jsonwebtoken::Algorithm::RS256));
            let mut h = Head::default();
            head::parse(&bytes, &portcullis::http::Limits::default(), &mut h).unwrap();
            let mut cache = portcullis::auth::cache::TokenCache::new(4096, 7);
            let anonymous = std::rc::Rc::new(portcullis::auth::Principal::anonymous());
            let peer = "127.0.0.1".parse().unwrap();
            auth.authenticate(&h, &bytes, peer, auth_fixtures::NOW, &mut cache, &anonymous).unwrap();
            for _ in 0..n {
                let p = auth.authenticate(
                    &h,
                    black_box(&bytes),
                    peer,
                    black_box(auth_fixtures::NOW),
                    &mut cache,
                    &anonymous,
                );
                black_box(p.unwrap());
            }
        }
        "print-token" => {
            // An RS256 token valid for an hour from now, for perf/auth.sh.
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
            println!("{}", auth_fixtures::token_at(jsonwebtoken::Algorithm::RS256, now));
        }
        _ => eprintln!("usage: instructions head|envelope|serde|token-hit N | print-token"),
    }
}
