//! The stand-in login, **for local use only**: it plays the website's own login, so that the
//! signed-in chat can be tried without one.
//!
//! A visitor types a name and an e-mail address and is signed in as that person, no questions
//! asked: `POST /stand-in-login` answers a short-lived site session, an HS256 JWT signed with the
//! key the local API configuration trusts (`config/dev-keys/site-session-hs256.key`, committed and
//! public). Anyone who can reach the page can sign in as anyone, so it is off unless a key file is
//! given, and a real site replaces it with its own login and its own keys.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

/// Shortest HS256 secret accepted, in bytes (the API refuses shorter ones too).
pub const MIN_SECRET_BYTES: usize = 32;
/// `iss` of the sessions unless told otherwise: the site's origin, as `config/local.toml` expects.
pub const DEFAULT_ISSUER: &str = "http://localhost:8080";
/// `aud` of the sessions unless told otherwise: the guest-token API, as `config/local.toml` expects.
pub const DEFAULT_AUDIENCE: &str = "guest-token-api";
/// Lifetime of a session unless told otherwise, in seconds: short, as a stand-in's should be.
pub const DEFAULT_TTL_SECONDS: u64 = 600;
/// Longest name accepted, in characters.
const MAX_NAME_CHARS: usize = 64;
/// Longest e-mail address accepted, in characters (RFC 5321's path limit).
const MAX_EMAIL_CHARS: usize = 254;

/// Signs site sessions for whoever asks. `Send + Sync`; the key never appears in `Debug`.
#[derive(Clone)]
pub struct StandInLogin {
    key: EncodingKey,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl fmt::Debug for StandInLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandInLogin")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// The form the page posts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInForm {
    /// The visitor's name, e.g. "Ada Lovelace".
    pub name: String,
    /// The visitor's e-mail address; it becomes the session's subject.
    pub email: String,
}

/// A signed-in visitor, as the page shows them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteSession {
    /// The site session (a JWT) the page sends the API as `Authorization: Bearer`.
    pub session_token: String,
    /// `sub`: who the API will vouch for to Genesys.
    pub subject: String,
    /// The name as given.
    pub name: String,
    /// The e-mail address as given.
    pub email: String,
    /// `exp`, in seconds since the epoch.
    pub expires_at: i64,
}

impl fmt::Debug for SiteSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiteSession")
            .field("subject", &self.subject)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The claims the API reads from a site session (`crates/api/src/site_session.rs`).
#[derive(Serialize)]
struct SessionClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    iat: i64,
    exp: i64,
    auth_time: i64,
    name: &'a str,
    given_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    family_name: Option<&'a str>,
    email: &'a str,
}

impl StandInLogin {
    /// A login signing with `secret` (at least [`MIN_SECRET_BYTES`]).
    pub fn new(secret: &[u8], issuer: &str, audience: &str, ttl: Duration) -> Result<Self, String> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the site-session key holds {} bytes; an HS256 key needs at least {MIN_SECRET_BYTES}",
                secret.len()
            ));
        }
        if issuer.trim().is_empty() || audience.trim().is_empty() {
            return Err("the site session's issuer and audience must not be empty".to_owned());
        }
        if ttl.is_zero() {
            return Err("the site session's lifetime must be at least a second".to_owned());
        }
        jose::install_provider();
        Ok(StandInLogin {
            key: EncodingKey::from_secret(secret),
            issuer: issuer.trim().to_owned(),
            audience: audience.trim().to_owned(),
            ttl,
        })
    }

    /// A login signing with the key in `path`, read as the API reads it (trailing line breaks
    /// dropped). The error names the file, never its content.
    pub fn from_key_file(path: &Path, issuer: &str, audience: &str, ttl: Duration) -> Result<Self, String> {
        let mut secret = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        while secret.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            secret.pop();
        }
        Self::new(&secret, issuer, audience, ttl).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Signs `form`'s visitor in at `now` (seconds since the epoch), or says which field is wrong.
    pub fn sign_in(&self, form: &SignInForm, now: i64) -> Result<SiteSession, String> {
        let name = form.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(format!("name: give 1 to {MAX_NAME_CHARS} printable characters"));
        }
        let email = form.email.trim();
        if !is_plausible_email(email) {
            return Err(format!(
                "email: give an address like ada@example.com (at most {MAX_EMAIL_CHARS} characters)"
            ));
        }
        let subject = email.to_lowercase();
        let (given_name, family_name) = match name.split_once(char::is_whitespace) {
            Some((given, family)) => (given, Some(family.trim())),
            None => (name, None),
        };
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let expires_at = now.saturating_add(ttl);
        let claims = SessionClaims {
            iss: &self.issuer,
            aud: &self.audience,
            sub: &subject,
            iat: now,
            exp: expires_at,
            auth_time: now,
            name,
            given_name,
            family_name,
            email,
        };
        let session_token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .map_err(|e| format!("the session could not be signed: {e}"))?;
        Ok(SiteSession {
            session_token,
            subject,
            name: name.to_owned(),
            email: email.to_owned(),
            expires_at,
        })
    }
}

/// One `@` between a non-empty local part and a dotted domain, no spaces or control characters.
fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.chars().count() <= MAX_EMAIL_CHARS
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;

    const SECRET: &[u8] = b"a-local-test-secret-of-at-least-32-bytes";

    fn login() -> StandInLogin {
        StandInLogin::new(SECRET, DEFAULT_ISSUER, DEFAULT_AUDIENCE, Duration::from_secs(600)).unwrap()
    }

    fn form(name: &str, email: &str) -> SignInForm {
        SignInForm {
            name: name.to_owned(),
            email: email.to_owned(),
        }
    }

    #[test]
    fn signs_a_short_lived_hs256_session_with_the_claims_the_api_checks() {
        let now = 1_700_000_000;
        let session = login()
            .sign_in(&form(" Ada Lovelace ", "Ada@Example.com"), now)
            .unwrap();
        assert_eq!(session.subject, "ada@example.com");
        assert_eq!(session.expires_at, now + 600);

        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[DEFAULT_ISSUER]);
        validation.set_audience(&[DEFAULT_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Signed "in the past": check the claims, not the clock.
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            &session.session_token,
            &DecodingKey::from_secret(SECRET),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["sub"], "ada@example.com");
        assert_eq!(claims["email"], "Ada@Example.com");
        assert_eq!(claims["given_name"], "Ada");
        assert_eq!(claims["family_name"], "Lovelace");
        assert_eq!(claims["iat"], now);
        assert_eq!(claims["exp"], now + 600);
    }

    #[test]
    fn another_key_does_not_verify_its_sessions() {
        let session = login().sign_in(&form("Ada", "ada@example.com"), 1).unwrap();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.validate_aud = false;
        let other = DecodingKey::from_secret(b"another-secret-of-at-least-32-bytes!!");
        assert!(
            jsonwebtoken::decode::<serde_json::Value>(&session.session_token, &other, &validation).is_err()
        );
    }

    #[test]
    fn refuses_names_and_addresses_that_are_not_plausible() {
        for (name, email, field) in [
            ("", "ada@example.com", "name"),
            ("Ada\u{7}", "ada@example.com", "name"),
            (&"x".repeat(65), "ada@example.com", "name"),
            ("Ada", "ada", "email"),
            ("Ada", "ada@localhost", "email"),
            ("Ada", "@example.com", "email"),
            ("Ada", "ada@@example.com", "email"),
            ("Ada", "a da@example.com", "email"),
            ("Ada", "ada@example.com.", "email"),
        ] {
            let err = login().sign_in(&form(name, email), 1).unwrap_err();
            assert!(err.starts_with(field), "{name:?} {email:?}: {err}");
        }
    }

    #[test]
    fn refuses_short_keys_and_names_the_file_without_its_content() {
        let err = StandInLogin::new(
            b"short",
            DEFAULT_ISSUER,
            DEFAULT_AUDIENCE,
            Duration::from_secs(60),
        )
        .unwrap_err();
        assert!(err.contains("at least 32"), "{err}");
        let path = std::env::temp_dir().join(format!("stand-in-login-short-{}.key", std::process::id()));
        std::fs::write(&path, "too-short-secret\n").unwrap();
        let err =
            StandInLogin::from_key_file(&path, DEFAULT_ISSUER, DEFAULT_AUDIENCE, Duration::from_secs(60))
                .unwrap_err();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(!err.contains("too-short-secret"), "{err}");
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn reads_the_committed_development_key_as_the_api_does() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/dev-keys/site-session-hs256.key");
        let login =
            StandInLogin::from_key_file(&path, DEFAULT_ISSUER, DEFAULT_AUDIENCE, Duration::from_secs(60));
        assert!(login.is_ok(), "{login:?}");
    }

    #[test]
    fn debug_output_holds_no_key_or_token() {
        let login = login();
        assert!(!format!("{login:?}").contains("a-local-test-secret"));
        let session = login.sign_in(&form("Ada", "ada@example.com"), 1).unwrap();
        assert!(!format!("{session:?}").contains(&session.session_token));
    }
}
