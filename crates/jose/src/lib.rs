//! JWT signing and verification for the workspace, backed by ring and free of the `rsa` crate.
//!
//! `jsonwebtoken` is built without a crypto backend (its `rust_crypto` backend signs RSA through the
//! `rsa` crate, RUSTSEC-2023-0071); [`install_provider`] installs a ring-based provider in its place,
//! covering HS256/384/512, RS256/384/512, PS256/384/512, ES256/384 and EdDSA (Ed25519), and its JWK
//! helpers. Call it once before any `jsonwebtoken` call (it is idempotent, so every test may call it).
//! [`RsaSigningKey`] is an RS256 signing key read from PEM that publishes its public JWK under an
//! RFC 7638 thumbprint `kid`, as an OpenID Connect provider needs.

mod der;
mod provider;

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, Jwk, KeyAlgorithm, PublicKeyUse, RSAKeyParameters, RSAKeyType,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents};
use serde::Serialize;

/// Smallest RSA modulus accepted for signing, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted for signing, in bits (ring's limit for private keys).
pub const MAX_RSA_BITS: usize = 4096;

/// Installs the ring provider as `jsonwebtoken`'s process-wide default.
///
/// Idempotent and cheap: call it at start-up and from every test that touches `jsonwebtoken`.
///
/// # Panics
/// If another provider was installed first, including the placeholder `jsonwebtoken` falls back to
/// when it is used before any provider is installed (every later signature would panic anyway).
pub fn install_provider() {
    if let Err(installed) = provider::RING_PROVIDER.install_default()
        && !std::ptr::eq(installed, &provider::RING_PROVIDER)
    {
        panic!(
            "another jsonwebtoken crypto provider was installed before jose::install_provider(); \
             call it before the first jsonwebtoken call"
        );
    }
}

/// Why a signing key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not a PEM-encoded RSA private key (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`).
    #[error("not a PEM-encoded RSA private key (PKCS#1 or PKCS#8)")]
    NotRsaPrivateKey,
    /// The modulus is shorter than [`MIN_RSA_BITS`].
    #[error("the RSA key has {bits} bits; at least {MIN_RSA_BITS} are required")]
    TooSmall {
        /// The key's modulus length in bits.
        bits: usize,
    },
    /// The modulus is longer than [`MAX_RSA_BITS`].
    #[error("the RSA key has {bits} bits; at most {MAX_RSA_BITS} are supported")]
    TooLarge {
        /// The key's modulus length in bits.
        bits: usize,
    },
    /// ring refused the key (inconsistent components, a small public exponent, ...).
    #[error("the RSA key was refused: {0}")]
    Rejected(String),
}

/// An RS256 signing key with its public JWK, identified by its RFC 7638 thumbprint.
pub struct RsaSigningKey {
    key_pair: RsaKeyPair,
    /// SHA-256 of the private key's DER: the input of [`RsaSigningKey::derive_secret`].
    secret_seed: [u8; 32],
    kid: String,
    n: String,
    e: String,
    modulus_bits: usize,
}

impl RsaSigningKey {
    /// Reads an RSA private key from PEM: PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`).
    ///
    /// Keys under [`MIN_RSA_BITS`] or over [`MAX_RSA_BITS`] bits are refused.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        install_provider();
        // jsonwebtoken's PEM reader unwraps PKCS#8 to the PKCS#1 structure inside.
        let encoding_key = EncodingKey::from_rsa_pem(pem).map_err(|_| KeyError::NotRsaPrivateKey)?;
        let pkcs1 = encoding_key.inner();
        let bits = der::rsa_private_key_modulus_bits(pkcs1).ok_or(KeyError::NotRsaPrivateKey)?;
        if bits < MIN_RSA_BITS {
            return Err(KeyError::TooSmall { bits });
        }
        if bits > MAX_RSA_BITS {
            return Err(KeyError::TooLarge { bits });
        }
        let key_pair = RsaKeyPair::from_der(pkcs1).map_err(|e| KeyError::Rejected(e.to_string()))?;
        let components = RsaPublicKeyComponents::<Vec<u8>>::from(key_pair.public());
        let n = URL_SAFE_NO_PAD.encode(&components.n);
        let e = URL_SAFE_NO_PAD.encode(&components.e);
        let kid = thumbprint(&n, &e);
        let mut secret_seed = [0u8; 32];
        secret_seed.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, pkcs1).as_ref());
        Ok(Self {
            key_pair,
            secret_seed,
            kid,
            n,
            e,
            modulus_bits: bits,
        })
    }

    /// The key id: the RFC 7638 SHA-256 thumbprint of the public key, base64url.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK: `kty` RSA, `n`, `e`, `kid`, `alg` RS256, `use` sig.
    pub fn public_jwk(&self) -> Jwk {
        Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::RS256),
                key_id: Some(self.kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::RSA(RSAKeyParameters {
                key_type: RSAKeyType::RSA,
                n: self.n.clone(),
                e: self.e.clone(),
            }),
        }
    }

    /// A 256-bit symmetric secret derived from the private key for `context` (HKDF-SHA256 keyed
    /// with a hash of the private key): every holder of the key, and only they, derive the same
    /// one, and different contexts give unrelated secrets.
    pub fn derive_secret(&self, context: &[u8]) -> [u8; 32] {
        let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"jose derive_secret v1");
        let info = [context];
        let mut secret = [0u8; 32];
        salt.extract(&self.secret_seed)
            .expand(&info, ring::hkdf::HKDF_SHA256)
            .and_then(|okm| okm.fill(&mut secret))
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        secret
    }

    /// Length of the modulus in bits.
    pub fn modulus_bits(&self) -> usize {
        self.modulus_bits
    }

    /// An RS256 JWT of `claims` whose header carries this key's `kid` and `typ: JWT`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, jsonwebtoken::errors::Error> {
        let header = Header {
            typ: Some("JWT".to_owned()),
            kid: Some(self.kid.clone()),
            ..Header::new(Algorithm::RS256)
        };
        let mut token = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims)?, &mut token);
        let mut signature = vec![0; self.key_pair.public().modulus_len()];
        // Signed here with the parsed key rather than through jsonwebtoken, which would re-parse
        // and re-validate the key for every token.
        self.key_pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                token.as_bytes(),
                &mut signature,
            )
            .map_err(|_| jsonwebtoken::errors::ErrorKind::RsaFailedSigning)?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }
}

impl fmt::Debug for RsaSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaSigningKey")
            .field("kid", &self.kid)
            .field("modulus_bits", &self.modulus_bits)
            .finish_non_exhaustive()
    }
}

/// RFC 7638: SHA-256 over the required members in lexicographic order, without whitespace.
fn thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()))
}
