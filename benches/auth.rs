//! Stage 1 costs: a full JWT verification per algorithm (strict base64url and JSON, header
//! rules, ring signature check, claims) and a verified-token cache hit through
//! `Authenticator::authenticate` (bearer extraction, hash, full comparison, expiry and key-epoch
//! check). Tokens are minted by `jsonwebtoken`.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used)] // fixed benchmark inputs: a failure is a broken bench, not a crash

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use jsonwebtoken::Algorithm;
use portcullis::auth::cache::TokenCache;
use portcullis::auth::{jwt, Principal};
use portcullis::http::head::{self, Head};

#[path = "../perf/auth_fixtures.rs"]
mod auth_fixtures;
use auth_fixtures::*;

fn verify(c: &mut Criterion) {
    let providers = vec![provider()];
    for alg in [Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA, Algorithm::HS256] {
        let t = token(alg);
        jwt::verify(t.as_bytes(), &providers, NOW).unwrap();
        c.bench_function(&format!("jwt_verify_{alg:?}_{}B", t.len()), |b| {
            b.iter(|| black_box(jwt::verify(black_box(t.as_bytes()), &providers, NOW).unwrap().deadline))
        });
    }
}

fn cache_hit(c: &mut Criterion) {
    let auth = authenticator();
    let t = token(Algorithm::RS256);
    let bytes = head_with(&t);
    let mut h = Head::default();
    head::parse(&bytes, &portcullis::http::Limits::default(), &mut h).unwrap();
    let mut cache = TokenCache::new(4096, 7);
    let anonymous = Principal::anonymous();
    let peer = "127.0.0.1".parse().unwrap();
    auth.authenticate(&h, &bytes, peer, NOW, &mut cache, &anonymous).unwrap();
    c.bench_function(&format!("authenticate_cache_hit_RS256_{}B", t.len()), |b| {
        b.iter(|| {
            black_box(auth.authenticate(&h, &bytes, peer, black_box(NOW), &mut cache, &anonymous).unwrap())
        })
    });
}

criterion_group!(benches, verify, cache_hit);
criterion_main!(benches);
