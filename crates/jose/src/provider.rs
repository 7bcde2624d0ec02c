//! jsonwebtoken's [`CryptoProvider`] implemented with ring.
//!
//! jsonwebtoken asks the provider for a signer or a verifier per token; each is built here from the
//! key's bytes, refusing a key whose family does not match the algorithm (so an RSA public key can
//! never be used as an HMAC secret), then signs or verifies with ring.

use jsonwebtoken::crypto::{CryptoProvider, JwkUtils, JwtSigner, JwtVerifier};
use jsonwebtoken::errors::{Error, ErrorKind, Result};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{
    self as ring_sig, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair, RsaEncoding, RsaKeyPair,
    RsaParameters, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm,
};
use ring::{digest, hmac};

/// The provider [`crate::install_provider`] installs.
pub(crate) static RING_PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    jwk_utils: JwkUtils {
        extract_rsa_public_key_components,
        extract_ec_public_key_coordinates,
        compute_digest,
    },
};

/// A private key parsed for one algorithm.
enum SigningMaterial {
    Hmac(hmac::Key),
    Rsa(RsaKeyPair, &'static dyn RsaEncoding),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

struct RingSigner {
    algorithm: Algorithm,
    material: SigningMaterial,
}

impl Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let rng = SystemRandom::new();
        match &self.material {
            SigningMaterial::Hmac(key) => Ok(hmac::sign(key, message).as_ref().to_vec()),
            SigningMaterial::Rsa(key_pair, padding) => {
                let mut signature = vec![0; key_pair.public().modulus_len()];
                key_pair
                    .sign(*padding, &rng, message, &mut signature)
                    .map_err(|_| signature::Error::new())?;
                Ok(signature)
            }
            SigningMaterial::Ecdsa(key_pair) => key_pair
                .sign(&rng, message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(|_| signature::Error::new()),
            SigningMaterial::Ed25519(key_pair) => Ok(key_pair.sign(message).as_ref().to_vec()),
        }
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// A public key (or HMAC secret) prepared for one algorithm.
enum VerifyingMaterial {
    Hmac(hmac::Key),
    /// DER or raw public key bytes as ring's `UnparsedPublicKey` reads them for the algorithm.
    Public(&'static dyn VerificationAlgorithm, Vec<u8>),
    RsaComponents(&'static RsaParameters, Vec<u8>, Vec<u8>),
}

struct RingVerifier {
    algorithm: Algorithm,
    material: VerifyingMaterial,
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let checked = match &self.material {
            // ring compares the tags in constant time.
            VerifyingMaterial::Hmac(key) => hmac::verify(key, message, signature),
            VerifyingMaterial::Public(algorithm, key) => {
                UnparsedPublicKey::new(*algorithm, key).verify(message, signature)
            }
            VerifyingMaterial::RsaComponents(parameters, n, e) => {
                RsaPublicKeyComponents { n, e }.verify(parameters, message, signature)
            }
        };
        checked.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

fn hmac_algorithm(algorithm: Algorithm) -> Option<hmac::Algorithm> {
    match algorithm {
        Algorithm::HS256 => Some(hmac::HMAC_SHA256),
        Algorithm::HS384 => Some(hmac::HMAC_SHA384),
        Algorithm::HS512 => Some(hmac::HMAC_SHA512),
        _ => None,
    }
}

fn rsa_padding(algorithm: Algorithm) -> Option<&'static dyn RsaEncoding> {
    match algorithm {
        Algorithm::RS256 => Some(&ring_sig::RSA_PKCS1_SHA256),
        Algorithm::RS384 => Some(&ring_sig::RSA_PKCS1_SHA384),
        Algorithm::RS512 => Some(&ring_sig::RSA_PKCS1_SHA512),
        Algorithm::PS256 => Some(&ring_sig::RSA_PSS_SHA256),
        Algorithm::PS384 => Some(&ring_sig::RSA_PSS_SHA384),
        Algorithm::PS512 => Some(&ring_sig::RSA_PSS_SHA512),
        _ => None,
    }
}

fn rsa_parameters(algorithm: Algorithm) -> Option<&'static RsaParameters> {
    match algorithm {
        Algorithm::RS256 => Some(&ring_sig::RSA_PKCS1_2048_8192_SHA256),
        Algorithm::RS384 => Some(&ring_sig::RSA_PKCS1_2048_8192_SHA384),
        Algorithm::RS512 => Some(&ring_sig::RSA_PKCS1_2048_8192_SHA512),
        Algorithm::PS256 => Some(&ring_sig::RSA_PSS_2048_8192_SHA256),
        Algorithm::PS384 => Some(&ring_sig::RSA_PSS_2048_8192_SHA384),
        Algorithm::PS512 => Some(&ring_sig::RSA_PSS_2048_8192_SHA512),
        _ => None,
    }
}

fn ecdsa_signing(algorithm: Algorithm) -> Option<&'static EcdsaSigningAlgorithm> {
    match algorithm {
        Algorithm::ES256 => Some(&ring_sig::ECDSA_P256_SHA256_FIXED_SIGNING),
        Algorithm::ES384 => Some(&ring_sig::ECDSA_P384_SHA384_FIXED_SIGNING),
        _ => None,
    }
}

fn ecdsa_verification(algorithm: Algorithm) -> Option<&'static dyn VerificationAlgorithm> {
    match algorithm {
        Algorithm::ES256 => Some(&ring_sig::ECDSA_P256_SHA256_FIXED),
        Algorithm::ES384 => Some(&ring_sig::ECDSA_P384_SHA384_FIXED),
        _ => None,
    }
}

fn invalid_key() -> Error {
    ErrorKind::InvalidKeyFormat.into()
}

/// An RSA private key from PKCS#1 DER (what `EncodingKey::from_rsa_pem` holds), or PKCS#8 DER.
fn rsa_key_pair(der: &[u8]) -> Result<RsaKeyPair> {
    RsaKeyPair::from_der(der)
        .or_else(|_| RsaKeyPair::from_pkcs8(der))
        .map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()).into())
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    let algorithm = *algorithm;
    if key.family() != algorithm.family() {
        return Err(invalid_key());
    }
    let der = key.inner();
    let material = match algorithm.family() {
        AlgorithmFamily::Hmac => {
            let hmac = hmac_algorithm(algorithm).ok_or_else(invalid_key)?;
            SigningMaterial::Hmac(hmac::Key::new(hmac, der))
        }
        AlgorithmFamily::Rsa => {
            let padding = rsa_padding(algorithm).ok_or_else(invalid_key)?;
            SigningMaterial::Rsa(rsa_key_pair(der)?, padding)
        }
        AlgorithmFamily::Ec => {
            let signing = ecdsa_signing(algorithm).ok_or_else(invalid_key)?;
            let key_pair = EcdsaKeyPair::from_pkcs8(signing, der, &SystemRandom::new())
                .map_err(|_| Error::from(ErrorKind::InvalidEcdsaKey))?;
            SigningMaterial::Ecdsa(key_pair)
        }
        AlgorithmFamily::Ed => {
            // OpenSSL writes PKCS#8 v1 (no public key inside), which the checked parser refuses.
            let key_pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map_err(|_| Error::from(ErrorKind::InvalidEddsaKey))?;
            SigningMaterial::Ed25519(key_pair)
        }
    };
    Ok(Box::new(RingSigner { algorithm, material }))
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let algorithm = *algorithm;
    if key.family() != algorithm.family() {
        return Err(invalid_key());
    }
    let material = match (algorithm.family(), key.kind()) {
        (AlgorithmFamily::Hmac, DecodingKeyKind::SecretOrDer(secret)) => {
            let hmac = hmac_algorithm(algorithm).ok_or_else(invalid_key)?;
            VerifyingMaterial::Hmac(hmac::Key::new(hmac, secret))
        }
        (AlgorithmFamily::Rsa, DecodingKeyKind::SecretOrDer(der)) => {
            let parameters = rsa_parameters(algorithm).ok_or_else(invalid_key)?;
            VerifyingMaterial::Public(parameters, der.clone())
        }
        (AlgorithmFamily::Rsa, DecodingKeyKind::RsaModulusExponent { n, e }) => {
            let parameters = rsa_parameters(algorithm).ok_or_else(invalid_key)?;
            VerifyingMaterial::RsaComponents(parameters, n.clone(), e.clone())
        }
        (AlgorithmFamily::Ec, DecodingKeyKind::SecretOrDer(point)) => {
            let verification = ecdsa_verification(algorithm).ok_or_else(invalid_key)?;
            VerifyingMaterial::Public(verification, point.clone())
        }
        (AlgorithmFamily::Ed, DecodingKeyKind::SecretOrDer(raw)) => {
            VerifyingMaterial::Public(&ring_sig::ED25519, raw.clone())
        }
        _ => return Err(invalid_key()),
    };
    Ok(Box::new(RingVerifier { algorithm, material }))
}

fn extract_rsa_public_key_components(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let components = RsaPublicKeyComponents::<Vec<u8>>::from(rsa_key_pair(der)?.public());
    Ok((components.n, components.e))
}

fn extract_ec_public_key_coordinates(
    der: &[u8],
    algorithm: Algorithm,
) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    let (signing, curve, coordinate_len) = match algorithm {
        Algorithm::ES256 => (
            &ring_sig::ECDSA_P256_SHA256_FIXED_SIGNING,
            EllipticCurve::P256,
            32,
        ),
        Algorithm::ES384 => (
            &ring_sig::ECDSA_P384_SHA384_FIXED_SIGNING,
            EllipticCurve::P384,
            48,
        ),
        _ => return Err(ErrorKind::InvalidEcdsaKey.into()),
    };
    let key_pair = EcdsaKeyPair::from_pkcs8(signing, der, &SystemRandom::new())
        .map_err(|_| Error::from(ErrorKind::InvalidEcdsaKey))?;
    // An uncompressed point: 0x04, then x, then y.
    match key_pair.public_key().as_ref() {
        [0x04, coordinates @ ..] if coordinates.len() == 2 * coordinate_len => {
            let (x, y) = coordinates.split_at(coordinate_len);
            Ok((curve, x.to_vec(), y.to_vec()))
        }
        _ => Err(ErrorKind::InvalidEcdsaKey.into()),
    }
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Vec<u8> {
    let algorithm = match hash {
        ThumbprintHash::SHA256 => &digest::SHA256,
        ThumbprintHash::SHA384 => &digest::SHA384,
        ThumbprintHash::SHA512 => &digest::SHA512,
    };
    digest::digest(algorithm, data).as_ref().to_vec()
}
