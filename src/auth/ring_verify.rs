//! jsonwebtoken's signature checks done by ring, which the process already links for TLS.
//!
//! jsonwebtoken 12 delegates its cryptography to a process-wide [`CryptoProvider`]. Its
//! RustCrypto provider verifies an ES256 token in about 300 µs and an RS256 one in about
//! 80 µs; ring does the same in a fraction of that. Only verification moves to ring: signing
//! (which this server never does; the tests mint tokens) and the JWK utilities stay with
//! RustCrypto.

use jsonwebtoken::crypto::{rust_crypto, CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{Error as SignatureError, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::signature::{
    RsaParameters, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm,
    ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256,
    RSA_PKCS1_2048_8192_SHA384, RSA_PKCS1_2048_8192_SHA512, RSA_PSS_2048_8192_SHA256,
    RSA_PSS_2048_8192_SHA384, RSA_PSS_2048_8192_SHA512,
};

/// ring verifies, RustCrypto signs and serves the JWK utilities.
pub(super) static RING_PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: rust_crypto_signer,
    verifier_factory: ring_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: |der| {
            (rust_crypto::DEFAULT_PROVIDER
                .key_utils
                .rsa_pub_components_from_private_key)(der)
        },
        rsa_pub_components_from_public_key: |der| {
            (rust_crypto::DEFAULT_PROVIDER
                .key_utils
                .rsa_pub_components_from_public_key)(der)
        },
        ec_pub_components_from_private_key: |der, alg| {
            (rust_crypto::DEFAULT_PROVIDER
                .key_utils
                .ec_pub_components_from_private_key)(der, alg)
        },
        ed_pub_components_from_private_key: |der, curve| {
            (rust_crypto::DEFAULT_PROVIDER
                .key_utils
                .ed_pub_components_from_private_key)(der, curve)
        },
        compute_digest: |data, hash| {
            (rust_crypto::DEFAULT_PROVIDER.key_utils.compute_digest)(data, hash)
        },
    },
};

/// Makes `RING_PROVIDER` jsonwebtoken's provider for this process, unless one is fixed
/// already, and returns the provider in force.
///
/// Idempotent and cheap after the first call. The provider is fixed by the first
/// `install_default`, and also by the first `encode`, `decode` or JWK helper that finds none
/// installed (it then takes the crate feature's, RustCrypto); so this must run before
/// those, which [`KeySet::from_jwks`](super::KeySet::from_jwks) makes sure of for the
/// server. If something else came first its provider stays: it verifies correctly, only
/// slower.
pub fn install_crypto_provider() -> Option<&'static CryptoProvider> {
    // `Err` means a provider was fixed before: ours from an earlier call, or another.
    let _ = RING_PROVIDER.install_default();
    CryptoProvider::try_get_default()
}

/// Whether the key is well formed for `alg`, checked once when a key set is loaded.
///
/// ring parses a public key only when it verifies, and cannot tell a bad key from a bad
/// signature; RustCrypto's verifier parses the key up front (an EC point off its curve, an
/// Ed25519 point that does not decompress), so it judges the key at load time.
pub(super) fn key_is_valid(alg: Algorithm, key: &DecodingKey) -> bool {
    (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(&alg, key).is_ok()
}

/// Signing is left to RustCrypto.
fn rust_crypto_signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    (rust_crypto::DEFAULT_PROVIDER.signer_factory)(alg, key)
}

/// A verifier for `alg` with `key`, checked with ring.
fn ring_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let rsa = |params: &'static RsaParameters| RingKey::Rsa(params);
    let (family, ring_alg) = match alg {
        // RFC 8725 §3.1: the caller fixes the algorithms; ringmcp's allow-list never holds an
        // HMAC one (a public JWKS has no shared secret), so none is verified here either, nor
        // an algorithm a later jsonwebtoken adds.
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            return Err(ErrorKind::InvalidAlgorithm.into())
        }
        Algorithm::RS256 => (AlgorithmFamily::Rsa, rsa(&RSA_PKCS1_2048_8192_SHA256)),
        Algorithm::RS384 => (AlgorithmFamily::Rsa, rsa(&RSA_PKCS1_2048_8192_SHA384)),
        Algorithm::RS512 => (AlgorithmFamily::Rsa, rsa(&RSA_PKCS1_2048_8192_SHA512)),
        Algorithm::PS256 => (AlgorithmFamily::Rsa, rsa(&RSA_PSS_2048_8192_SHA256)),
        Algorithm::PS384 => (AlgorithmFamily::Rsa, rsa(&RSA_PSS_2048_8192_SHA384)),
        Algorithm::PS512 => (AlgorithmFamily::Rsa, rsa(&RSA_PSS_2048_8192_SHA512)),
        // RFC 7518 §3.4: the JWS signature is "the concatenation of the two unsigned integers"
        // R and S, not DER: ring's FIXED encoding.
        Algorithm::ES256 => (
            AlgorithmFamily::Ec,
            RingKey::Other(&ECDSA_P256_SHA256_FIXED),
        ),
        Algorithm::ES384 => (
            AlgorithmFamily::Ec,
            RingKey::Other(&ECDSA_P384_SHA384_FIXED),
        ),
        Algorithm::EdDSA => (AlgorithmFamily::Ed, RingKey::Other(&ED25519)),
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    if key.family() != family {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    // What jsonwebtoken holds for each family: RSA as (n, e) from a JWK or a PKCS#1
    // RSAPublicKey DER; EC as the SEC1 uncompressed point (0x04 || X || Y); Ed25519 as the
    // 32 public bytes. These are the forms ring reads.
    let public = match (ring_alg, key.kind()) {
        (RingKey::Rsa(params), DecodingKeyKind::RsaModulusExponent { n, e }) => {
            PublicKey::RsaComponents {
                params,
                components: RsaPublicKeyComponents {
                    n: n.clone(),
                    e: e.clone(),
                },
            }
        }
        (RingKey::Rsa(params), DecodingKeyKind::SecretOrDer(der)) => {
            PublicKey::Unparsed(UnparsedPublicKey::new(params, der.clone()))
        }
        (RingKey::Other(verification), DecodingKeyKind::SecretOrDer(bytes)) => {
            PublicKey::Unparsed(UnparsedPublicKey::new(verification, bytes.clone()))
        }
        (RingKey::Other(_), DecodingKeyKind::RsaModulusExponent { .. }) => {
            return Err(ErrorKind::InvalidKeyFormat.into())
        }
    };
    Ok(Box::new(RingVerifier { alg: *alg, public }))
}

/// ring's algorithm, as the two key forms need it.
#[derive(Clone, Copy)]
enum RingKey {
    /// RSA, which also takes (n, e) components.
    Rsa(&'static RsaParameters),
    /// ECDSA or EdDSA, from the key's bytes.
    Other(&'static dyn VerificationAlgorithm),
}

/// A public key ring verifies with.
enum PublicKey {
    /// An RSA key as its modulus and exponent.
    RsaComponents {
        /// Padding, hash and the accepted modulus sizes.
        params: &'static RsaParameters,
        /// Big-endian n and e.
        components: RsaPublicKeyComponents<Vec<u8>>,
    },
    /// Any key as bytes ring parses when it verifies.
    Unparsed(UnparsedPublicKey<Vec<u8>>),
}

/// jsonwebtoken's verifier for one algorithm and key.
struct RingVerifier {
    /// The algorithm it verifies.
    alg: Algorithm,
    /// The key.
    public: PublicKey,
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), SignatureError> {
        match &self.public {
            PublicKey::RsaComponents { params, components } => {
                components.verify(params, msg, signature)
            }
            PublicKey::Unparsed(key) => key.verify(msg, signature),
        }
        .map_err(|_| SignatureError::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::tests::{encoding_key, jwk};
    use jsonwebtoken::jwk::Jwk;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, RsaKeyPair, ECDSA_P384_SHA384_FIXED_SIGNING};

    const MESSAGE: &[u8] = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJyaW5nIn0";

    /// `alg`'s signature over [`MESSAGE`] made by RustCrypto with `private`.
    fn signature(alg: Algorithm, private: &EncodingKey) -> Vec<u8> {
        (RING_PROVIDER.signer_factory)(&alg, private)
            .expect("signer")
            .try_sign(MESSAGE)
            .expect("signed")
    }

    /// Whether ring, through the provider, accepts `signature` by `public` for `alg`.
    fn verifies(alg: Algorithm, public: &DecodingKey, signature: &[u8]) -> bool {
        (RING_PROVIDER.verifier_factory)(&alg, public)
            .expect("verifier")
            .verify(MESSAGE, &signature.to_vec())
            .is_ok()
    }

    /// A good signature passes; one flipped bit, in the first or the last byte, fails.
    fn check(alg: Algorithm, private: &EncodingKey, public: &DecodingKey) {
        let good = signature(alg, private);
        assert!(
            verifies(alg, public, &good),
            "{alg:?}: good signature refused"
        );
        for at in [0, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 1;
            assert!(
                !verifies(alg, public, &bad),
                "{alg:?}: bad signature accepted"
            );
        }
        assert!(
            !verifies(alg, public, &good[1..]),
            "{alg:?}: short signature"
        );
    }

    /// The public half of a test key, read back from its JWK as the key set does.
    fn public_from_jwk(alg: Algorithm) -> DecodingKey {
        let jwk: Jwk = serde_json::from_value(jwk(alg, "k")).expect("JWK");
        DecodingKey::from_jwk(&jwk).expect("decoding key")
    }

    #[test]
    fn rsa_pkcs1_and_pss_verify_from_components_and_from_der() {
        let private = encoding_key(Algorithm::RS256);
        let from_jwk = public_from_jwk(Algorithm::RS256);
        assert!(matches!(
            from_jwk.kind(),
            DecodingKeyKind::RsaModulusExponent { .. }
        ));
        let pair = RsaKeyPair::from_der(include_bytes!("testdata/rsa2048-pkcs1.der"))
            .expect("test RSA key");
        let from_der = DecodingKey::from_rsa_der(pair.public_key().as_ref());
        for alg in [
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ] {
            check(alg, &private, &from_jwk);
            check(alg, &private, &from_der);
        }
    }

    #[test]
    fn es256_verifies() {
        let public = public_from_jwk(Algorithm::ES256);
        check(Algorithm::ES256, &encoding_key(Algorithm::ES256), &public);
    }

    #[test]
    fn es384_verifies() {
        // No P-384 key in testdata: ring makes one (PKCS#8, which RustCrypto signs with).
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &SystemRandom::new())
                .expect("P-384 key");
        let private = EncodingKey::from_ec_der(pkcs8.as_ref());
        let jwk = Jwk::from_encoding_key(&private, Algorithm::ES384).expect("public half");
        let public = DecodingKey::from_jwk(&jwk).expect("decoding key");
        check(Algorithm::ES384, &private, &public);
    }

    #[test]
    fn eddsa_verifies() {
        let public = public_from_jwk(Algorithm::EdDSA);
        check(Algorithm::EdDSA, &encoding_key(Algorithm::EdDSA), &public);
    }

    #[test]
    fn hmac_and_keys_of_another_family_are_refused() {
        let secret = DecodingKey::from_secret(b"a shared secret of 32 bytes.....").expect("key");
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let refused = (RING_PROVIDER.verifier_factory)(&alg, &secret).err();
            assert!(matches!(
                refused.map(|e| e.into_kind()),
                Some(ErrorKind::InvalidAlgorithm)
            ));
        }
        let rsa = public_from_jwk(Algorithm::RS256);
        let ec = public_from_jwk(Algorithm::ES256);
        let ed = public_from_jwk(Algorithm::EdDSA);
        for (alg, key) in [
            (Algorithm::ES256, &rsa),
            (Algorithm::EdDSA, &ec),
            (Algorithm::RS256, &ed),
        ] {
            let refused = (RING_PROVIDER.verifier_factory)(&alg, key).err();
            assert!(
                matches!(
                    refused.map(|e| e.into_kind()),
                    Some(ErrorKind::InvalidKeyFormat)
                ),
                "{alg:?}"
            );
        }
        // A P-256 point for ES384 is of the right family: ring refuses it when verifying.
        let p256_signature = signature(Algorithm::ES256, &encoding_key(Algorithm::ES256));
        assert!(!verifies(Algorithm::ES384, &ec, &p256_signature));
    }

    #[test]
    fn ring_is_the_process_provider() {
        let installed = install_crypto_provider().expect("a provider");
        assert!(std::ptr::eq(installed, &RING_PROVIDER));
    }
}
