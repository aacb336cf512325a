//! Template rendering on the request path: a typical REST request (a URL with a path argument,
//! a defaulted query and an escaped query, two headers, a JSON body built from five arguments),
//! rendered into reused buffers from a decoded arguments tape. The target is well under 2 us
//! for all four templates and no heap allocation; with `--features count-allocs` the bench
//! also counts allocations per render and fails if there are any.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used)] // fixed benchmark inputs: a failure is a broken bench, not a crash

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use portcullis::mcp::json::Decoder;
use portcullis::rest::template::{Context, Escape, Template};

#[cfg(feature = "count-allocs")]
#[global_allocator]
static ALLOC: portcullis::alloc_count::Counting = portcullis::alloc_count::Counting;

const URL: &str = "https://api.example.com/v1/forecast/{{.args.city}}?days={{.args.days | default 3}}&units={{.args.units | urlquery}}";
const AUTH: &str = "Bearer {{.config.apiKey}}";
const REQUEST_ID: &str = r#"{{.args.requestId | default "none"}}"#;
const BODY: &str = r#"{"city":{{toJson .args.city}},"days":{{.args.days | default 3}},"units":{{toJson .args.units}},"lang":{{.args.lang | default "en" | toJson}},"detail":{{toJson .args.detail}}}"#;
const ARGS: &[u8] =
    br#"{"city":"Sao Paulo","days":5,"units":"metric","lang":"pt","detail":true,"requestId":"r-123"}"#;

struct Request {
    url: Template,
    auth: Template,
    request_id: Template,
    body: Template,
}

/// Renders the four templates into `bufs` (cleared first).
fn render(r: &Request, cx: &Context<'_, '_, '_>, bufs: &mut [Vec<u8>; 4]) {
    for b in bufs.iter_mut() {
        b.clear();
    }
    r.url.render_escaped(&mut bufs[0], cx, Escape::Url).unwrap();
    r.auth.render(&mut bufs[1], cx).unwrap();
    r.request_id.render(&mut bufs[2], cx).unwrap();
    r.body.render(&mut bufs[3], cx).unwrap();
}

fn request(c: &mut Criterion) {
    let r = Request {
        url: Template::compile(URL).unwrap(),
        auth: Template::compile(AUTH).unwrap(),
        request_id: Template::compile(REQUEST_ID).unwrap(),
        body: Template::compile(BODY).unwrap(),
    };
    let config = serde_json::json!({"apiKey": "k-0123456789abcdef"});
    let mut d = Decoder::default();
    d.with_tape(ARGS, |tape| {
        let cx = Context { args: Some(tape), config: Some(&config), ..Context::default() };
        let mut bufs: [Vec<u8>; 4] = Default::default();
        render(&r, &cx, &mut bufs);
        assert_eq!(
            String::from_utf8_lossy(&bufs[0]),
            "https://api.example.com/v1/forecast/Sao%20Paulo?days=5&units=metric"
        );
        assert_eq!(bufs[1], b"Bearer k-0123456789abcdef");
        assert_eq!(bufs[2], b"r-123");
        assert_eq!(
            String::from_utf8_lossy(&bufs[3]),
            r#"{"city":"Sao Paulo","days":5,"units":"metric","lang":"pt","detail":true}"#
        );
        #[cfg(feature = "count-allocs")]
        {
            let before = portcullis::alloc_count::allocations();
            for _ in 0..1000 {
                render(&r, &cx, &mut bufs);
            }
            let per = (portcullis::alloc_count::allocations() - before) as f64 / 1000.0;
            println!("template_request: {per} allocations per request");
            assert_eq!(per, 0.0, "rendering allocated");
        }
        c.bench_function("template_request_url_2headers_body", |b| {
            b.iter(|| render(black_box(&r), black_box(&cx), &mut bufs))
        });
        let mut out = Vec::new();
        c.bench_function("template_body_5args", |b| {
            b.iter(|| {
                out.clear();
                r.body.render(&mut out, black_box(&cx)).unwrap();
            })
        });
    })
    .unwrap();
    c.bench_function("template_compile_body", |b| b.iter(|| Template::compile(black_box(BODY)).unwrap()));
}

criterion_group!(benches, request);
criterion_main!(benches);
