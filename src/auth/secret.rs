//! API keys and basic-auth passwords, compared without timing leaks.
//!
//! At load each secret becomes an HMAC-SHA256 tag under a random per-process key; the secret
//! itself is not kept. A presented API key is tagged and looked up by tag (a lookup that leaks
//! timing about an unpredictable tag leaks nothing about the secret). A basic password is
//! checked with `ring::hmac::verify`, a constant-time comparison, and an unknown user costs the
//! same as a wrong password.

use ring::hmac;
use ring::rand::SystemRandom;
use rustc_hash::FxHashMap;

/// Named secrets (API keys by id, or basic users by name).
pub struct Secrets {
    key: hmac::Key,
    /// API keys: tag -> key id.
    by_tag: FxHashMap<[u8; 32], Box<str>>,
    /// Basic users: name -> tag of the password.
    by_name: FxHashMap<Box<str>, [u8; 32]>,
    /// Compared against when the user is unknown.
    dummy: [u8; 32],
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} entries, redacted)", self.by_tag.len().max(self.by_name.len()))
    }
}

fn tag(key: &hmac::Key, secret: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(hmac::sign(key, secret).as_ref());
    out
}

impl Secrets {
    /// Tags `entries` (`(name, secret)`).
    pub fn new<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Secrets, String> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .map_err(|_| "the system random source failed".to_string())?;
        let dummy = tag(&key, b"portcullis: no such user");
        let mut s = Secrets { key, by_tag: FxHashMap::default(), by_name: FxHashMap::default(), dummy };
        for (name, secret) in entries {
            let t = tag(&s.key, secret.as_bytes());
            s.by_tag.insert(t, name.into());
            s.by_name.insert(name.into(), t);
        }
        Ok(s)
    }

    /// The id of the API key `presented`, if it is one.
    pub fn key_id(&self, presented: &[u8]) -> Option<&str> {
        self.by_tag.get(&tag(&self.key, presented)).map(|id| &**id)
    }

    /// Whether `user` exists and `password` is theirs.
    pub fn check_password(&self, user: &[u8], password: &[u8]) -> bool {
        let known = std::str::from_utf8(user).ok().and_then(|u| self.by_name.get(u));
        let ok = hmac::verify(&self.key, password, known.unwrap_or(&self.dummy)).is_ok();
        ok && known.is_some()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_and_passwords() {
        let s = Secrets::new([("ci", "k-123"), ("ops", "k-456")]).unwrap();
        assert_eq!(s.key_id(b"k-123"), Some("ci"));
        assert_eq!(s.key_id(b"k-456"), Some("ops"));
        assert_eq!(s.key_id(b"k-12"), None);
        assert_eq!(s.key_id(b""), None);
        assert!(s.check_password(b"ci", b"k-123"));
        assert!(!s.check_password(b"ci", b"k-456"));
        assert!(!s.check_password(b"nobody", b"k-123"));
        assert!(!format!("{s:?}").contains("k-123"));
    }
}
