//! Sealed tokens: authorization codes, access tokens and refresh tokens are the claims they stand
//! for, encrypted and authenticated (AES-256-GCM) under a key derived from the signing key. Any
//! replica holding the signing key opens them, so nothing needs to be shared but that file; a
//! token of one purpose never opens as another.

use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jose::RsaSigningKey;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What a sealed token is for; part of the authenticated data, so purposes never mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// An authorization code.
    Code,
    /// An access token (for `/oidc/userinfo`).
    Access,
    /// A refresh token.
    Refresh,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Code => b"code",
            Self::Access => b"access",
            Self::Refresh => b"refresh",
        }
    }
}

/// Bytes that name the key a token was sealed with.
const KEY_TAG_LEN: usize = 4;
/// Prefix of every sealed token, so a later format can be told apart.
const VERSION: &str = "v1.";

struct SealingKey {
    tag: [u8; KEY_TAG_LEN],
    key: LessSafeKey,
    /// Tokens under this key open until then (`None`: the current key, always).
    opens_until: Option<Instant>,
}

/// Seals with the current key; opens with it, with a previous key still inside its window, or
/// with a next key (published ahead of a rotation, which other replicas may already seal with).
pub struct Sealer {
    keys: Vec<SealingKey>,
    random: SystemRandom,
}

fn sealing_key(signing_key: &RsaSigningKey, opens_until: Option<Instant>) -> SealingKey {
    let secret = signing_key.derive_secret(b"guest-token oidc sealing v1");
    let digest = ring::digest::digest(&ring::digest::SHA256, signing_key.kid().as_bytes());
    let mut tag = [0u8; KEY_TAG_LEN];
    tag.copy_from_slice(&digest.as_ref()[..KEY_TAG_LEN]);
    SealingKey {
        tag,
        key: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &secret).expect("a 32-byte AES-256 key")),
        opens_until,
    }
}

impl Sealer {
    /// Seals under `current`; opens what `previous` keys sealed until `previous_until`, and what
    /// `next` keys sealed.
    pub fn new(
        current: &RsaSigningKey,
        previous: &[&RsaSigningKey],
        previous_until: Instant,
        next: &[&RsaSigningKey],
    ) -> Self {
        let mut keys = vec![sealing_key(current, None)];
        keys.extend(previous.iter().map(|key| sealing_key(key, Some(previous_until))));
        keys.extend(next.iter().map(|key| sealing_key(key, None)));
        Self {
            keys,
            random: SystemRandom::new(),
        }
    }

    /// `claims` sealed for `purpose`.
    pub fn seal<T: Serialize>(&self, purpose: Purpose, claims: &T) -> String {
        let current = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .expect("the system's randomness is available");
        let mut sealed = serde_json::to_vec(claims).expect("claims serialize");
        current
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.label()),
                &mut sealed,
            )
            .expect("AES-GCM seals any message of this size");
        let mut bytes = Vec::with_capacity(KEY_TAG_LEN + NONCE_LEN + sealed.len());
        bytes.extend_from_slice(&current.tag);
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        let mut token = String::from(VERSION);
        URL_SAFE_NO_PAD.encode_string(bytes, &mut token);
        token
    }

    /// The claims of a token sealed here for `purpose`, or `None` for anything else: another
    /// purpose, another key, a key past its window, a changed byte, garbage.
    pub fn open<T: DeserializeOwned>(&self, purpose: Purpose, token: &str, now: Instant) -> Option<T> {
        let encoded = token.strip_prefix(VERSION)?;
        // Far longer than any token sealed here; refused before decoding.
        if encoded.len() > 8192 {
            return None;
        }
        let mut bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
        if bytes.len() < KEY_TAG_LEN + NONCE_LEN {
            return None;
        }
        let key = self
            .keys
            .iter()
            .find(|key| key.tag == bytes[..KEY_TAG_LEN] && key.opens_until.is_none_or(|until| now < until))?;
        let nonce = Nonce::try_assume_unique_for_key(&bytes[KEY_TAG_LEN..KEY_TAG_LEN + NONCE_LEN]).ok()?;
        let opened = key
            .key
            .open_in_place(
                nonce,
                Aad::from(purpose.label()),
                &mut bytes[KEY_TAG_LEN + NONCE_LEN..],
            )
            .ok()?;
        serde_json::from_slice(opened).ok()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Claims {
        sub: String,
    }

    fn key(file: &str) -> RsaSigningKey {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../config/dev-keys")
            .join(file);
        RsaSigningKey::from_pem(&std::fs::read(path).unwrap()).unwrap()
    }

    fn claims() -> Claims {
        Claims {
            sub: "visitor-1".into(),
        }
    }

    #[test]
    fn a_sealed_token_opens_for_its_purpose_only_and_hides_its_claims() {
        let now = Instant::now();
        let sealer = Sealer::new(&key("oidc-signing.pem"), &[], now, &[]);
        let token = sealer.seal(Purpose::Code, &claims());
        assert!(!token.contains("visitor-1"));
        assert_eq!(sealer.open::<Claims>(Purpose::Code, &token, now), Some(claims()));
        assert_eq!(sealer.open::<Claims>(Purpose::Refresh, &token, now), None);
        assert_ne!(token, sealer.seal(Purpose::Code, &claims()), "every seal is new");
    }

    #[test]
    fn any_replica_with_the_key_opens_it_and_no_one_else() {
        let now = Instant::now();
        let one = Sealer::new(&key("oidc-signing.pem"), &[], now, &[]);
        let another_replica = Sealer::new(&key("oidc-signing.pem"), &[], now, &[]);
        let other_key = Sealer::new(&key("oidc-signing-previous.pem"), &[], now, &[]);
        let token = one.seal(Purpose::Refresh, &claims());
        assert_eq!(
            another_replica.open::<Claims>(Purpose::Refresh, &token, now),
            Some(claims())
        );
        assert_eq!(other_key.open::<Claims>(Purpose::Refresh, &token, now), None);
    }

    #[test]
    fn a_changed_byte_or_garbage_never_opens() {
        let now = Instant::now();
        let sealer = Sealer::new(&key("oidc-signing.pem"), &[], now, &[]);
        let token = sealer.seal(Purpose::Code, &claims());
        let mut bytes = URL_SAFE_NO_PAD.decode(&token[VERSION.len()..]).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = format!("{VERSION}{}", URL_SAFE_NO_PAD.encode(bytes));
        for bad in [
            tampered.as_str(),
            "",
            "v1.",
            "v1.AAAA",
            "v2.abc",
            &token[..token.len() - 2],
        ] {
            assert_eq!(sealer.open::<Claims>(Purpose::Code, bad, now), None, "{bad:?}");
        }
        assert_eq!(
            sealer.open::<Claims>(Purpose::Code, &"v1.".repeat(5000), now),
            None
        );
    }

    #[test]
    fn after_a_rotation_the_previous_key_opens_until_its_window_ends() {
        let now = Instant::now();
        let before = Sealer::new(&key("oidc-signing-previous.pem"), &[], now, &[]);
        let token = before.seal(Purpose::Refresh, &claims());
        let previous = key("oidc-signing-previous.pem");
        let after = Sealer::new(
            &key("oidc-signing.pem"),
            &[&previous],
            now + Duration::from_secs(60),
            &[],
        );
        assert_eq!(
            after.open::<Claims>(Purpose::Refresh, &token, now),
            Some(claims())
        );
        assert_eq!(
            after.open::<Claims>(Purpose::Refresh, &token, now + Duration::from_secs(61)),
            None
        );
    }

    #[test]
    fn a_replica_not_yet_rotated_opens_what_one_already_rotated_sealed_with_the_next_key() {
        let now = Instant::now();
        let next = key("oidc-signing-previous.pem");
        let rotated = Sealer::new(&next, &[], now, &[]);
        let not_yet = Sealer::new(&key("oidc-signing.pem"), &[], now, &[&next]);
        let code = rotated.seal(Purpose::Code, &claims());
        assert_eq!(not_yet.open::<Claims>(Purpose::Code, &code, now), Some(claims()));
        // It still seals with its own current key, which the rotated replica (holding it as a
        // previous key) opens.
        let back = not_yet.seal(Purpose::Code, &claims());
        assert!(back.starts_with(VERSION));
        let rotated_with_previous = Sealer::new(
            &next,
            &[&key("oidc-signing.pem")],
            now + Duration::from_secs(60),
            &[],
        );
        assert_eq!(
            rotated_with_previous.open::<Claims>(Purpose::Code, &back, now),
            Some(claims())
        );
    }
}
