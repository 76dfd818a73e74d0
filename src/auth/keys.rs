//! The authorization server's public signing keys, from its JWKS document (RFC 7517).

use super::ring_verify::{install_crypto_provider, key_is_valid};
use super::TokenError;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};
use serde::Deserialize;
use std::fmt;

/// The largest JWKS document read. A provider publishes a handful of keys (about 1.5 KiB for
/// two RSA-2048 keys); the bound keeps a hostile or broken endpoint from costing memory.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;

/// The most keys a JWKS document may list (usable or not).
pub const MAX_KEYS: usize = 16;

/// Why a JWKS document was refused as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeysError {
    /// Longer than [`MAX_JWKS_BYTES`].
    TooLarge,
    /// More than [`MAX_KEYS`] entries.
    TooManyKeys,
    /// Not a JSON object with a `keys` array.
    NotAJwks,
    /// No entry is a usable signature-verification key.
    NoUsableKey,
    /// jsonwebtoken has no crypto provider, so verifying would panic and no key set is made.
    /// Not expected: loading a key set installs ringmcp's own provider first when none is.
    NoCryptoProvider,
}

impl fmt::Display for KeysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeysError::TooLarge => "JWKS document too large",
            KeysError::TooManyKeys => "JWKS document lists too many keys",
            KeysError::NotAJwks => "not a JWKS document",
            KeysError::NoUsableKey => "JWKS document has no usable signing key",
            KeysError::NoCryptoProvider => "jsonwebtoken has no crypto provider",
        })
    }
}

impl std::error::Error for KeysError {}

/// What a key can verify: the algorithm family, and for elliptic curves the curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    /// `kty: RSA`: RS256/384/512 and PS256/384/512.
    Rsa,
    /// `kty: EC`, `crv: P-256`: ES256.
    P256,
    /// `kty: EC`, `crv: P-384`: ES384.
    P384,
    /// `kty: OKP`, `crv: Ed25519`: EdDSA.
    Ed25519,
}

impl KeyType {
    /// Whether a key of this type verifies `alg` (RFC 7518 §3.4: ES256 is "ECDSA using
    /// P-256 and SHA-256", ES384 "P-384 and SHA-384"; RFC 8037 §3.1: EdDSA over Ed25519).
    fn fits(self, alg: Algorithm) -> bool {
        match self {
            KeyType::Rsa => alg.family() == AlgorithmFamily::Rsa,
            KeyType::P256 => alg == Algorithm::ES256,
            KeyType::P384 => alg == Algorithm::ES384,
            KeyType::Ed25519 => alg == Algorithm::EdDSA,
        }
    }

    /// An algorithm this key type verifies, to check the key once at load time.
    fn some_algorithm(self) -> Algorithm {
        match self {
            KeyType::Rsa => Algorithm::RS256,
            KeyType::P256 => Algorithm::ES256,
            KeyType::P384 => Algorithm::ES384,
            KeyType::Ed25519 => Algorithm::EdDSA,
        }
    }
}

/// One usable key.
#[derive(Debug, Clone)]
struct Key {
    /// The JWK's `kid`.
    kid: Option<String>,
    /// The JWK's `alg`, when it names one.
    alg: Option<Algorithm>,
    /// What it can verify.
    kind: KeyType,
    /// The key itself, as jsonwebtoken takes it.
    decoding: DecodingKey,
}

/// The usable keys of a JWKS document, looked up by `kid`.
#[derive(Debug, Clone)]
pub struct KeySet {
    /// The usable keys, in document order.
    keys: Vec<Key>,
    /// How many entries were not usable.
    ignored: usize,
}

/// `{"keys": [...]}`; each entry is read on its own so one odd key does not sink the rest.
#[derive(Deserialize)]
struct JwkSetDocument {
    /// The entries, parsed one by one later.
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    /// The usable keys of a JWKS document.
    ///
    /// Usable means: an RSA (2048 to 4096 bits), P-256, P-384 or Ed25519 public key whose
    /// `use`, `key_ops` and `alg`, when present, allow verifying signatures with an
    /// algorithm it fits, and which the crypto backend accepts. Other entries are counted in
    /// [`KeySet::ignored`]: encryption keys, unknown key types, and symmetric (`oct`) keys
    /// above all, since an HMAC key from a public document is the key-confusion forgery.
    pub fn from_jwks(json: &[u8]) -> Result<KeySet, KeysError> {
        if json.len() > MAX_JWKS_BYTES {
            return Err(KeysError::TooLarge);
        }
        let provider = install_crypto_provider().ok_or(KeysError::NoCryptoProvider)?;
        let document: JwkSetDocument =
            serde_json::from_slice(json).map_err(|_| KeysError::NotAJwks)?;
        if document.keys.len() > MAX_KEYS {
            return Err(KeysError::TooManyKeys);
        }
        let entries = document.keys.len();
        let keys: Vec<Key> = document
            .keys
            .into_iter()
            .filter_map(|entry| serde_json::from_value::<Jwk>(entry).ok())
            .filter_map(usable_key)
            .filter(|key| {
                let alg = key.kind.some_algorithm();
                key_is_valid(alg, &key.decoding)
                    && (provider.verifier_factory)(&alg, &key.decoding).is_ok()
            })
            .collect();
        if keys.is_empty() {
            return Err(KeysError::NoUsableKey);
        }
        Ok(KeySet {
            ignored: entries - keys.len(),
            keys,
        })
    }

    /// The key that verifies a token with header `kid` and `alg`.
    ///
    /// [`TokenError::UnknownKey`] when no key has that `kid` (the set may be stale: fetch it
    /// again); [`TokenError::KeyMismatch`] when keys with that `kid` exist but none fits `alg`.
    /// A token without a `kid` is matched only if exactly one key fits its algorithm.
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Result<&DecodingKey, TokenError> {
        // RFC 7517 §4.4: "When used with JWS or JWE, the "alg" value MUST match the "alg"
        // Header Parameter value" (here: when the JWK names one).
        let fits = |key: &&Key| key.kind.fits(alg) && key.alg.is_none_or(|a| a == alg);
        match kid {
            Some(kid) => {
                let mut named = self
                    .keys
                    .iter()
                    .filter(|key| key.kid.as_deref() == Some(kid))
                    .peekable();
                if named.peek().is_none() {
                    return Err(TokenError::UnknownKey);
                }
                named
                    .find(fits)
                    .map(|key| &key.decoding)
                    .ok_or(TokenError::KeyMismatch)
            }
            None => {
                let mut fitting = self.keys.iter().filter(fits);
                match (fitting.next(), fitting.next()) {
                    (Some(key), None) => Ok(&key.decoding),
                    _ => Err(TokenError::UnknownKey),
                }
            }
        }
    }

    /// How many usable keys the set holds (at least one).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no key; never true, since such a document is refused.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many entries of the document were left out as unusable.
    pub fn ignored(&self) -> usize {
        self.ignored
    }
}

/// The JWK as a usable verification key, or `None`.
fn usable_key(jwk: Jwk) -> Option<Key> {
    // RFC 7517 §4.2: ""sig" (signature)", ""enc" (encryption)".
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return None;
    }
    // RFC 7517 §4.3: ""verify" (verify digital signature or MAC)".
    if jwk
        .common
        .key_operations
        .as_ref()
        .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
    {
        return None;
    }
    let alg = match jwk.common.key_algorithm {
        // An `alg` that is not a JWS algorithm (RSA-OAEP, ...) makes it no signing key.
        Some(alg) => Some(Algorithm::try_from(alg).ok()?),
        None => None,
    };
    let kind = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => KeyType::Rsa,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => KeyType::P256,
            EllipticCurve::P384 => KeyType::P384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            KeyType::Ed25519
        }
        // `oct` (a shared secret), other curves and unknown key types.
        _ => return None,
    };
    if alg.is_some_and(|alg| !kind.fits(alg)) {
        return None;
    }
    let decoding = DecodingKey::from_jwk(&jwk).ok()?;
    if let DecodingKeyKind::RsaModulusExponent { n, .. } = decoding.kind() {
        // RFC 7518 §3.3: "A key of size 2048 bits or larger MUST be used with these
        // algorithms." Above 4096 bits the rsa crate refuses the key when verifying.
        let bits = n
            .iter()
            .position(|&b| b != 0)
            .map_or(0, |at| (n.len() - at) * 8 - n[at].leading_zeros() as usize);
        if !(2048..=4096).contains(&bits) {
            return None;
        }
    }
    Some(Key {
        kid: jwk.common.key_id,
        alg,
        kind,
        decoding,
    })
}
