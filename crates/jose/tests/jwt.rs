//! Signing and verification through jsonwebtoken with the ring provider, on the committed
//! test-only keys in `tests/fixtures/`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jose::{KeyError, RsaSigningKey, install_provider};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

const RSA_PKCS8: &[u8] = include_bytes!("fixtures/test-only-rsa-2048.pkcs8.pem");
const RSA_PKCS1: &[u8] = include_bytes!("fixtures/test-only-rsa-2048.pkcs1.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("fixtures/test-only-rsa-2048.public.pem");
const OTHER_RSA_PKCS8: &[u8] = include_bytes!("fixtures/test-only-rsa-2048-other.pkcs8.pem");
const OTHER_RSA_PUBLIC: &[u8] = include_bytes!("fixtures/test-only-rsa-2048-other.public.pem");
const RSA_1024: &[u8] = include_bytes!("fixtures/test-only-rsa-1024.pkcs8.pem");
const EC_P256: &[u8] = include_bytes!("fixtures/test-only-ec-p256.pkcs8.pem");
const EC_P256_PUBLIC: &[u8] = include_bytes!("fixtures/test-only-ec-p256.public.pem");
const EC_P384: &[u8] = include_bytes!("fixtures/test-only-ec-p384.pkcs8.pem");
const EC_P384_PUBLIC: &[u8] = include_bytes!("fixtures/test-only-ec-p384.public.pem");
const ED25519: &[u8] = include_bytes!("fixtures/test-only-ed25519.pkcs8.pem");
const ED25519_PUBLIC: &[u8] = include_bytes!("fixtures/test-only-ed25519.public.pem");

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Claims {
    sub: String,
    aud: String,
    exp: u64,
}

fn claims() -> Claims {
    Claims {
        sub: "visitor-42".into(),
        aud: "genesys-local".into(),
        exp: jsonwebtoken::get_current_timestamp() + 300,
    }
}

fn validation(algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.set_audience(&["genesys-local"]);
    validation
}

fn rsa_key() -> RsaSigningKey {
    RsaSigningKey::from_pem(RSA_PKCS8).unwrap()
}

/// Replaces the token's middle part, keeping header and signature.
fn with_payload(token: &str, payload: &serde_json::Value) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
    parts.join(".")
}

#[test]
fn an_rs256_token_verifies_with_the_published_jwk() {
    let key = rsa_key();
    let token = key.sign(&claims()).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), Some(key.kid()));
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let decoding = DecodingKey::from_jwk(&key.public_jwk()).unwrap();
    let data = decode::<Claims>(&token, &decoding, &validation(Algorithm::RS256)).unwrap();
    assert_eq!(data.claims, claims());
}

#[test]
fn the_public_jwk_names_the_key_by_its_rfc_7638_thumbprint() {
    let key = rsa_key();
    let jwk = key.public_jwk();
    let json = serde_json::to_value(&jwk).unwrap();
    assert_eq!(json["kty"], "RSA");
    assert_eq!(json["alg"], "RS256");
    assert_eq!(json["use"], "sig");
    assert_eq!(json["kid"], key.kid());
    assert_eq!(json["e"], "AQAB");
    assert!(
        json.get("d").is_none() && json.get("p").is_none(),
        "never private parts"
    );
    assert_eq!(key.kid(), jwk.thumbprint(ThumbprintHash::SHA256));
    assert_eq!(key.kid().len(), 43, "a SHA-256 digest, base64url");
    assert_eq!(key.modulus_bits(), 2048);
}

#[test]
fn pkcs1_and_pkcs8_pem_give_the_same_key() {
    let pkcs1 = RsaSigningKey::from_pem(RSA_PKCS1).unwrap();
    assert_eq!(pkcs1.kid(), rsa_key().kid());
    let token = pkcs1.sign(&claims()).unwrap();
    let from_pem = DecodingKey::from_rsa_pem(RSA_PUBLIC).unwrap();
    decode::<Claims>(&token, &from_pem, &validation(Algorithm::RS256)).unwrap();
}

#[test]
fn debug_shows_no_key_material() {
    let key = rsa_key();
    let debug = format!("{key:?}");
    assert!(debug.contains(key.kid()));
    let n = serde_json::to_value(key.public_jwk()).unwrap()["n"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!debug.contains(&n[..16]), "{debug}");
}

#[test]
fn a_key_under_2048_bits_is_refused() {
    let error = RsaSigningKey::from_pem(RSA_1024).unwrap_err();
    assert_eq!(error, KeyError::TooSmall { bits: 1024 });
    assert!(error.to_string().contains("at least 2048"), "{error}");
}

#[test]
fn keys_that_are_not_rsa_private_keys_are_refused() {
    for pem in [EC_P256, ED25519, RSA_PUBLIC, b"not a pem".as_slice()] {
        assert!(RsaSigningKey::from_pem(pem).is_err());
    }
}

#[test]
fn every_algorithm_round_trips_through_jsonwebtoken() {
    install_provider();
    let hmac_secret = b"a test-only secret of thirty-two bytes!!";
    let cases: Vec<(Algorithm, EncodingKey, DecodingKey)> = vec![
        (
            Algorithm::HS256,
            EncodingKey::from_secret(hmac_secret),
            DecodingKey::from_secret(hmac_secret),
        ),
        (
            Algorithm::HS384,
            EncodingKey::from_secret(hmac_secret),
            DecodingKey::from_secret(hmac_secret),
        ),
        (
            Algorithm::HS512,
            EncodingKey::from_secret(hmac_secret),
            DecodingKey::from_secret(hmac_secret),
        ),
        (
            Algorithm::ES256,
            EncodingKey::from_ec_pem(EC_P256).unwrap(),
            DecodingKey::from_ec_pem(EC_P256_PUBLIC).unwrap(),
        ),
        (
            Algorithm::ES384,
            EncodingKey::from_ec_pem(EC_P384).unwrap(),
            DecodingKey::from_ec_pem(EC_P384_PUBLIC).unwrap(),
        ),
        (
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(ED25519).unwrap(),
            DecodingKey::from_ed_pem(ED25519_PUBLIC).unwrap(),
        ),
    ]
    .into_iter()
    .chain(
        [
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ]
        .into_iter()
        .map(|alg| {
            (
                alg,
                EncodingKey::from_rsa_pem(RSA_PKCS8).unwrap(),
                DecodingKey::from_rsa_pem(RSA_PUBLIC).unwrap(),
            )
        }),
    )
    .collect();
    for (algorithm, encoding, decoding) in cases {
        let token = encode(&Header::new(algorithm), &claims(), &encoding)
            .unwrap_or_else(|e| panic!("{algorithm:?} signs: {e}"));
        let data = decode::<Claims>(&token, &decoding, &validation(algorithm))
            .unwrap_or_else(|e| panic!("{algorithm:?} verifies: {e}"));
        assert_eq!(data.claims, claims(), "{algorithm:?}");
        let tampered = with_payload(
            &token,
            &serde_json::json!({"sub": "admin", "aud": "genesys-local", "exp": 9_999_999_999u64}),
        );
        let error = decode::<Claims>(&tampered, &decoding, &validation(algorithm)).unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::InvalidSignature, "{algorithm:?}");
    }
}

#[test]
fn rsa_verifies_from_modulus_and_exponent_components_and_from_der() {
    let key = rsa_key();
    let token = key.sign(&claims()).unwrap();
    let json = serde_json::to_value(key.public_jwk()).unwrap();
    let from_components =
        DecodingKey::from_rsa_components(json["n"].as_str().unwrap(), json["e"].as_str().unwrap()).unwrap();
    decode::<Claims>(&token, &from_components, &validation(Algorithm::RS256)).unwrap();
    let from_pem = DecodingKey::from_rsa_pem(RSA_PUBLIC).unwrap();
    let from_der = DecodingKey::from_rsa_der(from_pem.as_bytes());
    decode::<Claims>(&token, &from_der, &validation(Algorithm::RS256)).unwrap();
}

#[test]
fn the_jwk_helpers_work_through_the_ring_provider() {
    install_provider();
    let encoding = EncodingKey::from_rsa_pem(RSA_PKCS8).unwrap();
    let jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).unwrap();
    let ours = serde_json::to_value(rsa_key().public_jwk()).unwrap();
    let theirs = serde_json::to_value(&jwk).unwrap();
    assert_eq!(
        (theirs["n"].clone(), theirs["e"].clone()),
        (ours["n"].clone(), ours["e"].clone())
    );
    let ec = Jwk::from_encoding_key(&EncodingKey::from_ec_pem(EC_P256).unwrap(), Algorithm::ES256).unwrap();
    let token = encode(
        &Header::new(Algorithm::ES256),
        &claims(),
        &EncodingKey::from_ec_pem(EC_P256).unwrap(),
    )
    .unwrap();
    decode::<Claims>(
        &token,
        &DecodingKey::from_jwk(&ec).unwrap(),
        &validation(Algorithm::ES256),
    )
    .unwrap();
}

#[test]
fn a_token_from_another_key_is_refused() {
    let token = RsaSigningKey::from_pem(OTHER_RSA_PKCS8)
        .unwrap()
        .sign(&claims())
        .unwrap();
    let ours = DecodingKey::from_jwk(&rsa_key().public_jwk()).unwrap();
    let error = decode::<Claims>(&token, &ours, &validation(Algorithm::RS256)).unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::InvalidSignature);
    let theirs = DecodingKey::from_rsa_pem(OTHER_RSA_PUBLIC).unwrap();
    decode::<Claims>(&token, &theirs, &validation(Algorithm::RS256)).unwrap();
}

#[test]
fn an_unsigned_alg_none_token_is_refused() {
    let key = rsa_key();
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).unwrap());
    let decoding = DecodingKey::from_jwk(&key.public_jwk()).unwrap();
    for token in [format!("{header}.{payload}."), format!("{header}.{payload}")] {
        assert!(decode::<Claims>(&token, &decoding, &validation(Algorithm::RS256)).is_err());
    }
}

#[test]
fn hs256_signed_with_the_rsa_public_key_does_not_verify_against_the_rsa_key() {
    install_provider();
    let key = rsa_key();
    let public_der = DecodingKey::from_rsa_pem(RSA_PUBLIC).unwrap().as_bytes().to_vec();
    let decoding = DecodingKey::from_jwk(&key.public_jwk()).unwrap();
    for secret in [RSA_PUBLIC, public_der.as_slice()] {
        let forged = encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(secret),
        )
        .unwrap();
        let error = decode::<Claims>(&forged, &decoding, &validation(Algorithm::RS256)).unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::InvalidAlgorithm);
        // Even a verifier that lists HS256 cannot use an RSA key as an HMAC secret.
        let error = decode::<Claims>(&forged, &decoding, &validation(Algorithm::HS256)).unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::InvalidKeyFormat);
        let from_pem = DecodingKey::from_rsa_pem(RSA_PUBLIC).unwrap();
        assert!(decode::<Claims>(&forged, &from_pem, &validation(Algorithm::HS256)).is_err());
    }
}

#[test]
fn installing_the_provider_twice_is_harmless() {
    install_provider();
    install_provider();
    rsa_key().sign(&claims()).unwrap();
}

#[test]
fn a_derived_secret_depends_on_the_key_and_the_context_only() {
    let key = rsa_key();
    let same_key = RsaSigningKey::from_pem(RSA_PKCS1).unwrap();
    let other_key = RsaSigningKey::from_pem(OTHER_RSA_PKCS8).unwrap();
    assert_eq!(
        key.derive_secret(b"codes"),
        same_key.derive_secret(b"codes"),
        "PKCS#1 and #8 agree"
    );
    assert_ne!(key.derive_secret(b"codes"), key.derive_secret(b"tokens"));
    assert_ne!(key.derive_secret(b"codes"), other_key.derive_secret(b"codes"));
    assert!(!format!("{key:?}").contains(&format!("{:?}", key.derive_secret(b"codes"))));
}
