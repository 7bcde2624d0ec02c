//! Token signing (Ed25519 JWTs for guest tokens and messaging JWTs) and its JWKS, and the opaque
//! access tokens.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::Sha256;

/// Signs guest tokens and messaging JWTs with a key generated at start-up.
pub(crate) struct TokenSigner {
    key: SigningKey,
    kid: String,
    /// The encoded JWT header, identical for every token.
    header_b64: String,
}

impl TokenSigner {
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
    pub(crate) fn sign<T: Serialize>(&self, claims: &T) -> String {
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

    /// The claims of a token this signer signed, if its header and signature are this signer's.
    ///
    /// Claims such as `exp` are the caller's to check.
    pub(crate) fn verify<T: DeserializeOwned>(&self, token: &str) -> Option<T> {
        let (signed, signature) = token.rsplit_once('.')?;
        let (header, claims) = signed.split_once('.')?;
        // The header is fixed, so anything else (another alg, kid or key) is not ours.
        if header != self.header_b64 {
            return None;
        }
        let mut bytes = [0u8; 64];
        if URL_SAFE_NO_PAD.decode_slice(signature, &mut bytes).ok()? != bytes.len() {
            return None;
        }
        self.key
            .verifying_key()
            .verify(signed.as_bytes(), &Signature::from_bytes(&bytes))
            .ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()
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

/// Opaque access tokens that carry their client, expiry and generation under an HMAC.
///
/// Nothing is stored per token, so issuing any number of them costs no memory; revoking bumps the
/// generation, which every token issued before no longer matches.
pub(crate) struct AccessTokens {
    mac: Hmac<Sha256>,
    /// Expiries count milliseconds from here (monotonic, unlike wall-clock time).
    epoch: Instant,
    generation: AtomicU64,
}

/// Bytes of an access token: nonce, client index, generation, expiry, then the HMAC tag.
const NONCE_LEN: usize = 16;
const PAYLOAD_LEN: usize = NONCE_LEN + 8 + 8 + 8;
const TAG_LEN: usize = 32;

impl AccessTokens {
    /// Tokens under a fresh random key.
    pub(crate) fn generate() -> std::io::Result<Self> {
        let mut key = [0u8; 32];
        fill_random(&mut key)?;
        Ok(Self {
            mac: Hmac::new_from_slice(&key).expect("HMAC takes keys of any length"),
            epoch: Instant::now(),
            generation: AtomicU64::new(0),
        })
    }

    /// A new token for the client at `client_index`, valid for `ttl` unless revoked.
    pub(crate) fn issue(&self, client_index: usize, ttl: Duration) -> String {
        let expires_ms = self
            .now_ms()
            .saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        let mut bytes = [0u8; PAYLOAD_LEN + TAG_LEN];
        // The nonce only makes every token distinct; the tag is what makes them unforgeable.
        bytes[..NONCE_LEN].copy_from_slice(&fastrand::u128(..).to_be_bytes());
        bytes[NONCE_LEN..NONCE_LEN + 8].copy_from_slice(&(client_index as u64).to_be_bytes());
        bytes[NONCE_LEN + 8..NONCE_LEN + 16]
            .copy_from_slice(&self.generation.load(Ordering::SeqCst).to_be_bytes());
        bytes[NONCE_LEN + 16..PAYLOAD_LEN].copy_from_slice(&expires_ms.to_be_bytes());
        let tag = self.tag(&bytes[..PAYLOAD_LEN]).finalize().into_bytes();
        bytes[PAYLOAD_LEN..].copy_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The client index of a token this emulator issued that has neither expired nor been revoked.
    pub(crate) fn client_index(&self, token: &str) -> Option<usize> {
        let mut bytes = [0u8; PAYLOAD_LEN + TAG_LEN];
        if URL_SAFE_NO_PAD.decode_slice(token, &mut bytes).ok()? != bytes.len() {
            return None;
        }
        let (payload, tag) = bytes.split_at(PAYLOAD_LEN);
        self.tag(payload).verify_slice(tag).ok()?;
        let field = |at: usize| u64::from_be_bytes(payload[at..at + 8].try_into().expect("8 bytes"));
        let live = field(NONCE_LEN + 8) == self.generation.load(Ordering::SeqCst)
            && self.now_ms() < field(NONCE_LEN + 16);
        live.then(|| usize::try_from(field(NONCE_LEN)).ok()).flatten()
    }

    /// Every token issued so far is refused from now on.
    pub(crate) fn revoke_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn tag(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(payload);
        mac
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

fn fill_random(buf: &mut [u8]) -> std::io::Result<()> {
    getrandom::getrandom(buf).map_err(|e| std::io::Error::other(format!("no randomness available: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::genesys::GuestTokenClaims;
    use ed25519_dalek::VerifyingKey;

    #[test]
    fn a_signed_token_verifies_with_the_published_key() {
        let signer = TokenSigner::generate().unwrap();
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
    fn verifies_its_own_tokens_and_refuses_tampered_and_foreign_ones() {
        let signer = TokenSigner::generate().unwrap();
        let token = signer.sign(&json!({"sub": "s", "exp": 9}));
        assert_eq!(
            signer.verify::<Value>(&token),
            Some(json!({"sub": "s", "exp": 9}))
        );
        let (head, rest) = token.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let forged = format!(
            "{head}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(br#"{"sub":"t","exp":9}"#)
        );
        assert_eq!(signer.verify::<Value>(&forged), None);
        let other = TokenSigner::generate().unwrap();
        assert_eq!(other.verify::<Value>(&token), None);
        for junk in ["", "a.b", "a.b.c", &format!("{token}x")] {
            assert_eq!(signer.verify::<Value>(junk), None, "{junk}");
        }
    }

    #[test]
    fn an_access_token_names_its_client_until_it_expires() {
        let tokens = AccessTokens::generate().unwrap();
        let token = tokens.issue(3, Duration::from_secs(60));
        assert_eq!(tokens.client_index(&token), Some(3));
        assert_ne!(
            token,
            tokens.issue(3, Duration::from_secs(60)),
            "every token is new"
        );
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        let expired = tokens.issue(1, Duration::ZERO);
        assert_eq!(tokens.client_index(&expired), None);
    }

    #[test]
    fn revoking_refuses_every_earlier_token_but_not_later_ones() {
        let tokens = AccessTokens::generate().unwrap();
        let before = tokens.issue(0, Duration::from_secs(60));
        tokens.revoke_all();
        let after = tokens.issue(0, Duration::from_secs(60));
        assert_eq!(tokens.client_index(&before), None);
        assert_eq!(tokens.client_index(&after), Some(0));
    }

    #[test]
    fn refuses_forged_tampered_and_foreign_tokens() {
        let tokens = AccessTokens::generate().unwrap();
        let token = tokens.issue(0, Duration::from_secs(60));
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        // Claim another client: the tag no longer matches.
        bytes[NONCE_LEN + 7] ^= 1;
        assert_eq!(tokens.client_index(&URL_SAFE_NO_PAD.encode(&bytes)), None);
        let other_key = AccessTokens::generate().unwrap();
        assert_eq!(other_key.client_index(&token), None);
        for junk in [
            "",
            "not-a-token",
            &token[..token.len() - 1],
            &format!("{token}AA"),
        ] {
            assert_eq!(tokens.client_index(junk), None, "{junk}");
        }
    }
}
