//! Guest-token signing (Ed25519 JWTs), its JWKS, and random opaque access tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::genesys::GuestTokenClaims;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

/// Signs guest tokens with a key generated at start-up.
pub(crate) struct GuestTokenSigner {
    key: SigningKey,
    kid: String,
    /// The encoded JWT header, identical for every token.
    header_b64: String,
}

impl GuestTokenSigner {
    /// A signer with a fresh random key.
    pub(crate) fn generate() -> std::io::Result<Self> {
        let mut seed = [0u8; 32];
        fill_random(&mut seed)?;
        let key = SigningKey::from_bytes(&seed);
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
        let kid = format!("mock-genesys-{}", &x[..12]);
        let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": kid});
        let header_b64 = URL_SAFE_NO_PAD.encode(header.to_string());
        Ok(Self { key, kid, header_b64 })
    }

    /// `header.claims.signature`, each part base64url without padding.
    pub(crate) fn sign(&self, claims: &GuestTokenClaims) -> String {
        let claims_json = serde_json::to_vec(claims).expect("claims serialize");
        let mut token = String::with_capacity(self.header_b64.len() + claims_json.len() * 4 / 3 + 90);
        token.push_str(&self.header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims_json, &mut token);
        let signature = self.key.sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
        token
    }

    /// The JWKS document holding the verifying key as an OKP/Ed25519 JWK.
    pub(crate) fn jwks(&self) -> Value {
        json!({"keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(self.key.verifying_key().to_bytes()),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        }]})
    }
}

/// 32 random bytes, base64url: an opaque access token.
pub(crate) fn random_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn fill_random(buf: &mut [u8]) -> std::io::Result<()> {
    getrandom::getrandom(buf).map_err(|e| std::io::Error::other(format!("no randomness available: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

    #[test]
    fn a_signed_token_verifies_with_the_published_key() {
        let signer = GuestTokenSigner::generate().unwrap();
        let claims = GuestTokenClaims {
            sub: "g".into(),
            token_type: "guest".into(),
            queue_id: "q".into(),
            iat: 1,
            exp: 2,
            iss: "i".into(),
        };
        let token = signer.sign(&claims);
        let (signed, sig) = token.rsplit_once('.').unwrap();
        let jwk = &signer.jwks()["keys"][0];
        let x: [u8; 32] = URL_SAFE_NO_PAD
            .decode(jwk["x"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let sig: [u8; 64] = URL_SAFE_NO_PAD.decode(sig).unwrap().try_into().unwrap();
        VerifyingKey::from_bytes(&x)
            .unwrap()
            .verify(signed.as_bytes(), &Signature::from_bytes(&sig))
            .unwrap();
        let (header, body) = signed.split_once('.').unwrap();
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        assert_eq!(header["kid"], jwk["kid"]);
        assert_eq!(header["alg"], "EdDSA");
        let body: GuestTokenClaims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
        assert_eq!(body, claims);
    }

    #[test]
    fn access_tokens_are_random_and_url_safe() {
        let a = random_token().unwrap();
        assert_ne!(a, random_token().unwrap());
        assert_eq!(a.len(), 43);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
