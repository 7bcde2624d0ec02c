//! The identity bridge's settings: Genesys web messaging (`[web_messaging]`), the OpenID Connect
//! provider Genesys redeems codes at (`[oidc]`), and how the service knows the site's visitor
//! (`[site_session]`); their raw shapes and their validation.
//!
//! Relative file paths are read from the configuration directory, so the committed development
//! keys work wherever the service starts.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jose::RsaSigningKey;
use jsonwebtoken::Algorithm;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};

use super::network::{plain_http_allowed, url_host};
use super::sources::{RawOidc, RawSiteSession, RawWebMessaging, empty_secret};

/// Key ids (RFC 7638 thumbprints) of the development keys committed under `config/dev-keys/`:
/// production refuses them, since anyone can read them.
pub const DEVELOPMENT_KEY_IDS: [&str; 2] = [
    "bDS3WiwV6Vho4hndBVhEdcTweI69XMeH3ythvtYROdE",
    "DoP264rFvRBH2-0IvPyZPsOZSj_K4Q5rztWj-Wgo-qs",
];

/// SHA-256 of the development site-session secret committed as `config/dev-keys/site-session-hs256.key`
/// (without its line break): production refuses it, since anyone can read it.
const DEVELOPMENT_SESSION_SECRET_SHA256: &str =
    "fa36d650ced845a786ed93d3d690a861ee67833b31014377baedd0047bb591b4";

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Shortest HS256 secret accepted for site sessions (RFC 7518: at least the hash size).
pub const MIN_SESSION_SECRET_BYTES: usize = 32;

/// Genesys web messaging, with the provider and the site session it needs.
#[derive(Debug, Clone)]
pub struct WebMessagingSettings {
    /// The Genesys web (Messenger) deployment.
    pub deployment_id: String,
    /// The Messenger's WebSocket, handed to custom widgets.
    pub websocket_url: String,
    /// Visitors who are not signed in get a pseudonymous session instead of 401.
    pub allow_anonymous: bool,
    /// How long the deployment read from Genesys is trusted.
    pub deployment_cache: Duration,
    /// The OpenID Connect provider Genesys redeems codes at.
    pub oidc: OidcSettings,
    /// How the service knows the visitor.
    pub site_session: SiteSessionSettings,
}

/// The OpenID Connect provider.
#[derive(Clone)]
pub struct OidcSettings {
    /// This service's public base URL: `iss` of its tokens, base of its endpoints.
    pub issuer: String,
    /// The key ID tokens are signed with (and codes sealed under).
    pub signing_key: Arc<RsaSigningKey>,
    /// Earlier keys, still published (and still opening what they sealed) after a rotation.
    pub previous_keys: Vec<Arc<RsaSigningKey>>,
    /// Keys published (and opening what other replicas sealed with them) before a rotation.
    pub next_keys: Vec<Arc<RsaSigningKey>>,
    /// The client id Genesys' OpenID Connect Messenger integration holds.
    pub client_id: String,
    /// Its secret.
    pub client_secret: SecretString,
    /// Where codes may be sent back to (exact match).
    pub redirect_uris: Vec<String>,
    /// Lifetime of authorization codes.
    pub code_ttl: Duration,
    /// Lifetime of access tokens.
    pub access_token_ttl: Duration,
    /// Lifetime of ID tokens.
    pub id_token_ttl: Duration,
    /// Lifetime of refresh tokens.
    pub refresh_token_ttl: Duration,
    /// Most redeemed codes remembered (single use) until they expire.
    pub max_redeemed_codes: usize,
    /// Most rotated refresh tokens remembered (reuse detection).
    pub max_refresh_records: usize,
}

impl fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("signing_key", &self.signing_key)
            .field("previous_keys", &self.previous_keys)
            .field("next_keys", &self.next_keys)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("redirect_uris", &self.redirect_uris)
            .finish_non_exhaustive()
    }
}

/// How a site session's signature is checked.
#[derive(Clone)]
pub enum SessionVerification {
    /// Public keys from the site's identity provider.
    Jwks {
        /// Where they are published.
        url: String,
        /// How long a fetched key set is kept.
        cache: Duration,
    },
    /// A shared HS256 secret.
    Secret(Arc<SecretBox<Vec<u8>>>),
    /// None: visitors are anonymous (`web_messaging.allow_anonymous`).
    None,
}

impl fmt::Debug for SessionVerification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Jwks { url, cache } => f
                .debug_struct("Jwks")
                .field("url", url)
                .field("cache", cache)
                .finish(),
            Self::Secret(_) => f.write_str("Secret([redacted])"),
            Self::None => f.write_str("None"),
        }
    }
}

/// How the service knows the site's visitor.
#[derive(Debug, Clone)]
pub struct SiteSessionSettings {
    /// The cookie `/oidc/authorize` reads the session from.
    pub cookie_name: String,
    /// How a session's signature is checked.
    pub verification: SessionVerification,
    /// The `iss` a session must carry.
    pub issuer: String,
    /// The `aud` a session must carry.
    pub audience: String,
    /// The algorithms a session may be signed with (no `none`; HS256 only with a secret).
    pub algorithms: Vec<Algorithm>,
    /// Where `/oidc/authorize` sends visitors who are not signed in.
    pub login_url: Option<String>,
}

type Problems = Vec<String>;

/// The path of a configured file: absolute as given, or relative to the configuration directory.
fn resolve(config_dir: &Path, raw: &str) -> PathBuf {
    let path = Path::new(raw.trim());
    if path.is_absolute() {
        path.to_owned()
    } else {
        config_dir.join(path)
    }
}

/// Whether `url` is an absolute http(s) URL; in production, https unless loopback or private.
fn check_url(setting: &str, url: &str, production: bool, problems: &mut Problems) {
    let absolute = (url.starts_with("https://") || url.starts_with("http://"))
        && url_host(url).is_some_and(|host| !host.is_empty());
    if !absolute || url.contains(|c: char| c.is_whitespace() || c.is_control()) {
        problems.push(format!("{setting}: {url:?} must be an absolute http(s):// URL"));
        return;
    }
    if production && url.starts_with("http://") && !url_host(url).is_some_and(plain_http_allowed) {
        problems.push(format!(
            "{setting}: {url} is plain http:// in production; use https:// (plain HTTP is accepted only \
             for loopback and private IP addresses)"
        ));
    }
}

fn read_key(
    setting: &str,
    path: &Path,
    production: bool,
    problems: &mut Problems,
) -> Option<Arc<RsaSigningKey>> {
    let pem = match std::fs::read(path) {
        Ok(pem) => pem,
        Err(e) => {
            problems.push(format!("{setting}: cannot read {}: {}", path.display(), e.kind()));
            return None;
        }
    };
    match RsaSigningKey::from_pem(&pem) {
        Ok(key) if production && DEVELOPMENT_KEY_IDS.contains(&key.kid()) => {
            problems.push(format!(
                "{setting}: {} is a published development key (config/dev-keys); generate your own",
                path.display()
            ));
            None
        }
        Ok(key) => Some(Arc::new(key)),
        Err(why) => {
            problems.push(format!("{setting}: {}: {why}", path.display()));
            None
        }
    }
}

fn ttl(
    setting: &str,
    seconds: u64,
    range: std::ops::RangeInclusive<u64>,
    problems: &mut Problems,
) -> Duration {
    if !range.contains(&seconds) {
        problems.push(format!(
            "{setting}: must be from {} to {} seconds",
            range.start(),
            range.end()
        ));
    }
    Duration::from_secs(seconds)
}

fn oidc(raw: RawOidc, config_dir: &Path, production: bool, problems: &mut Problems) -> Option<OidcSettings> {
    let issuer = raw.issuer.trim().trim_end_matches('/').to_owned();
    if issuer.is_empty() {
        problems.push(
            "oidc.issuer: must be set to this service's public base URL, e.g. https://chat.example.com"
                .to_owned(),
        );
    } else {
        check_url("oidc.issuer", &issuer, production, problems);
        if issuer.contains(['?', '#']) {
            problems.push("oidc.issuer: must have no query or fragment".to_owned());
        }
    }
    let signing_key = if raw.signing_key_file.trim().is_empty() {
        problems
            .push("oidc.signing_key_file: must name a PEM RSA private key of at least 2048 bits".to_owned());
        None
    } else {
        read_key(
            "oidc.signing_key_file",
            &resolve(config_dir, &raw.signing_key_file),
            production,
            problems,
        )
    };
    let mut read_keys = |setting: &str, files: &[String]| -> Vec<Arc<RsaSigningKey>> {
        files
            .iter()
            .filter_map(|file| read_key(setting, &resolve(config_dir, file), production, problems))
            .collect()
    };
    let previous_keys = read_keys("oidc.previous_signing_key_files", &raw.previous_signing_key_files);
    let next_keys = read_keys("oidc.next_signing_key_files", &raw.next_signing_key_files);
    if raw.client_id.trim().is_empty() {
        problems.push(
            "oidc.client_id: must be set (the client id of Genesys' OpenID Connect Messenger integration)"
                .to_owned(),
        );
    }
    let client_secret = if raw.client_secret_file.trim().is_empty() {
        if raw.client_secret.expose_secret().is_empty() {
            problems.push("oidc.client_secret_file (or oidc.client_secret): must be set".to_owned());
        } else if production {
            problems.push(
                "oidc.client_secret: in production, give the secret in a file (oidc.client_secret_file)"
                    .to_owned(),
            );
        }
        raw.client_secret
    } else {
        let path = resolve(config_dir, &raw.client_secret_file);
        match std::fs::read_to_string(&path) {
            Ok(text) => SecretString::from(text.trim_end_matches(['\r', '\n']).to_owned()),
            Err(e) => {
                problems.push(format!(
                    "oidc.client_secret_file: cannot read {}: {}",
                    path.display(),
                    e.kind()
                ));
                empty_secret()
            }
        }
    };
    if !client_secret.expose_secret().is_empty() && client_secret.expose_secret().len() < 16 {
        problems.push("oidc.client_secret: must be at least 16 characters".to_owned());
    }
    let redirect_uris: Vec<String> = raw.redirect_uris.iter().map(|u| u.trim().to_owned()).collect();
    if redirect_uris.is_empty() {
        problems
            .push("oidc.redirect_uris: list at least one (the page URLs the Messenger runs on)".to_owned());
    }
    for uri in &redirect_uris {
        check_url("oidc.redirect_uris", uri, production, problems);
        if uri.contains('#') {
            problems.push(format!("oidc.redirect_uris: {uri:?} must not have a fragment"));
        }
    }
    let code_ttl = ttl("oidc.code_ttl_seconds", raw.code_ttl_seconds, 1..=600, problems);
    let access_token_ttl = ttl(
        "oidc.access_token_ttl_seconds",
        raw.access_token_ttl_seconds,
        60..=86_400,
        problems,
    );
    let id_token_ttl = ttl(
        "oidc.id_token_ttl_seconds",
        raw.id_token_ttl_seconds,
        60..=86_400,
        problems,
    );
    let refresh_token_ttl = ttl(
        "oidc.refresh_token_ttl_seconds",
        raw.refresh_token_ttl_seconds,
        60..=30 * 86_400,
        problems,
    );
    for (setting, value) in [
        ("oidc.max_redeemed_codes", raw.max_redeemed_codes),
        ("oidc.max_refresh_records", raw.max_refresh_records),
    ] {
        if value == 0 {
            problems.push(format!("{setting}: must be at least 1"));
        }
    }
    Some(OidcSettings {
        issuer,
        signing_key: signing_key?,
        previous_keys,
        next_keys,
        client_id: raw.client_id.trim().to_owned(),
        client_secret,
        redirect_uris,
        code_ttl,
        access_token_ttl,
        id_token_ttl,
        refresh_token_ttl,
        max_redeemed_codes: raw.max_redeemed_codes,
        max_refresh_records: raw.max_refresh_records,
    })
}

fn algorithm(name: &str) -> Option<Algorithm> {
    use Algorithm::*;
    Some(match name.trim() {
        "HS256" => HS256,
        "RS256" => RS256,
        "RS384" => RS384,
        "RS512" => RS512,
        "PS256" => PS256,
        "PS384" => PS384,
        "PS512" => PS512,
        "ES256" => ES256,
        "ES384" => ES384,
        "EdDSA" => EdDSA,
        _ => return None,
    })
}

fn site_session(
    raw: RawSiteSession,
    allow_anonymous: bool,
    config_dir: &Path,
    production: bool,
    problems: &mut Problems,
) -> SiteSessionSettings {
    let jwks_url = raw.jwks_url.trim();
    let secret_file = raw.secret_file.trim();
    let verification = match (jwks_url.is_empty(), secret_file.is_empty()) {
        (false, false) => {
            problems.push("site_session.jwks_url and site_session.secret_file: set one of them".to_owned());
            SessionVerification::None
        }
        (false, true) => {
            check_url("site_session.jwks_url", jwks_url, production, problems);
            SessionVerification::Jwks {
                url: jwks_url.to_owned(),
                cache: Duration::from_secs(raw.jwks_cache_seconds.max(1)),
            }
        }
        (true, false) => {
            let path = resolve(config_dir, secret_file);
            match std::fs::read(&path) {
                Ok(mut bytes) => {
                    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        bytes.pop();
                    }
                    if production && sha256_hex(&bytes) == DEVELOPMENT_SESSION_SECRET_SHA256 {
                        problems.push(format!(
                            "site_session.secret_file: {} is the published development secret (config/dev-keys); \
                             generate your own",
                            path.display()
                        ));
                    }
                    if bytes.len() < MIN_SESSION_SECRET_BYTES {
                        problems.push(format!(
                            "site_session.secret_file: {} holds {} bytes; an HS256 secret needs at least {MIN_SESSION_SECRET_BYTES}",
                            path.display(),
                            bytes.len()
                        ));
                    }
                    SessionVerification::Secret(Arc::new(SecretBox::new(Box::new(bytes))))
                }
                Err(e) => {
                    problems.push(format!(
                        "site_session.secret_file: cannot read {}: {}",
                        path.display(),
                        e.kind()
                    ));
                    SessionVerification::None
                }
            }
        }
        (true, true) => {
            if !allow_anonymous {
                problems.push(
                    "site_session: set jwks_url or secret_file to verify visitors' sessions \
                     (or set web_messaging.allow_anonymous for anonymous visitors only)"
                        .to_owned(),
                );
            }
            SessionVerification::None
        }
    };
    let mut algorithms = Vec::new();
    for name in &raw.algorithms {
        match algorithm(name) {
            Some(alg) => algorithms.push(alg),
            None => problems.push(format!(
                "site_session.algorithms: {name:?} is not one of HS256, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA"
            )),
        }
    }
    match &verification {
        SessionVerification::Secret(_) => {
            if algorithms.is_empty() {
                algorithms.push(Algorithm::HS256);
            }
            if algorithms != [Algorithm::HS256] {
                problems.push("site_session.algorithms: with secret_file, only HS256".to_owned());
            }
        }
        SessionVerification::Jwks { .. } => {
            if algorithms.is_empty() {
                algorithms.push(Algorithm::RS256);
            }
            // A public key used as an HMAC secret would let anyone sign sessions.
            if algorithms.contains(&Algorithm::HS256) {
                problems.push(
                    "site_session.algorithms: with jwks_url, no HS256 (public keys are not secrets)"
                        .to_owned(),
                );
            }
        }
        SessionVerification::None => {}
    }
    if !matches!(verification, SessionVerification::None) {
        if raw.issuer.trim().is_empty() {
            problems
                .push("site_session.issuer: must be set (the iss of the site's session tokens)".to_owned());
        }
        if raw.audience.trim().is_empty() {
            problems
                .push("site_session.audience: must be set (the aud of the site's session tokens)".to_owned());
        }
    }
    let login_url = Some(raw.login_url.trim().to_owned()).filter(|u| !u.is_empty());
    if let Some(url) = &login_url {
        check_url("site_session.login_url", url, production, problems);
    }
    let cookie_name = raw.cookie_name.trim().to_owned();
    if cookie_name.is_empty()
        || !cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        problems.push("site_session.cookie_name: must be a cookie name (letters, digits, -_.)".to_owned());
    }
    SiteSessionSettings {
        cookie_name,
        verification,
        issuer: raw.issuer.trim().to_owned(),
        audience: raw.audience.trim().to_owned(),
        algorithms,
        login_url,
    }
}

/// Checks the three sections; `None` when web messaging is off (no deployment id).
pub(super) fn web_messaging(
    raw: RawWebMessaging,
    oidc_raw: RawOidc,
    session_raw: RawSiteSession,
    websocket_from_region: Option<String>,
    config_dir: &Path,
    production: bool,
    problems: &mut Problems,
) -> Option<WebMessagingSettings> {
    let deployment_id = raw.deployment_id.trim().to_owned();
    if deployment_id.is_empty() {
        return None;
    }
    if uuid::Uuid::try_parse(&deployment_id).is_err() || deployment_id.len() != 36 {
        problems.push(format!(
            "web_messaging.deployment_id: {deployment_id:?} must be the web deployment's id, a UUID"
        ));
    }
    let websocket_url = match (raw.websocket_url.trim(), websocket_from_region) {
        ("", Some(derived)) => derived,
        ("", None) => {
            problems.push(
                "web_messaging.websocket_url: must be set when Genesys is given by base URL rather than \
                 region (e.g. wss://webmessaging.mypurecloud.com/v1)"
                    .to_owned(),
            );
            String::new()
        }
        (url, _) => {
            let secure = url.starts_with("wss://");
            let plain = url.starts_with("ws://");
            if !secure && !plain {
                problems.push(format!(
                    "web_messaging.websocket_url: {url:?} must be a ws:// or wss:// URL"
                ));
            } else if production && plain && !url_host(url).is_some_and(plain_http_allowed) {
                problems.push(format!(
                    "web_messaging.websocket_url: {url} is plain ws:// in production; use wss://"
                ));
            }
            url.to_owned()
        }
    };
    let oidc = oidc(oidc_raw, config_dir, production, problems);
    let site_session = site_session(session_raw, raw.allow_anonymous, config_dir, production, problems);
    Some(WebMessagingSettings {
        deployment_id,
        websocket_url,
        allow_anonymous: raw.allow_anonymous,
        deployment_cache: Duration::from_secs(raw.deployment_cache_seconds.max(1)),
        oidc: oidc?,
        site_session,
    })
}
