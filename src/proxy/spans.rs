//! Trace spans (`tracing`): which requests are traced, their ids, and the spans a worker hands
//! to the exporter thread (`runtime::otlp`). A request is traced when its `traceparent` says
//! sampled, or, without a parent, with the configured probability; a parent that says not
//! sampled is honoured. One SERVER span per traced request (phase 8) and one CLIENT span per
//! backend exchange, REST call and token request; the `traceparent` a backend receives names
//! the CLIENT span of its exchange. Attributes never hold arguments, results, tokens or
//! credentials. Nothing is allocated for a request that is not traced.

use std::cell::Cell;

use crate::runtime::otlp::Held;
pub(crate) use crate::runtime::otlp_wire::static_kv;
use crate::runtime::otlp_wire::Spans;
pub use crate::runtime::otlp_wire::{now_nanos, Head, Kind, SpanWriter};

/// A traced request's ids: the trace, the SERVER span, and the client's span it continues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceIds {
    /// The trace id.
    pub trace: [u8; 16],
    /// The SERVER span's id.
    pub span: [u8; 8],
    /// The client's span (from its `traceparent`).
    pub parent: Option<[u8; 8]>,
}

/// A worker's id generator (xorshift64*: ids need to be unique, not secret).
pub struct Ids(Cell<u64>);

impl Ids {
    /// Seeded from the system's randomness.
    pub fn new() -> Ids {
        let mut seed = [0u8; 8];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed);
        Ids(Cell::new(u64::from_le_bytes(seed) | 1))
    }

    fn next(&self) -> u64 {
        let mut x = self.0.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A span id (never all zero).
    pub fn span(&self) -> [u8; 8] {
        (self.next() | 1).to_be_bytes()
    }

    /// A trace id (never all zero).
    pub fn trace(&self) -> [u8; 16] {
        let mut t = [0u8; 16];
        t[..8].copy_from_slice(&self.next().to_be_bytes());
        t[8..].copy_from_slice(&(self.next() | 1).to_be_bytes());
        t
    }

    /// True with probability `ratio`.
    pub fn sample(&self, ratio: f64) -> bool {
        ratio >= 1.0 || (ratio > 0.0 && ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < ratio)
    }
}

impl Default for Ids {
    fn default() -> Self {
        Ids::new()
    }
}

/// Whether (and as what) a request is traced: its valid `traceparent` (`00-trace-span-flags`)
/// decides by its sampled flag; without one, `ratio` does.
pub fn decide(ids: &Ids, traceparent: Option<&[u8]>, ratio: f64) -> Option<TraceIds> {
    if let Some(tp) = traceparent.and_then(parse_traceparent) {
        let (trace, parent, sampled) = tp;
        return sampled.then(|| TraceIds { trace, span: ids.span(), parent: Some(parent) });
    }
    ids.sample(ratio).then(|| TraceIds { trace: ids.trace(), span: ids.span(), parent: None })
}

fn hex_into(out: &mut [u8], text: &[u8]) -> Option<()> {
    for (i, pair) in text.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(())
}

/// (trace id, parent span id, sampled) of a version-00 `traceparent` (checked valid already).
fn parse_traceparent(v: &[u8]) -> Option<([u8; 16], [u8; 8], bool)> {
    if v.len() < 55 || &v[..3] != b"00-" {
        return None;
    }
    let (mut trace, mut span, mut flags) = ([0u8; 16], [0u8; 8], [0u8; 1]);
    hex_into(&mut trace, &v[3..35])?;
    hex_into(&mut span, &v[36..52])?;
    hex_into(&mut flags, &v[53..55])?;
    (trace != [0; 16] && span != [0; 8]).then_some((trace, span, flags[0] & 1 == 1))
}

/// `00-<trace>-<span>-01`: what a backend receives for the CLIENT span `span` of `trace`.
pub fn traceparent(trace: &[u8; 16], span: &[u8; 8]) -> [u8; 55] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = *b"00-00000000000000000000000000000000-0000000000000000-01";
    for (i, b) in trace.iter().enumerate() {
        out[3 + 2 * i] = HEX[usize::from(b >> 4)];
        out[4 + 2 * i] = HEX[usize::from(b & 15)];
    }
    for (i, b) in span.iter().enumerate() {
        out[36 + 2 * i] = HEX[usize::from(b >> 4)];
        out[37 + 2 * i] = HEX[usize::from(b & 15)];
    }
    out
}

/// A CLIENT span that belongs to no request (a JWKS fetch), alone in its trace, handed to the
/// exporter at once.
pub fn root_client(name: &str, start: u64, attributes: impl FnOnce(&mut SpanWriter<'_>)) {
    let ids = Ids::new();
    let head = Head { trace: ids.trace(), id: ids.span(), parent: None, kind: Kind::Client, start };
    let mut spans = Spans::default();
    let mut w = SpanWriter::begin(&mut spans.bytes, &head, [name.as_bytes(), b"", b""]);
    attributes(&mut w);
    w.finish(now_nanos());
    spans.count = 1;
    crate::runtime::otlp::ship(spans, None);
}

/// A request's trace state, kept with its backend tally: its ids when traced and when it began.
#[derive(Debug, Default)]
pub struct RequestTrace {
    ids: Cell<Option<TraceIds>>,
    start: Cell<u64>,
}

/// A CLIENT span in flight.
pub struct Open {
    /// Its id (the `traceparent` of the exchange names it).
    pub id: [u8; 8],
    /// The trace.
    pub trace: [u8; 16],
    start: u64,
}

impl RequestTrace {
    /// Marks the request traced (from now).
    pub fn begin(&self, ids: Option<TraceIds>) {
        self.ids.set(ids);
        if ids.is_some() {
            self.start.set(now_nanos());
        }
    }

    /// When the traced request began (Unix nanoseconds).
    pub fn start(&self) -> u64 {
        self.start.get()
    }

    /// The request's ids, when it is traced.
    pub fn ids(&self) -> Option<TraceIds> {
        self.ids.get()
    }

    /// Starts a CLIENT span (none when the request is not traced).
    pub fn client(&self, ids: &Ids) -> Option<Open> {
        let t = self.ids.get()?;
        Some(Open { id: ids.span(), trace: t.trace, start: now_nanos() })
    }

    /// Ends a CLIENT span now, writing it (named by the concatenation of `name`) into the
    /// worker's held spans; `attributes` adds its attributes.
    pub fn end(
        &self,
        held: &Held,
        open: Open,
        name: [&[u8]; 3],
        attributes: impl FnOnce(&mut SpanWriter<'_>),
    ) {
        let Some(t) = self.ids.get() else { return };
        let head = Head {
            trace: open.trace,
            id: open.id,
            parent: Some(t.span),
            kind: Kind::Client,
            start: open.start,
        };
        held.span(&head, name, attributes);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parents_decide_and_ratios_sample() {
        let ids = Ids::new();
        let tp = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = decide(&ids, Some(tp), 0.0).unwrap();
        assert_eq!(t.trace[..2], [0x4b, 0xf9]);
        assert_eq!(t.parent, Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]));
        assert_ne!(t.span, t.parent.unwrap());
        let unsampled = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        assert_eq!(decide(&ids, Some(unsampled), 1.0), None, "a parent's not-sampled is honoured");
        assert!(decide(&ids, None, 1.0).is_some_and(|t| t.parent.is_none()));
        assert!(decide(&ids, None, 0.0).is_none());
        let n = (0..10_000).filter(|_| decide(&ids, None, 0.1).is_some()).count();
        assert!((800..1200).contains(&n), "{n} of 10,000 at 0.1");
        let back = traceparent(&t.trace, &t.span);
        let (trace, span, sampled) = parse_traceparent(&back).unwrap();
        assert_eq!((trace, span, sampled), (t.trace, t.span, true));
    }
}
