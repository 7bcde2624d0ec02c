//! This service as an OpenID Connect provider, so that Genesys can vouch for a site's visitor:
//! Genesys redeems a code of ours at the token endpoint and reads the ID token's `sub` (and
//! `email`, `given_name`, `family_name`).
//!
//! Everything here is synchronous and `Send + Sync`; the routes in `crate::routes::oidc` carry it
//! over HTTP. Codes, access tokens and refresh tokens are sealed ([`seal`]): bound to the client,
//! the `redirect_uri`, the PKCE challenge and the nonce, and redeemable by any replica that holds
//! the signing key. Codes are single use and refresh tokens rotate; both records are bounded
//! ([`records`]). ID tokens are RS256 JWTs signed with ring through `jose`.

pub mod records;
pub mod seal;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use domain::oidc::{
    AUTHORIZATION_CODE_GRANT, CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, DISCOVERY_PATH, IdTokenClaims,
    ProviderMetadata, REFRESH_TOKEN_GRANT, TokenResponse, error_codes,
};
use hmac::{Hmac, Mac};
use jose::RsaSigningKey;
use jsonwebtoken::jwk::JwkSet;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::settings::OidcSettings;
use records::{NotRecorded, UseRecord, WhenFull};
use seal::{Purpose, Sealer};

/// The provider's paths, under its issuer.
pub const AUTHORIZE_PATH: &str = "/oidc/authorize";
/// Where codes and refresh tokens are redeemed.
pub const TOKEN_PATH: &str = "/oidc/token";
/// The public signing keys.
pub const JWKS_PATH: &str = "/oidc/jwks.json";
/// Claims of the visitor behind an access token.
pub const USERINFO_PATH: &str = "/oidc/userinfo";

/// The scopes codes are issued for when this service asks on the visitor's behalf.
pub const DEFAULT_SCOPE: &str = "openid profile email offline_access";

/// Who the visitor is, as the site's session says (or a pseudonym for an anonymous visitor).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The visitor's stable id: Genesys' sender address.
    pub sub: String,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Given name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Family name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// When the visitor signed in at the site, seconds since the epoch.
    pub auth_time: i64,
}

impl Identity {
    /// A pseudonymous visitor: a random `sub` that says nothing about who they are.
    pub fn anonymous(now: i64) -> Self {
        Self {
            sub: format!("anonymous-{}", random_token(16)),
            email: None,
            given_name: None,
            family_name: None,
            auth_time: now,
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Personal data stays out of logs; the subject is enough to follow a visitor.
        f.debug_struct("Identity")
            .field("sub", &self.sub)
            .finish_non_exhaustive()
    }
}

/// `n` random bytes, base64url.
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's randomness is available");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The PKCE S256 challenge of `verifier` (RFC 7636 section 4.2).
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()))
}

/// Whether `verifier` has RFC 7636's form: 43 to 128 of `[A-Za-z0-9-._~]`.
pub fn is_code_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// What a code is bound to and says about the visitor.
#[derive(Clone, Serialize, Deserialize)]
struct CodeClaims {
    jti: String,
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    scope: String,
    identity: Identity,
    exp: i64,
}

#[derive(Clone, Serialize, Deserialize)]
struct AccessClaims {
    client_id: String,
    scope: String,
    identity: Identity,
    exp: i64,
}

#[derive(Clone, Serialize, Deserialize)]
struct RefreshClaims {
    jti: String,
    /// The refresh tokens of one sign-in share a family; reusing a rotated one ends the family.
    family: String,
    client_id: String,
    scope: String,
    identity: Identity,
    exp: i64,
}

/// A code to mint: who it is for and what it is bound to.
#[derive(Debug, Clone)]
pub struct CodeRequest {
    /// The client that will redeem it.
    pub client_id: String,
    /// Where it is sent back (must be one of the configured redirect URIs).
    pub redirect_uri: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// The nonce the ID token must carry.
    pub nonce: Option<String>,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The visitor.
    pub identity: Identity,
}

/// A refusal in RFC 6749's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// HTTP status: 400, 401 (client authentication) or 503.
    pub status: u16,
    /// The RFC 6749 `error`.
    pub error: &'static str,
    /// What went wrong (never a secret, code or token).
    pub description: String,
    /// Whether the client tried HTTP Basic, so the 401 carries `WWW-Authenticate`.
    pub basic_challenge: bool,
}

impl OAuthError {
    fn invalid_grant(description: impl Into<String>) -> Self {
        Self {
            status: 400,
            error: error_codes::INVALID_GRANT,
            description: description.into(),
            basic_challenge: false,
        }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self {
            status: 400,
            error: error_codes::INVALID_REQUEST,
            description: description.into(),
            basic_challenge: false,
        }
    }
}

/// How the client authenticated at the token endpoint.
#[derive(Clone, Default)]
pub struct ClientAuthentication {
    /// From `Authorization: Basic`, if sent.
    pub basic: Option<BasicCredentials>,
    /// The form's `client_id`, if sent.
    pub form_id: Option<String>,
    /// The form's `client_secret`, if sent.
    pub form_secret: Option<String>,
}

impl fmt::Debug for ClientAuthentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAuthentication")
            .field("basic", &self.basic)
            .field("form_id", &self.form_id)
            .finish_non_exhaustive()
    }
}

/// A token-endpoint grant.
#[derive(Clone)]
pub enum Grant {
    /// `grant_type=authorization_code`.
    AuthorizationCode {
        /// The code.
        code: String,
        /// Must equal the one the code was issued for.
        redirect_uri: Option<String>,
        /// The PKCE verifier.
        code_verifier: Option<String>,
    },
    /// `grant_type=refresh_token`.
    RefreshToken {
        /// The refresh token.
        refresh_token: String,
    },
}

impl Grant {
    /// The grant of a form's fields, or the RFC 6749 error for a missing or unknown grant.
    pub fn from_form(
        grant_type: &str,
        code: Option<String>,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
        refresh_token: Option<String>,
    ) -> Result<Self, OAuthError> {
        match grant_type {
            AUTHORIZATION_CODE_GRANT => Ok(Self::AuthorizationCode {
                code: code.ok_or_else(|| OAuthError::invalid_request("code is required"))?,
                redirect_uri,
                code_verifier,
            }),
            REFRESH_TOKEN_GRANT => Ok(Self::RefreshToken {
                refresh_token: refresh_token
                    .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?,
            }),
            "" => Err(OAuthError::invalid_request("grant_type is required")),
            _ => Err(OAuthError {
                status: 400,
                error: error_codes::UNSUPPORTED_GRANT_TYPE,
                description: "grant_type must be authorization_code or refresh_token".to_owned(),
                basic_challenge: false,
            }),
        }
    }

    /// A label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AuthorizationCode { .. } => "authorization_code",
            Self::RefreshToken { .. } => "refresh_token",
        }
    }
}

/// The provider: keys, sealing, client, lifetimes and the single-use records. `Send + Sync`.
pub struct OidcProvider {
    issuer: String,
    client_id: String,
    /// HMAC of the client secret under `secret_key`: the secret is compared in constant time and
    /// never kept in the clear beside the code.
    secret_key: [u8; 32],
    secret_tag: Vec<u8>,
    redirect_uris: Vec<String>,
    signing_key: Arc<RsaSigningKey>,
    /// Previous keys, published until `previous_published_until`.
    previous_keys: Vec<Arc<RsaSigningKey>>,
    previous_published_until: Instant,
    /// Keys published ahead of a rotation; nothing is signed with them yet.
    next_keys: Vec<Arc<RsaSigningKey>>,
    sealer: Sealer,
    code_ttl: Duration,
    access_token_ttl: Duration,
    id_token_ttl: Duration,
    refresh_token_ttl: Duration,
    redeemed_codes: UseRecord,
    rotated_refresh_tokens: UseRecord,
    revoked_families: UseRecord,
}

impl fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProvider")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("kid", &self.signing_key.kid())
            .finish_non_exhaustive()
    }
}

fn secret_tag(key: &[u8; 32], secret: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(secret);
    mac
}

fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl OidcProvider {
    /// The provider `settings` describe, started at `started` (previous keys stay published for a
    /// token lifetime from then, and keep opening refresh tokens for a refresh-token lifetime).
    pub fn new(settings: &OidcSettings, started: Instant) -> Self {
        let mut secret_key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut secret_key)
            .expect("the system's randomness is available");
        let secret_tag = secret_tag(&secret_key, settings.client_secret.expose_secret().as_bytes())
            .finalize()
            .into_bytes()
            .to_vec();
        let previous: Vec<&RsaSigningKey> = settings.previous_keys.iter().map(AsRef::as_ref).collect();
        let next: Vec<&RsaSigningKey> = settings.next_keys.iter().map(AsRef::as_ref).collect();
        let longest_token = settings.id_token_ttl.max(settings.access_token_ttl);
        Self {
            issuer: settings.issuer.clone(),
            client_id: settings.client_id.clone(),
            secret_key,
            secret_tag,
            redirect_uris: settings.redirect_uris.clone(),
            signing_key: settings.signing_key.clone(),
            previous_keys: settings.previous_keys.clone(),
            previous_published_until: started + longest_token,
            next_keys: settings.next_keys.clone(),
            sealer: Sealer::new(
                &settings.signing_key,
                &previous,
                started + settings.refresh_token_ttl,
                &next,
            ),
            code_ttl: settings.code_ttl,
            access_token_ttl: settings.access_token_ttl,
            id_token_ttl: settings.id_token_ttl,
            refresh_token_ttl: settings.refresh_token_ttl,
            redeemed_codes: UseRecord::new(settings.max_redeemed_codes, WhenFull::Refuse),
            rotated_refresh_tokens: UseRecord::new(settings.max_refresh_records, WhenFull::ForgetOldest),
            revoked_families: UseRecord::new(settings.max_refresh_records, WhenFull::ForgetOldest),
        }
    }

    /// The issuer (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The one client: Genesys' integration.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The configured redirect URIs, in order.
    pub fn redirect_uris(&self) -> &[String] {
        &self.redirect_uris
    }

    /// The discovery document.
    pub fn discovery(&self) -> ProviderMetadata {
        let at = |path: &str| format!("{}{path}", self.issuer);
        let strings = |items: &[&str]| Some(items.iter().map(|s| (*s).to_owned()).collect());
        ProviderMetadata {
            issuer: self.issuer.clone(),
            authorization_endpoint: at(AUTHORIZE_PATH),
            token_endpoint: at(TOKEN_PATH),
            jwks_uri: at(JWKS_PATH),
            userinfo_endpoint: Some(at(USERINFO_PATH)),
            response_types_supported: vec!["code".to_owned()],
            subject_types_supported: vec!["public".to_owned()],
            id_token_signing_alg_values_supported: vec!["RS256".to_owned()],
            scopes_supported: strings(&["openid", "profile", "email", "offline_access"]),
            token_endpoint_auth_methods_supported: strings(&[CLIENT_SECRET_BASIC, CLIENT_SECRET_POST]),
            code_challenge_methods_supported: strings(&["S256"]),
            grant_types_supported: strings(&[AUTHORIZATION_CODE_GRANT, REFRESH_TOKEN_GRANT]),
        }
    }

    /// Where the discovery document is.
    pub fn discovery_url(&self) -> String {
        format!("{}{DISCOVERY_PATH}", self.issuer)
    }

    /// The public keys: the current one, the next ones (so relying parties hold them before
    /// anything is signed with them), and previous ones while tokens they signed may live.
    pub fn jwks(&self, now: Instant) -> JwkSet {
        let mut keys = vec![self.signing_key.public_jwk()];
        keys.extend(self.next_keys.iter().map(|key| key.public_jwk()));
        if now < self.previous_published_until {
            keys.extend(self.previous_keys.iter().map(|key| key.public_jwk()));
        }
        JwkSet { keys }
    }

    /// Whether `redirect_uri` is one of the configured ones (exact match).
    pub fn allows_redirect(&self, redirect_uri: &str) -> bool {
        self.redirect_uris.iter().any(|uri| uri == redirect_uri)
    }

    /// A sealed code for `request`, valid for the code lifetime from `now` (seconds since the epoch).
    pub fn mint_code(&self, request: CodeRequest, now: i64) -> String {
        self.sealer.seal(
            Purpose::Code,
            &CodeClaims {
                jti: random_token(16),
                client_id: request.client_id,
                redirect_uri: request.redirect_uri,
                code_challenge: request.code_challenge,
                nonce: request.nonce,
                scope: request.scope,
                identity: request.identity,
                exp: now.saturating_add(seconds(self.code_ttl)),
            },
        )
    }

    /// Checks the client's credentials: exactly one method, the right id, the right secret.
    pub fn authenticate(&self, auth: &ClientAuthentication) -> Result<(), OAuthError> {
        let basic_challenge = auth.basic.is_some();
        let refuse = |description: &str| OAuthError {
            status: 401,
            error: error_codes::INVALID_CLIENT,
            description: description.to_owned(),
            basic_challenge,
        };
        let candidates = match (&auth.basic, &auth.form_id, &auth.form_secret) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "authenticate the client one way: HTTP Basic or the form's client_id and client_secret",
                ));
            }
            (Some(basic), None, None) => [basic.as_sent.clone(), basic.form_decoded.clone()],
            (None, Some(id), Some(secret)) => {
                let pair = (id.clone(), secret.clone());
                [pair.clone(), pair]
            }
            _ => return Err(refuse("client authentication is required")),
        };
        // Every candidate, id and secret, compared before answering, so the time taken does not
        // tell which one failed.
        let matches = |(id, secret): &(String, String)| {
            let secret_ok = secret_tag(&self.secret_key, secret.as_bytes())
                .verify_slice(&self.secret_tag)
                .is_ok();
            (*id == self.client_id) & secret_ok
        };
        let [first, second] = &candidates;
        if matches(first) | matches(second) {
            Ok(())
        } else {
            Err(refuse("unknown client or wrong secret"))
        }
    }

    /// Redeems a grant for the authenticated client at `now` (seconds since the epoch).
    pub fn token(&self, grant: Grant, now: i64, monotonic: Instant) -> Result<TokenResponse, OAuthError> {
        match grant {
            Grant::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            } => self.redeem_code(
                &code,
                redirect_uri.as_deref(),
                code_verifier.as_deref(),
                now,
                monotonic,
            ),
            Grant::RefreshToken { refresh_token } => self.refresh(&refresh_token, now, monotonic),
        }
    }

    fn redeem_code(
        &self,
        code: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
        now: i64,
        monotonic: Instant,
    ) -> Result<TokenResponse, OAuthError> {
        let claims: CodeClaims = self
            .sealer
            .open(Purpose::Code, code, monotonic)
            .ok_or_else(|| OAuthError::invalid_grant("the code is not valid"))?;
        if claims.exp <= now {
            return Err(OAuthError::invalid_grant("the code has expired"));
        }
        if claims.client_id != self.client_id {
            return Err(OAuthError::invalid_grant("the code was issued to another client"));
        }
        // Spent before the remaining checks: a code presented with a wrong verifier cannot be
        // tried again (no guessing the verifier).
        match self.redeemed_codes.record(&claims.jti, claims.exp, now) {
            Ok(()) => {}
            Err(NotRecorded::AlreadyUsed) => {
                return Err(OAuthError::invalid_grant("the code has been used already"));
            }
            Err(NotRecorded::Full) => {
                return Err(OAuthError {
                    status: 503,
                    error: "temporarily_unavailable",
                    description: "too many codes are being redeemed; retry shortly".to_owned(),
                    basic_challenge: false,
                });
            }
        }
        if redirect_uri != Some(claims.redirect_uri.as_str()) {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request's",
            ));
        }
        let verifier = code_verifier
            .filter(|v| is_code_verifier(v))
            .ok_or_else(|| OAuthError::invalid_grant("a valid code_verifier (PKCE) is required"))?;
        // Not secret: the verifier is a SHA-256 preimage, and the code is already spent.
        if s256_challenge(verifier) != claims.code_challenge {
            return Err(OAuthError::invalid_grant(
                "code_verifier does not match the code_challenge",
            ));
        }
        let family = random_token(16);
        Ok(self.tokens(
            &claims.identity,
            &claims.scope,
            claims.nonce,
            Some(family),
            None,
            now,
        ))
    }

    fn refresh(&self, token: &str, now: i64, monotonic: Instant) -> Result<TokenResponse, OAuthError> {
        let claims: RefreshClaims = self
            .sealer
            .open(Purpose::Refresh, token, monotonic)
            .ok_or_else(|| OAuthError::invalid_grant("the refresh token is not valid"))?;
        if claims.exp <= now {
            return Err(OAuthError::invalid_grant("the refresh token has expired"));
        }
        if claims.client_id != self.client_id {
            return Err(OAuthError::invalid_grant(
                "the refresh token was issued to another client",
            ));
        }
        if self.revoked_families.contains(&claims.family, now) {
            return Err(OAuthError::invalid_grant("the refresh token has been revoked"));
        }
        if self
            .rotated_refresh_tokens
            .record(&claims.jti, claims.exp, now)
            .is_err()
        {
            // A rotated token came back: it leaked, or its successor did. End the whole sign-in.
            let _ = self.revoked_families.record(&claims.family, claims.exp, now);
            tracing::warn!(sub = %claims.identity.sub, "a rotated refresh token was used again; its sign-in is revoked");
            return Err(OAuthError::invalid_grant(
                "the refresh token has been used already",
            ));
        }
        Ok(self.tokens(
            &claims.identity,
            &claims.scope,
            None,
            Some(claims.family),
            Some(claims.exp),
            now,
        ))
    }

    /// Access, ID and (with `offline_access`) refresh tokens for `identity`.
    fn tokens(
        &self,
        identity: &Identity,
        scope: &str,
        nonce: Option<String>,
        family: Option<String>,
        refresh_expires: Option<i64>,
        now: i64,
    ) -> TokenResponse {
        let access_token = self.sealer.seal(
            Purpose::Access,
            &AccessClaims {
                client_id: self.client_id.clone(),
                scope: scope.to_owned(),
                identity: identity.clone(),
                exp: now.saturating_add(seconds(self.access_token_ttl)),
            },
        );
        let profile = scope.split(' ').any(|s| s == "profile");
        let email = scope.split(' ').any(|s| s == "email");
        let id_token = self
            .signing_key
            .sign(&IdTokenClaims {
                iss: self.issuer.clone(),
                sub: identity.sub.clone(),
                aud: domain::oidc::Audience::One(self.client_id.clone()),
                exp: now.saturating_add(seconds(self.id_token_ttl)),
                iat: now,
                auth_time: Some(identity.auth_time),
                nonce,
                azp: Some(self.client_id.clone()),
                email: identity.email.clone().filter(|_| email),
                given_name: identity.given_name.clone().filter(|_| profile),
                family_name: identity.family_name.clone().filter(|_| profile),
            })
            .expect("ID token claims serialize and ring signs");
        let refresh_token = scope.split(' ').any(|s| s == "offline_access").then(|| {
            self.sealer.seal(
                Purpose::Refresh,
                &RefreshClaims {
                    jti: random_token(16),
                    family: family.unwrap_or_else(|| random_token(16)),
                    client_id: self.client_id.clone(),
                    scope: scope.to_owned(),
                    identity: identity.clone(),
                    // A rotation keeps the sign-in's end: refreshing never extends it.
                    exp: refresh_expires
                        .unwrap_or_else(|| now.saturating_add(seconds(self.refresh_token_ttl))),
                },
            )
        });
        TokenResponse {
            access_token,
            token_type: "Bearer".to_owned(),
            expires_in: self.access_token_ttl.as_secs(),
            id_token: Some(id_token),
            refresh_token,
            scope: Some(scope.to_owned()),
        }
    }

    /// The visitor behind a live access token of this provider.
    pub fn userinfo(&self, access_token: &str, now: i64, monotonic: Instant) -> Option<(Identity, String)> {
        let claims: AccessClaims = self.sealer.open(Purpose::Access, access_token, monotonic)?;
        (claims.exp > now && claims.client_id == self.client_id).then_some((claims.identity, claims.scope))
    }

    /// Redeemed codes remembered right now.
    pub fn redeemed_codes(&self) -> usize {
        self.redeemed_codes.len()
    }
}

/// The client id and secret of `Authorization: Basic`.
///
/// RFC 6749 (2.3.1) has clients form-encode both before Basic encoding; many send them as they
/// are. Both readings are kept and either may match, so a secret with `+`, `%` or `&` works
/// whichever the client does (and nothing after a `&` is ever dropped).
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    /// `(id, secret)` as the header carries them.
    pub as_sent: (String, String),
    /// `(id, secret)` form-decoded (`+` is a space, `%XX` a byte); the same as `as_sent` when
    /// that is not valid form encoding.
    pub form_decoded: (String, String),
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("id", &self.as_sent.0)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// `part` form-decoded as one value: `+` is a space and `%XX` a byte; `None` for a `%` not
/// followed by two hex digits or bytes that are not UTF-8.
fn form_decode(part: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(part.len());
    let mut rest = part.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        match byte {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = rest.get(..2)?;
                let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                bytes.push(value);
                rest = &rest[2..];
            }
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes).ok()
}

/// The credentials of `Authorization: Basic`; `None` when the header is absent or not Basic,
/// `Err` when it is Basic but malformed.
pub fn basic_credentials(header: Option<&str>) -> Result<Option<BasicCredentials>, OAuthError> {
    let Some(value) = header else { return Ok(None) };
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let malformed = || OAuthError {
        status: 401,
        error: error_codes::INVALID_CLIENT,
        description: "the Basic credentials are malformed".to_owned(),
        basic_challenge: true,
    };
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = text.split_once(':').ok_or_else(malformed)?;
    let as_sent = (id.to_owned(), secret.to_owned());
    let form_decoded = form_decode(id)
        .zip(form_decode(secret))
        .unwrap_or_else(|| as_sent.clone());
    Ok(Some(BasicCredentials {
        as_sent,
        form_decoded,
    }))
}

#[cfg(test)]
mod tests;
