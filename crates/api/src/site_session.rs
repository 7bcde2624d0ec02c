//! The site's session: the JWT the site's own login gives its visitor, verified here before the
//! service vouches for the visitor to Genesys. Only the configured algorithms are accepted (never
//! `none`; HS256 only with a shared secret, so a public key can never serve as an HMAC secret),
//! and the issuer, audience and expiry are checked. A JWKS is fetched through the Genesys client's
//! machinery (timeouts, retries, TLS trust, size bound) and cached.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use genesys_client::GenesysApi;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::oidc::Identity;
use crate::settings::{SessionVerification, SiteSessionSettings};

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
const LEEWAY_SECONDS: u64 = 30;
/// Least time between two fetches of the site's keys for an unknown `kid`, so sessions signed
/// with made-up key ids cannot make the service hammer the site's identity provider.
const UNKNOWN_KID_REFETCH: Duration = Duration::from_secs(30);
/// Longest `sub` accepted (Genesys uses it as the sender address).
const MAX_SUBJECT_CHARS: usize = 255;

/// Why a site session was refused; each a metric label and a detail the visitor may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Not a JWT, or an algorithm this service does not know (`none` included).
    Malformed,
    /// A known algorithm that is not one of the accepted ones.
    Algorithm,
    /// No published key has its `kid`.
    UnknownKey,
    /// The signature does not verify.
    Signature,
    /// It has expired.
    Expired,
    /// It is not valid yet (`nbf`).
    NotYetValid,
    /// Another issuer.
    Issuer,
    /// Another audience.
    Audience,
    /// No usable `sub`, or a required claim is missing.
    Claims,
    /// The site's keys could not be fetched.
    KeysUnavailable,
}

impl Rejection {
    /// Every reason, for metrics.
    pub const ALL: [Rejection; 10] = [
        Self::Malformed,
        Self::Algorithm,
        Self::UnknownKey,
        Self::Signature,
        Self::Expired,
        Self::NotYetValid,
        Self::Issuer,
        Self::Audience,
        Self::Claims,
        Self::KeysUnavailable,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Algorithm => "algorithm",
            Self::UnknownKey => "unknown_key",
            Self::Signature => "signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Issuer => "issuer",
            Self::Audience => "audience",
            Self::Claims => "claims",
            Self::KeysUnavailable => "keys_unavailable",
        }
    }

    /// What the visitor's page may be told.
    pub fn detail(self) -> &'static str {
        match self {
            Self::Malformed => "it is not a signed JWT of an accepted algorithm",
            Self::Algorithm => "it is signed with an algorithm that is not accepted",
            Self::UnknownKey => "it is signed with an unknown key",
            Self::Signature => "its signature does not verify",
            Self::Expired => "it has expired",
            Self::NotYetValid => "it is not valid yet",
            Self::Issuer => "it was issued by another issuer",
            Self::Audience => "it is meant for another audience",
            Self::Claims => "it lacks a subject or a required claim",
            Self::KeysUnavailable => "the site's signing keys cannot be read right now",
        }
    }
}

/// The claims read from a session.
#[derive(Deserialize)]
struct SessionClaims {
    sub: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    given_name: Option<String>,
    #[serde(default)]
    family_name: Option<String>,
    #[serde(default)]
    auth_time: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
}

/// The site's keys as last fetched, and when a fetch was last tried (whether it worked or not).
#[derive(Default)]
struct KeyCache {
    set: Option<JwkSet>,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
}

/// What the cache says about one key.
struct Lookup {
    key: Option<DecodingKey>,
    /// The set was fetched less than the cache lifetime ago.
    fresh: bool,
    /// A set was ever fetched.
    any_set: bool,
    /// A fetch was tried less than [`UNKNOWN_KID_REFETCH`] ago.
    tried_recently: bool,
}

/// Verifies site sessions. `Send + Sync`; one per process.
pub struct SiteSessions {
    settings: SiteSessionSettings,
    keys: Mutex<KeyCache>,
    /// One fetch of the keys at a time, whatever the number of workers asking.
    fetching: tokio::sync::Mutex<()>,
}

impl SiteSessions {
    /// A verifier for `settings`.
    pub fn new(settings: SiteSessionSettings) -> Self {
        jose::install_provider();
        Self {
            settings,
            keys: Mutex::new(KeyCache::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &SiteSessionSettings {
        &self.settings
    }

    /// Whether sessions can be verified at all (a secret or a JWKS is configured).
    pub fn verifies(&self) -> bool {
        !matches!(self.settings.verification, SessionVerification::None)
    }

    fn validation(&self, alg: jsonwebtoken::Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        // Only the token's own algorithm (already checked against the configured list): a list
        // mixing key families would fail every token with jsonwebtoken's family check.
        validation.algorithms = vec![alg];
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation
    }

    /// The visitor a session token stands for, at `now` (seconds since the epoch).
    pub async fn verify(
        &self,
        token: &str,
        genesys: &dyn GenesysApi,
        now: i64,
    ) -> Result<Identity, Rejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Rejection::Malformed)?;
        if !self.settings.algorithms.contains(&header.alg) {
            return Err(Rejection::Algorithm);
        }
        let key = match &self.settings.verification {
            SessionVerification::Secret(secret) => DecodingKey::from_secret(secret.expose_secret()),
            SessionVerification::Jwks { url, cache } => {
                self.key_for(header.kid.as_deref(), url, *cache, genesys).await?
            }
            SessionVerification::None => return Err(Rejection::KeysUnavailable),
        };
        let claims = jsonwebtoken::decode::<SessionClaims>(token, &key, &self.validation(header.alg))
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => Rejection::Expired,
                ErrorKind::ImmatureSignature => Rejection::NotYetValid,
                ErrorKind::InvalidIssuer => Rejection::Issuer,
                ErrorKind::InvalidAudience => Rejection::Audience,
                ErrorKind::InvalidSignature | ErrorKind::InvalidKeyFormat => Rejection::Signature,
                ErrorKind::InvalidAlgorithm => Rejection::Algorithm,
                ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidSubject => Rejection::Claims,
                _ => Rejection::Malformed,
            })?
            .claims;
        let sub = claims.sub.trim();
        if sub.is_empty() || sub.chars().count() > MAX_SUBJECT_CHARS || sub.chars().any(char::is_control) {
            return Err(Rejection::Claims);
        }
        let text = |value: Option<String>| value.filter(|v| !v.is_empty() && v.chars().count() <= 256);
        Ok(Identity {
            sub: sub.to_owned(),
            email: text(claims.email),
            given_name: text(claims.given_name),
            family_name: text(claims.family_name),
            auth_time: claims.auth_time.or(claims.iat).unwrap_or(now),
        })
    }

    fn lookup(&self, kid: Option<&str>, cache: Duration) -> Lookup {
        let keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let jwk = keys.set.as_ref().and_then(|set| match kid {
            Some(kid) => set.find(kid),
            // A set of one key needs no kid.
            None if set.keys.len() == 1 => set.keys.first(),
            None => None,
        });
        Lookup {
            key: jwk.and_then(|jwk| DecodingKey::from_jwk(jwk).ok()),
            fresh: keys.fetched.is_some_and(|at| at.elapsed() < cache),
            any_set: keys.set.is_some(),
            tried_recently: keys
                .attempted
                .is_some_and(|at| at.elapsed() < UNKNOWN_KID_REFETCH),
        }
    }

    /// The key for `kid`: from fresh keys at once; otherwise from one fetch at a time, at most
    /// one every [`UNKNOWN_KID_REFETCH`] whether it works or not, falling back to the keys last
    /// fetched. While the site's identity provider is down, callers get the stale keys or a fast
    /// refusal instead of queueing behind fetch after fetch.
    async fn key_for(
        &self,
        kid: Option<&str>,
        url: &str,
        cache: Duration,
        genesys: &dyn GenesysApi,
    ) -> Result<DecodingKey, Rejection> {
        let found = self.lookup(kid, cache);
        if found.tried_recently || found.fresh && found.key.is_some() {
            return settle(found);
        }
        let _one_fetch = self.fetching.lock().await;
        // Another caller may have tried while this one waited.
        let found = self.lookup(kid, cache);
        if found.tried_recently || found.fresh && found.key.is_some() {
            return settle(found);
        }
        let fetched = match genesys.fetch_document(url).await {
            Ok(document) => serde_json::from_value::<JwkSet>(document)
                .map_err(|e| tracing::warn!(error = %e, "the site's JWKS is not a JWK set"))
                .ok(),
            Err(e) => {
                tracing::warn!(error = %e, kind = e.kind(), "cannot fetch the site's JWKS");
                None
            }
        };
        {
            let mut keys = self
                .keys
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            keys.attempted = Some(now);
            if let Some(set) = fetched {
                keys.set = Some(set);
                keys.fetched = Some(now);
            }
        }
        settle(self.lookup(kid, cache))
    }
}

/// The key found, stale or not, or why there is none.
fn settle(found: Lookup) -> Result<DecodingKey, Rejection> {
    match found {
        Lookup { key: Some(key), .. } => Ok(key),
        Lookup { any_set: true, .. } => Err(Rejection::UnknownKey),
        Lookup { any_set: false, .. } => Err(Rejection::KeysUnavailable),
    }
}
