//! The identity bridge's test fixtures: the emulator's deployment that trusts the service as its
//! OpenID Connect provider, and site sessions signed as the site's login signs them.

use domain::oidc::DISCOVERY_PATH;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mock_genesys::{DEFAULT_DEPLOYMENT_ID, DeploymentConfig};
use serde_json::{Value, json};

use super::config_dir;

/// The emulator's deployment's client at the service's provider (`config/test.toml`).
pub const CLIENT_ID: &str = "genesys-local";
/// Its secret (a published local value).
pub const CLIENT_SECRET: &str = "genesys-local-secret";
/// The site sessions' issuer and audience (`config/test.toml`, `[site_session]`).
pub const SITE_ISSUER: &str = "http://localhost:8080";
pub const SITE_AUDIENCE: &str = "guest-token-api";
/// One of the provider's redirect URIs.
pub const REDIRECT: &str = "http://localhost:8080/";

/// The emulator's default deployment, `status`, allowing `allowed`, trusting the provider at
/// `issuer` with the client `client_id` / `client_secret`.
pub fn deployment_for(
    issuer: &str,
    status: &str,
    allowed: &[&str],
    client_id: &str,
    client_secret: &str,
) -> DeploymentConfig {
    serde_json::from_value(json!({
        "id": DEFAULT_DEPLOYMENT_ID,
        "name": "Local demo",
        "status": status,
        "allowed_domains": allowed,
        "authentication": {
            "discovery_uri": format!("{issuer}{DISCOVERY_PATH}"),
            "client_id": client_id,
            "client_secret": client_secret,
        }
    }))
    .expect("a deployment")
}

/// [`deployment_for`] with the local client.
pub fn deployment(issuer: &str, status: &str, allowed: &[&str]) -> DeploymentConfig {
    deployment_for(issuer, status, allowed, CLIENT_ID, CLIENT_SECRET)
}

pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The local development secret the demo's stand-in login signs site sessions with.
pub fn site_secret() -> Vec<u8> {
    let text = std::fs::read_to_string(config_dir().join("dev-keys/site-session-hs256.key")).unwrap();
    text.trim_end().as_bytes().to_vec()
}

/// A site session for `user-42`, with `claims` over the defaults, signed HS256 with `secret`.
pub fn session_with(claims: Value, secret: &[u8]) -> String {
    jose::install_provider();
    let mut body = json!({
        "iss": SITE_ISSUER, "aud": SITE_AUDIENCE, "sub": "user-42",
        "iat": unix_now(), "exp": unix_now() + 300,
        "email": "ada@example.com", "given_name": "Ada", "family_name": "Lovelace",
    });
    for (key, value) in claims.as_object().unwrap() {
        body[key] = value.clone();
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &body,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// [`session_with`] the local secret.
pub fn session(claims: Value) -> String {
    session_with(claims, &site_secret())
}
