//! JSON Web Keys (RFC 7517, RFC 7518 section 6, RFC 8037) parsed once into the exact bytes ring
//! verifies with, and the JWS algorithms (RFC 7518 section 3) mapped onto ring.
//!
//! A key set is parsed at config load (`file`, `inline`) or after a fetch (`uri`), never per
//! request. A key that cannot be used safely is left out with a reason: RSA under 2048 bits,
//! an EC point of the wrong size, an `oct` key shorter than the hash it would key, a key marked
//! for encryption (`use: enc`), private key members in a public set, or a `kid` already taken
//! (a `kid` must select exactly one key).

use ring::{hmac, signature};

use crate::auth::strict;

/// The JWS algorithms the gateway verifies. `none` is not one of them, in any spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// ECDSA P-384 with SHA-384.
    ES384,
    /// Ed25519 (RFC 8037).
    EdDSA,
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
}

impl Alg {
    /// Every algorithm, for "no allow-list configured".
    pub const ALL: [Alg; 12] = [
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::EdDSA,
        Alg::HS256,
        Alg::HS384,
        Alg::HS512,
    ];

    /// The registered name, case-sensitive as RFC 7515 requires (`rs256` is not `RS256`).
    pub fn parse(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
        }
    }

    fn hmac_index(self) -> Option<usize> {
        match self {
            Alg::HS256 => Some(0),
            Alg::HS384 => Some(1),
            Alg::HS512 => Some(2),
            _ => None,
        }
    }
}

/// An EC curve the gateway verifies on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256 (ES256).
    P256,
    /// NIST P-384 (ES384).
    P384,
}

/// The verification material of one key.
#[derive(Clone)]
pub enum Material {
    /// RSA modulus and exponent, big-endian without leading zeros.
    Rsa {
        /// Modulus.
        n: Box<[u8]>,
        /// Public exponent.
        e: Box<[u8]>,
    },
    /// An uncompressed EC point `0x04 || x || y`.
    Ec {
        /// Curve.
        curve: Curve,
        /// Point.
        point: Box<[u8]>,
    },
    /// An Ed25519 public key.
    Ed25519 {
        /// The 32-byte key.
        x: Box<[u8]>,
    },
    /// A shared secret, keyed once for each HMAC hash it is long enough for (HS256, HS384,
    /// HS512 in that order).
    Oct {
        /// `None` where the secret is shorter than the hash output (RFC 7518 3.2).
        keys: Box<[Option<hmac::Key>; 3]>,
        /// A fingerprint of the secret, to notice a changed key set without keeping the bytes.
        fingerprint: [u8; 32],
    },
}

impl Material {
    /// Whether this key can verify `alg` at all.
    pub fn fits(&self, alg: Alg) -> bool {
        match self {
            Material::Rsa { .. } => {
                matches!(alg, Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512)
            }
            Material::Ec { curve: Curve::P256, .. } => alg == Alg::ES256,
            Material::Ec { curve: Curve::P384, .. } => alg == Alg::ES384,
            Material::Ed25519 { .. } => alg == Alg::EdDSA,
            Material::Oct { keys, .. } => alg.hmac_index().is_some_and(|i| keys[i].is_some()),
        }
    }

    /// Checks `signature` over `message` with `alg` (which the caller matched with [`fits`]).
    ///
    /// [`fits`]: Material::fits
    pub fn verify(&self, alg: Alg, message: &[u8], sig: &[u8]) -> bool {
        match self {
            Material::Rsa { n, e } => {
                let params: &signature::RsaParameters = match alg {
                    Alg::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    Alg::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    Alg::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    Alg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                    Alg::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
                    Alg::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
                    _ => return false,
                };
                signature::RsaPublicKeyComponents { n: &n[..], e: &e[..] }
                    .verify(params, message, sig)
                    .is_ok()
            }
            Material::Ec { curve, point } => {
                let algorithm: &dyn signature::VerificationAlgorithm = match (curve, alg) {
                    (Curve::P256, Alg::ES256) => &signature::ECDSA_P256_SHA256_FIXED,
                    (Curve::P384, Alg::ES384) => &signature::ECDSA_P384_SHA384_FIXED,
                    _ => return false,
                };
                signature::UnparsedPublicKey::new(algorithm, &point[..]).verify(message, sig).is_ok()
            }
            Material::Ed25519 { x } => {
                alg == Alg::EdDSA
                    && signature::UnparsedPublicKey::new(&signature::ED25519, &x[..])
                        .verify(message, sig)
                        .is_ok()
            }
            Material::Oct { keys, .. } => match alg.hmac_index().and_then(|i| keys[i].as_ref()) {
                // ring compares the tags in constant time.
                Some(k) => hmac::verify(k, message, sig).is_ok(),
                None => false,
            },
        }
    }

    /// Bytes that identify the public material (for `oct`, a digest of the secret).
    fn identity(&self) -> Vec<u8> {
        match self {
            Material::Rsa { n, e } => [&b"RSA"[..], n, b"|", e].concat(),
            Material::Ec { point, .. } => [&b"EC"[..], point].concat(),
            Material::Ed25519 { x } => [&b"OKP"[..], x].concat(),
            Material::Oct { fingerprint, .. } => [&b"oct"[..], fingerprint].concat(),
        }
    }
}

/// One usable key.
#[derive(Clone)]
pub struct Key {
    /// `kid`.
    pub kid: Option<Box<str>>,
    /// `alg`, when the key names the one algorithm it is for.
    pub alg: Option<Alg>,
    /// What verifies.
    pub material: Material,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kty = match self.material {
            Material::Rsa { .. } => "RSA",
            Material::Ec { .. } => "EC",
            Material::Ed25519 { .. } => "OKP",
            Material::Oct { .. } => "oct (secret redacted)",
        };
        write!(f, "Key {{ kid: {:?}, alg: {:?}, kty: {kty} }}", self.kid, self.alg)
    }
}

impl Key {
    /// Whether this key may verify a token signed with `alg`.
    pub fn accepts(&self, alg: Alg) -> bool {
        self.alg.is_none_or(|a| a == alg) && self.material.fits(alg)
    }
}

/// A parsed JWKS.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    /// The usable keys, in document order.
    pub keys: Vec<Key>,
}

impl KeySet {
    /// Parses a JWKS document. Returns the usable keys and, for each key left out, why (with
    /// its index); an error when the document itself is not a JWKS.
    pub fn parse(json: &[u8]) -> Result<(KeySet, Vec<String>), String> {
        let doc = strict::parse(json, 16).map_err(|e| format!("not a JWKS document: {e}"))?;
        KeySet::from_value(&doc)
    }

    /// [`KeySet::parse`] over an already-parsed document (config `inline`).
    pub fn from_value(doc: &serde_json::Value) -> Result<(KeySet, Vec<String>), String> {
        let keys = doc
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or_else(|| "not a JWKS document: no \"keys\" array".to_string())?;
        let mut set = KeySet::default();
        let mut problems = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            match parse_key(k) {
                Ok(Some(key)) => {
                    if key.kid.is_some() && set.keys.iter().any(|o| o.kid == key.kid) {
                        problems.push(format!(
                            "keys[{i}]: duplicate kid {:?} (a kid must select one key)",
                            key.kid
                        ));
                    } else {
                        set.keys.push(key);
                    }
                }
                Ok(None) => {}
                Err(e) => problems.push(format!("keys[{i}]: {e}")),
            }
        }
        Ok((set, problems))
    }

    /// Whether two sets hold the same keys (a refetch that changed nothing keeps cached tokens).
    pub fn same_keys(&self, other: &KeySet) -> bool {
        self.keys.len() == other.keys.len()
            && self.keys.iter().zip(&other.keys).all(|(a, b)| {
                a.kid == b.kid && a.alg == b.alg && a.material.identity() == b.material.identity()
            })
    }
}

fn b64(v: &serde_json::Value, member: &str) -> Result<Vec<u8>, String> {
    let s = v.get(member).and_then(|m| m.as_str()).ok_or_else(|| format!("missing \"{member}\""))?;
    base64_simd::URL_SAFE_NO_PAD
        .decode_to_vec(s.as_bytes())
        .map_err(|_| format!("\"{member}\" is not unpadded base64url"))
}

/// One JWK: `Ok(None)` for a key that is not for signatures (`use: enc`), which is skipped
/// silently as RFC 7517 intends.
fn parse_key(k: &serde_json::Value) -> Result<Option<Key>, String> {
    if !k.is_object() {
        return Err("not a JSON object".into());
    }
    let text = |m: &str| -> Result<Option<&str>, String> {
        match k.get(m) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("\"{m}\" must be a string")),
        }
    };
    if text("use")?.is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    if let Some(ops) = k.get("key_ops") {
        let ops = ops.as_array().ok_or("\"key_ops\" must be an array")?;
        if !ops.iter().any(|o| o.as_str() == Some("verify")) {
            return Ok(None);
        }
    }
    let kid = text("kid")?.map(Box::<str>::from);
    let alg = match text("alg")? {
        None => None,
        Some(a) => Some(Alg::parse(a).ok_or_else(|| format!("unsupported alg {a:?}"))?),
    };
    let kty = text("kty")?.ok_or("missing \"kty\"")?;
    let private = |members: &[&str]| -> Result<(), String> {
        match members.iter().find(|m| k.get(**m).is_some()) {
            Some(m) => Err(format!("private key member \"{m}\" in a public key set")),
            None => Ok(()),
        }
    };
    let material = match kty {
        "RSA" => {
            private(&["d", "p", "q", "dp", "dq", "qi", "oth"])?;
            let n = strip_zeros(b64(k, "n")?);
            let e = strip_zeros(b64(k, "e")?);
            let bits = n.first().map_or(0, |&b| (n.len() - 1) * 8 + (8 - b.leading_zeros() as usize));
            if !(2048..=8192).contains(&bits) {
                return Err(format!("RSA modulus of {bits} bits (2048 to 8192 accepted)"));
            }
            if e.is_empty() || e.len() > 4 || e[e.len() - 1] & 1 == 0 {
                return Err("RSA exponent must be odd and at most 32 bits".into());
            }
            Material::Rsa { n: n.into(), e: e.into() }
        }
        "EC" => {
            private(&["d"])?;
            let (curve, len) = match text("crv")? {
                Some("P-256") => (Curve::P256, 32),
                Some("P-384") => (Curve::P384, 48),
                other => return Err(format!("unsupported EC curve {other:?} (P-256, P-384)")),
            };
            let (x, y) = (b64(k, "x")?, b64(k, "y")?);
            if x.len() != len || y.len() != len {
                return Err(format!("EC coordinates must be {len} bytes each"));
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Material::Ec { curve, point: point.into() }
        }
        "OKP" => {
            private(&["d"])?;
            if text("crv")? != Some("Ed25519") {
                return Err("unsupported OKP curve (Ed25519 only)".into());
            }
            let x = b64(k, "x")?;
            if x.len() != 32 {
                return Err("Ed25519 key must be 32 bytes".into());
            }
            Material::Ed25519 { x: x.into() }
        }
        "oct" => {
            let secret = b64(k, "k")?;
            if secret.len() < 32 {
                return Err("oct key shorter than 256 bits".into());
            }
            let key_for = |alg, len| (secret.len() >= len).then(|| hmac::Key::new(alg, &secret));
            let digest = ring::digest::digest(&ring::digest::SHA256, &secret);
            let mut fingerprint = [0u8; 32];
            fingerprint.copy_from_slice(digest.as_ref());
            Material::Oct {
                keys: Box::new([
                    key_for(hmac::HMAC_SHA256, 32),
                    key_for(hmac::HMAC_SHA384, 48),
                    key_for(hmac::HMAC_SHA512, 64),
                ]),
                fingerprint,
            }
        }
        other => return Err(format!("unsupported kty {other:?}")),
    };
    if let Some(a) = alg {
        if !material.fits(a) {
            return Err(format!("alg {} does not fit a {kty} key", a.as_str()));
        }
    }
    Ok(Some(Key { kid, alg, material }))
}

fn strip_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let lead = v.iter().take_while(|&&b| b == 0).count();
    v.drain(..lead);
    v
}
