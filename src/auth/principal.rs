//! Who is calling, once authenticated: the principal every later phase reads.
//!
//! A principal is one reference-counted record (`Rc<str>`) holding its id (the subject is the
//! id's tail), its scopes, its `claimToHeaders` values, its claims as a tape (see
//! [`super::claims`]) and, for a verified token, the token itself (the token cache compares
//! it). Building one allocates once: the pieces are laid out in a per-thread scratch buffer and
//! copied into the record. Cloning one (a cache hit, a task remembering its owner) costs a
//! reference count.
//!
//! Where each piece is (`FIELDS` numbers) is kept beside the record, so reading the id or
//! the subject is a slice. The tables of scopes and headers are in the record, as words of the
//! claims tape's seven-bit form (ASCII): being a `str`, reading a string from the record is a
//! boundary check, not a UTF-8 validation.

use std::cell::RefCell;
use std::fmt;
use std::io::Write as _;
use std::rc::Rc;

use super::claims::{put_word, word_at, Claim, Doc, Json, Tape, WORD};

/// How the principal was authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    /// Nobody (`mode: none`, or proxy mode with `requireUser: false` and no user).
    Anonymous,
    /// A verified JWT.
    Jwt,
    /// An API key (subject = key id).
    ApiKey,
    /// A basic user (subject = user name).
    Basic,
    /// A user named by a trusted proxy.
    Proxy,
    /// A verified TLS client certificate (subject = the configured name from it).
    Mtls,
}

impl PrincipalKind {
    /// The id's prefix.
    fn tag(self) -> &'static str {
        match self {
            PrincipalKind::Anonymous => "",
            PrincipalKind::Jwt => "jwt",
            PrincipalKind::ApiKey => "key",
            PrincipalKind::Basic => "basic",
            PrincipalKind::Proxy => "proxy",
            PrincipalKind::Mtls => "mtls",
        }
    }
}

/// Who is calling.
#[derive(Clone)]
pub struct Principal {
    /// How.
    pub kind: PrincipalKind,
    /// Whether the subject is the JWT's `sub` claim (rate limits and credentials keyed by `sub`).
    pub subject_is_sub: bool,
    rec: Rc<str>,
    /// Where each piece of `rec` is: indexed by `ID_LEN`, `SUBJECT`, ...
    at: [u32; FIELDS],
}

// Where the pieces are.
const ID_LEN: usize = 0;
const SUBJECT: usize = 1;
const SCOPES: usize = 2;
const SCOPES_N: usize = 3;
const HEADERS: usize = 4;
const HEADERS_N: usize = 5;
const WORDS: usize = 6;
const WORDS_LEN: usize = 7;
const TEXT: usize = 8;
const TEXT_LEN: usize = 9;
const TOKEN: usize = 10;
/// Fields of the layout.
const FIELDS: usize = 11;

/// Longest `claimToHeaders` value sent.
const MAX_HEADER_VALUE: usize = 4096;

/// Where a record is laid out before it is copied into its allocation (per thread, reused).
#[derive(Default)]
struct Scratch {
    rec: Vec<u8>,
    spans: Vec<(u32, u32)>,
    heads: Vec<[u32; 4]>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

fn u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn read(rec: &str, at: usize) -> usize {
    word_at(rec.as_bytes(), at) as usize
}

fn str_in(rec: &str, at: usize, len: usize) -> &str {
    rec.get(at..at + len).unwrap_or_default()
}

impl Principal {
    /// Nobody.
    pub fn anonymous() -> Principal {
        Principal::build(PrincipalKind::Anonymous, &[], false, None, std::iter::empty(), b"")
    }

    /// A principal with a subject and nothing else (API key, basic, proxy).
    pub fn user(kind: PrincipalKind, subject: &str) -> Principal {
        Principal::build(kind, &[kind.tag(), " ", subject], false, None, std::iter::empty(), b"")
    }

    /// A principal with a subject and claims (a client certificate's fields; tests). For a JWT
    /// principal the scopes come from the `scope` and `scp` claims as for a verified token;
    /// `subject_is_sub` is left false.
    pub fn with_claims(kind: PrincipalKind, subject: &str, claims: &serde_json::Value) -> Principal {
        let mut tape = Tape::default();
        let text = serde_json::to_vec(claims).unwrap_or_default();
        if tape.parse(&text, 64).is_err() {
            tape = Tape::default();
        }
        Principal::build(kind, &[kind.tag(), " ", subject], false, Some(&tape), std::iter::empty(), b"")
    }

    /// Builds a principal in one allocation: its id from `id` (pieces joined as they are; the
    /// last is the subject), its claims from `claims` (for a JWT also its scopes, from `scope`
    /// and `scp`: space-separated strings or arrays of strings, sorted and deduplicated), the
    /// header values of `headers` (see `header_value`; those that cannot be sent are left
    /// out) and the token it was verified from.
    pub fn build<'c>(
        kind: PrincipalKind,
        id: &[&str],
        subject_is_sub: bool,
        claims: Option<&'c Tape>,
        headers: impl Iterator<Item = (&'c str, Claim<'c>)>,
        token: &[u8],
    ) -> Principal {
        let go = |s: &mut Scratch| {
            // Every piece is a `str` or ASCII, so this holds; were it not, the empty record
            // would name nobody (and a token naming nobody is refused).
            let at = s.lay_out(kind, id, claims, headers, token);
            match std::str::from_utf8(&s.rec) {
                Ok(rec) => Principal { kind, subject_is_sub, rec: Rc::from(rec), at },
                Err(_) => Principal { kind, subject_is_sub, rec: Rc::from(""), at: [0; FIELDS] },
            }
        };
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => go(&mut s),
            Err(_) => go(&mut Scratch::default()),
        })
    }

    fn field(&self, i: usize) -> usize {
        self.at.get(i).map_or(0, |&n| n as usize)
    }

    /// What a session is bound to: kind and subject (and issuer for JWTs); empty for anonymous.
    pub fn id(&self) -> &str {
        str_in(&self.rec, 0, self.field(ID_LEN))
    }

    /// `sub` (or `client_id`/`azp`), key id, user name; empty for anonymous.
    pub fn subject(&self) -> &str {
        self.id().get(self.field(SUBJECT)..).unwrap_or_default()
    }

    /// Granted scopes (JWT `scope`/`scp`), sorted; none for the other modes.
    pub fn scopes(&self) -> Scopes<'_> {
        Scopes { rec: &self.rec, at: self.field(SCOPES), n: self.field(SCOPES_N) }
    }

    /// The claims (an object; a principal without claims reads as null, which has no members).
    pub fn claims(&self) -> Claim<'_> {
        let region = |at, len| str_in(&self.rec, self.field(at), self.field(len));
        let doc = Doc { words: region(WORDS, WORDS_LEN).as_bytes(), text: region(TEXT, TEXT_LEN) };
        Claim { doc, at: 0 }
    }

    /// `claimToHeaders` values for backend requests: (lower-case name, value).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let at = self.field(HEADERS);
        (0..self.field(HEADERS_N)).map(move |i| {
            let f = |k: usize| read(&self.rec, at + WORD * (4 * i + k));
            (str_in(&self.rec, f(0), f(1)), str_in(&self.rec, f(2), f(3)))
        })
    }

    /// Whether there are `claimToHeaders` values.
    pub fn has_headers(&self) -> bool {
        self.field(HEADERS_N) > 0
    }

    /// Whether both are the same record (a cache hit returns the principal it stored).
    pub fn same(&self, other: &Principal) -> bool {
        Rc::ptr_eq(&self.rec, &other.rec)
    }

    /// The token this principal was verified from (empty for the other modes).
    #[inline]
    pub(crate) fn token(&self) -> &[u8] {
        // The last piece: the rest of the record, as bytes (no boundary to check).
        self.rec.as_bytes().get(self.at[TOKEN] as usize..).unwrap_or_default()
    }
}

/// The token and the claims are left out: the token is a credential.
impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("kind", &self.kind)
            .field("id", &self.id())
            .field("scopes", &self.scopes().iter().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Scratch {
    fn lay_out<'c>(
        &mut self,
        kind: PrincipalKind,
        id: &[&str],
        claims: Option<&'c Tape>,
        headers: impl Iterator<Item = (&'c str, Claim<'c>)>,
        token: &[u8],
    ) -> [u32; FIELDS] {
        let mut at = [0; FIELDS];
        let mut set = |field: usize, value: usize| at[field] = u32_of(value);
        self.rec.clear();
        for piece in id {
            self.rec.extend_from_slice(piece.as_bytes());
        }
        let id_len = self.rec.len();
        set(ID_LEN, id_len);
        set(SUBJECT, id_len - id.last().map_or(0, |s| s.len()));

        let (words, text) = claims.map_or((&[][..], ""), |t| (&t.words[..], &t.text[..]));
        set(WORDS, self.rec.len());
        set(WORDS_LEN, words.len());
        self.rec.extend_from_slice(words);
        let text_at = self.rec.len();
        set(TEXT, text_at);
        set(TEXT_LEN, text.len());
        self.rec.extend_from_slice(text.as_bytes());

        // Scopes: spans of the claims' text, then sorted and deduplicated by what they say.
        self.spans.clear();
        if let (Some(tape), PrincipalKind::Jwt) = (claims, kind) {
            let root = tape.root();
            for name in ["scope", "scp"] {
                let Some(claim) = root.get(name) else { continue };
                match claim.json() {
                    Json::Str(s) => {
                        let base = text_at + claim.str_offset();
                        for part in s.split(' ').filter(|p| !p.is_empty()) {
                            let off = part.as_ptr() as usize - s.as_ptr() as usize;
                            self.spans.push((u32_of(base + off), u32_of(part.len())));
                        }
                    }
                    Json::Array(a) => {
                        for item in a.items().filter(|i| i.as_str().is_some()) {
                            let len = item.as_str().map_or(0, str::len);
                            self.spans.push((u32_of(text_at + item.str_offset()), u32_of(len)));
                        }
                    }
                    _ => {}
                }
            }
        }
        let rec = &self.rec;
        let bytes = |&(off, len): &(u32, u32)| rec.get(off as usize..off as usize + len as usize);
        self.spans.sort_unstable_by(|a, b| bytes(a).cmp(&bytes(b)));
        self.spans.dedup_by(|a, b| bytes(a) == bytes(b));
        set(SCOPES, self.rec.len());
        set(SCOPES_N, self.spans.len());
        for &(off, len) in &self.spans {
            put_word(&mut self.rec, off);
            put_word(&mut self.rec, len);
        }

        // Header names and values, then their table.
        self.heads.clear();
        for (name, claim) in headers {
            let mark = self.rec.len();
            self.rec.extend_from_slice(name.as_bytes());
            let value_at = self.rec.len();
            if header_value(claim, &mut self.rec) {
                let value_len = self.rec.len() - value_at;
                self.heads.push([mark, name.len(), value_at, value_len].map(u32_of));
            } else {
                self.rec.truncate(mark);
            }
        }
        set(HEADERS, self.rec.len());
        set(HEADERS_N, self.heads.len());
        for head in &self.heads {
            for &w in head {
                put_word(&mut self.rec, w);
            }
        }

        // The token is the rest of the record.
        set(TOKEN, self.rec.len());
        self.rec.extend_from_slice(token);
        at
    }
}

/// Writes a claim as a header value onto `out`: strings as they are, numbers and booleans as
/// JSON, string arrays joined with commas. Anything empty, longer than 4 KiB or with a control
/// character is not sent (no header injection, whatever the issuer signed): `false`, with
/// `out` as it may have been left.
fn header_value(claim: Claim<'_>, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    match claim.json() {
        Json::Str(s) => out.extend_from_slice(s.as_bytes()),
        Json::Int(_) | Json::Uint(_) | Json::Double(_) => {
            let Some(n) = claim.number() else { return false };
            if write!(out, "{n}").is_err() {
                return false;
            }
        }
        Json::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Json::Array(a) => {
            for (i, item) in a.items().enumerate() {
                let Some(s) = item.as_str() else { return false };
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(s.as_bytes());
            }
        }
        _ => return false,
    }
    let value = out.get(start..).unwrap_or_default();
    !value.is_empty() && value.len() <= MAX_HEADER_VALUE && !value.iter().any(|&b| b < 0x20 || b == 0x7f)
}

/// A principal's scopes, sorted.
#[derive(Clone, Copy)]
pub struct Scopes<'a> {
    rec: &'a str,
    at: usize,
    n: usize,
}

impl<'a> Scopes<'a> {
    /// How many.
    pub fn len(self) -> usize {
        self.n
    }

    /// Whether there are none.
    pub fn is_empty(self) -> bool {
        self.n == 0
    }

    /// The scope at `i`.
    pub fn get(self, i: usize) -> Option<&'a str> {
        let at = self.at + 2 * WORD * i;
        (i < self.n).then(|| str_in(self.rec, read(self.rec, at), read(self.rec, at + WORD)))
    }

    /// The scopes in order.
    pub fn iter(self) -> impl Iterator<Item = &'a str> + Clone {
        (0..self.n).filter_map(move |i| self.get(i))
    }

    /// Whether `scope` is granted (a scan comparing lengths first while there are few, else a
    /// binary search).
    pub fn contains(self, scope: &str) -> bool {
        if self.n <= 8 {
            return (0..self.n).any(|i| {
                let at = self.at + 2 * WORD * i;
                read(self.rec, at + WORD) == scope.len()
                    && str_in(self.rec, read(self.rec, at), scope.len()) == scope
            });
        }
        let (mut lo, mut hi) = (0, self.n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).unwrap_or_default().cmp(scope) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn pieces_read_back() {
        let claims =
            json!({"sub": "alice", "scope": "b a  b", "scp": ["c", 1, "a"], "n": 7, "org": {"id": "x"}});
        let p = Principal::with_claims(PrincipalKind::Jwt, "alice", &claims);
        assert_eq!((p.id(), p.subject()), ("jwt alice", "alice"));
        assert_eq!(p.scopes().iter().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert!(p.scopes().contains("c") && !p.scopes().contains("d") && !p.scopes().contains(""));
        assert_eq!(p.claims().to_serde(), claims);
        assert_eq!(p.claims().at_path("org.id").unwrap().as_str(), Some("x"));
        assert!(p.token().is_empty() && !p.has_headers());

        let many: Vec<String> = (0..12).map(|i| format!("s{i:02}")).collect();
        let wide = Principal::with_claims(PrincipalKind::Jwt, "w", &json!({"scp": many}));
        assert!(many.iter().all(|s| wide.scopes().contains(s)), "past 8 scopes, a binary search");
        assert!(
            !wide.scopes().contains("s12") && !wide.scopes().contains("s0") && !wide.scopes().contains("")
        );

        let anon = Principal::anonymous();
        assert_eq!((anon.id(), anon.subject(), anon.scopes().len()), ("", "", 0));
        assert!(anon.claims().get("sub").is_none());
        let key = Principal::user(PrincipalKind::ApiKey, "ci");
        assert_eq!((key.id(), key.subject()), ("key ci", "ci"));
        let mtls = Principal::with_claims(PrincipalKind::Mtls, "svc", &json!({"scope": "x"}));
        assert!(mtls.scopes().is_empty(), "only a JWT's claims grant scopes");
    }

    #[test]
    fn headers_and_token() {
        let mut tape = Tape::default();
        tape.parse(br#"{"s":"v","n":-2.5,"b":true,"l":["x","y"],"m":["x",1],"c":"a\nb","e":""}"#, 8).unwrap();
        let root = tape.root();
        let wanted = ["s", "n", "b", "l", "m", "c", "e", "missing"];
        let heads = wanted.iter().filter_map(|k| root.get(k).map(|c| (*k, c)));
        let p = Principal::build(
            PrincipalKind::Jwt,
            &["jwt ", "iss", " ", "sub"],
            true,
            Some(&tape),
            heads,
            b"t.o.k",
        );
        let got: Vec<_> = p.headers().collect();
        assert_eq!(got, [("s", "v"), ("n", "-2.5"), ("b", "true"), ("l", "x,y")]);
        assert_eq!((p.id(), p.subject(), p.token()), ("jwt iss sub", "sub", &b"t.o.k"[..]));
        assert!(!format!("{p:?}").contains("t.o.k"), "the token is not printed");
    }
}
