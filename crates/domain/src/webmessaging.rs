//! Wire types of Genesys web messaging: the token routes (authorization-code exchange, refresh,
//! revoke), the web deployment, the messaging JWT's claims and the WebSocket's actions and envelopes.
//!
//! Field names follow Genesys' JSON (camelCase). Sources: the Platform API SDK models
//! (`WebDeploymentsOAuthExchangeRequest`, `WebDeploymentsAuthorizationResponse`, `WebDeployment`, ...)
//! and the Messenger transport's message types. Every type holding a token or a secret redacts it in
//! `Debug`.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::validation::FieldViolation;

/// `POST`: trades an identity provider's authorization code for a messaging JWT.
pub const OAUTH_EXCHANGE_PATH: &str = "/api/v2/webdeployments/token/oauthcodegrantjwtexchange";
/// `POST`: a new messaging JWT for a refresh token.
pub const REFRESH_PATH: &str = "/api/v2/webdeployments/token/refresh";
/// `DELETE` with `Authorization: Bearer <messaging JWT>`: ends the session's tokens.
pub const REVOKE_PATH: &str = "/api/v2/webdeployments/token/revoke";
/// The three token routes a browser calls without any Genesys credential.
pub const TOKEN_PATHS: [&str; 3] = [OAUTH_EXCHANGE_PATH, REFRESH_PATH, REVOKE_PATH];
/// `GET` (client credentials): the deployment whose id follows.
pub const DEPLOYMENTS_PATH_PREFIX: &str = "/api/v2/webdeployments/deployments/";
/// The WebSocket, on the `webmessaging.<domain>` host: `/v1?deploymentId=<id>`.
pub const WEBSOCKET_PATH: &str = "/v1";
/// The query parameter naming the deployment on the WebSocket URL.
pub const DEPLOYMENT_ID_QUERY: &str = "deploymentId";
/// The permission a client-credentials client needs to read a deployment.
pub const DEPLOYMENT_VIEW_PERMISSION: &str = "webDeployments:deployment:view";
/// Longest session token a Messenger may choose (it makes its own, usually a UUID).
pub const SESSION_TOKEN_MAX_CHARS: usize = 2048;

const REDACTED: &str = "[redacted]";

/// `code` values of the Genesys error bodies the web-messaging routes answer with.
///
/// Genesys' own codes for these failures are *unconfirmed*; these are the emulator's stable choices,
/// one per failure a user can meet, so that a client can tell them apart. The generic ones
/// (`bad.request`, `not.found`, `bad.credentials`, `missing.permissions`,
/// `too.many.requests.retry.after`) are in [`crate::genesys::error_codes`].
pub mod error_codes {
    /// 403: the deployment's status is not `Active`.
    pub const DEPLOYMENT_NOT_ACTIVE: &str = "deployment.not.active";
    /// 400: the deployment has no OpenID Connect integration to redeem codes with.
    pub const AUTHENTICATION_NOT_CONFIGURED: &str = "deployment.authentication.not.configured";
    /// 403: the browser's `Origin` is not allowed by the deployment.
    pub const ORIGIN_NOT_ALLOWED: &str = "origin.not.allowed";
    /// 502: the identity provider's discovery document could not be read (unreachable, timed out,
    /// an error status, or not a discovery document).
    pub const IDP_DISCOVERY_FAILED: &str = "identity.provider.discovery.failed";
    /// 502: the token endpoint could not redeem the code for a reason other than the code or the
    /// client (unreachable, timed out, 5xx, another OAuth error, or not a token response).
    pub const IDP_TOKEN_FAILED: &str = "identity.provider.token.failed";
    /// 502: the identity provider's JWKS could not be read.
    pub const IDP_JWKS_FAILED: &str = "identity.provider.jwks.failed";
    /// 502: the token endpoint refused the integration's client (`invalid_client`: a wrong secret).
    pub const IDP_CLIENT_REJECTED: &str = "identity.provider.client.rejected";
    /// 400: the token endpoint refused the code (`invalid_grant`: used, expired, or bound to
    /// another `redirect_uri` or PKCE verifier).
    pub const AUTHORIZATION_CODE_INVALID: &str = "authorization.code.invalid";
    /// 401: the ID token failed a check (signature, issuer, audience, expiry, nonce, ...); the
    /// message names which.
    pub const ID_TOKEN_INVALID: &str = "id.token.invalid";
    /// 401: the refresh token is unknown, expired, revoked, or belongs to another deployment.
    pub const REFRESH_TOKEN_INVALID: &str = "refresh.token.invalid";
    /// 503: the emulator's session store is full.
    pub const SESSION_STORE_FULL: &str = "session.store.full";
    /// 503: the emulator holds as many WebSockets as it allows.
    pub const WEBSOCKET_LIMIT_REACHED: &str = "websocket.limit.reached";
}

fn redact<T>(value: &Option<T>) -> Option<&'static str> {
    value.as_ref().map(|_| REDACTED)
}

/// `oauth` of an exchange request: what the identity provider gave the page.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthRequestParameters {
    /// The authorization code to redeem (or `id_token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// An ID token obtained by the page itself, instead of a code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The `redirect_uri` the code was issued for.
    pub redirect_uri: String,
    /// The nonce sent in the authorization request; the ID token must carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Largest accepted age of the visitor's authentication, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    /// The PKCE verifier of the code's S256 challenge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_verifier: Option<String>,
    /// The issuer the page expects, when it knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

impl fmt::Debug for OAuthRequestParameters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthRequestParameters")
            .field("code", &redact(&self.code))
            .field("id_token", &redact(&self.id_token))
            .field("redirect_uri", &self.redirect_uri)
            .field("nonce", &self.nonce)
            .field("max_age", &self.max_age)
            .field("code_verifier", &redact(&self.code_verifier))
            .field("iss", &self.iss)
            .finish()
    }
}

/// Body of `POST` [`OAUTH_EXCHANGE_PATH`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthExchangeRequest {
    /// The web deployment whose OpenID Connect integration redeems the code.
    pub deployment_id: String,
    /// The code (or ID token) and the parameters it was issued with.
    pub oauth: OAuthRequestParameters,
    /// Journey tracking context, passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journey_context: Option<Value>,
}

impl OAuthExchangeRequest {
    /// Parses a body and checks what serde cannot: exactly one of `code` and `idToken`, and no empty
    /// required value. The first problem is reported by its JSON path.
    pub fn from_json_slice(body: &[u8]) -> Result<Self, FieldViolation> {
        let request: Self = serde_json::from_slice(body)
            .map_err(|e| FieldViolation::new("body", format!("must be JSON: {e}")))?;
        if request.deployment_id.trim().is_empty() {
            return Err(FieldViolation::new("deploymentId", "is required"));
        }
        let oauth = &request.oauth;
        match (&oauth.code, &oauth.id_token) {
            (Some(_), Some(_)) => {
                return Err(FieldViolation::new(
                    "oauth",
                    "holds both code and idToken; send one",
                ));
            }
            (None, None) => {
                return Err(FieldViolation::new(
                    "oauth.code",
                    "is required (or oauth.idToken)",
                ));
            }
            (Some(code), None) if code.is_empty() => {
                return Err(FieldViolation::new("oauth.code", "must not be empty"));
            }
            (None, Some(token)) if token.is_empty() => {
                return Err(FieldViolation::new("oauth.idToken", "must not be empty"));
            }
            _ => {}
        }
        if oauth.redirect_uri.trim().is_empty() {
            return Err(FieldViolation::new("oauth.redirectUri", "is required"));
        }
        Ok(request)
    }
}

/// 200 answer of the exchange (and of a refresh, whose `refreshToken` is optional).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationResponse {
    /// The messaging JWT for `configureAuthenticatedSession`. Never log it.
    pub jwt: String,
    /// The refresh token. Never log it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl fmt::Debug for AuthorizationResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationResponse")
            .field("jwt", &REDACTED)
            .field("refresh_token", &redact(&self.refresh_token))
            .finish()
    }
}

/// Body of `POST` [`REFRESH_PATH`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshJwtRequest {
    /// The refresh token from the exchange. Never log it.
    pub refresh_token: String,
    /// The deployment the token was issued for.
    pub deployment_id: String,
}

impl fmt::Debug for RefreshJwtRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshJwtRequest")
            .field("refresh_token", &REDACTED)
            .field("deployment_id", &self.deployment_id)
            .finish()
    }
}

/// Lifecycle state of a web deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeploymentStatus {
    /// Being created.
    Pending,
    /// Serving Messenger traffic.
    Active,
    /// Switched off.
    Inactive,
    /// Broken configuration.
    Error,
    /// Being deleted.
    Deleting,
    /// Its Messenger SDK version is no longer supported.
    OutdatedSdkVersion,
}

/// 200 answer of `GET` [`DEPLOYMENTS_PATH_PREFIX`]`{id}` (the fields this project uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebDeployment {
    /// Deployment id (a UUID).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Every origin may open the Messenger.
    #[serde(default)]
    pub allow_all_domains: bool,
    /// The origins allowed otherwise (see [`WebDeployment::allows_origin`]).
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// Lifecycle state; only `Active` serves traffic.
    pub status: DeploymentStatus,
    /// The deployment's own URI on the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_uri: Option<String>,
}

impl WebDeployment {
    /// Whether a browser `Origin` (`scheme://host[:port]`) may use this deployment.
    ///
    /// Yes when `allowAllDomains` is set, or when an `allowedDomains` entry, compared without regard
    /// to case:
    /// - is a full origin (`https://shop.example.com[:port]`) equal to it (default ports implied);
    /// - is a bare host (`example.com`), equal to its host, under any scheme and port
    ///   (`example.com:8443` also pins the port);
    /// - is `*.example.com`, and its host is a subdomain of `example.com` (not `example.com` itself).
    ///
    /// An `Origin` that is not `scheme://host[:port]` (such as `null`) matches no entry.
    pub fn allows_origin(&self, origin: &str) -> bool {
        if self.allow_all_domains {
            return true;
        }
        let Some(origin) = Origin::parse(origin) else {
            return false;
        };
        self.allowed_domains.iter().any(|entry| origin.matches(entry))
    }
}

/// A parsed, lowercased `scheme://host[:port]`, with the scheme's default port filled in.
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim().to_ascii_lowercase();
        let (scheme, rest) = raw.split_once("://")?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return None;
        }
        let (host, port) = split_host_port(rest.strip_suffix('/').unwrap_or(rest))?;
        let port = port.or(match scheme {
            "http" | "ws" => Some(80),
            "https" | "wss" => Some(443),
            _ => None,
        });
        Some(Self {
            scheme: scheme.to_owned(),
            host,
            port,
        })
    }

    fn matches(&self, entry: &str) -> bool {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.contains("://") {
            return Origin::parse(&entry).is_some_and(|allowed| allowed == *self);
        }
        if let Some(parent) = entry.strip_prefix("*.") {
            return !parent.is_empty()
                && self
                    .host
                    .strip_suffix(parent)
                    .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'));
        }
        match split_host_port(&entry) {
            Some((host, None)) => host == self.host,
            Some((host, Some(port))) => host == self.host && Some(port) == self.port,
            None => false,
        }
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; no path, user info, query or fragment.
fn split_host_port(authority: &str) -> Option<(String, Option<u16>)> {
    if authority.is_empty() || authority.contains(['/', '@', '?', '#', ' ']) {
        return None;
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (format!("[{v6}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (authority.to_owned(), None),
        }
    };
    if host.is_empty() || host.contains(':') && !host.starts_with('[') {
        return None;
    }
    let port = match port {
        Some(port) => Some(port.parse::<u16>().ok()?),
        None => None,
    };
    Some((host, port))
}

/// Claims of a Genesys messaging JWT (as the emulator issues them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagingJwtClaims {
    /// The visitor: the identity provider's `sub` (the agent sees it as the sender address).
    pub sub: String,
    /// The deployment the session belongs to.
    pub deployment_id: String,
    /// Issuer.
    pub iss: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// This token's own id.
    pub jti: String,
    /// The authenticated session; refreshed tokens keep it, revoking ends it.
    pub sid: String,
}

/// `data` of `configureAuthenticatedSession`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticatedSessionData {
    /// The messaging JWT. Never log it.
    pub code: String,
}

impl fmt::Debug for AuthenticatedSessionData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticatedSessionData")
            .field("code", &REDACTED)
            .finish()
    }
}

/// What a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageType {
    /// Plain text.
    Text,
    /// An event such as typing or presence.
    Event,
    /// Quick replies, cards and other structured content.
    Structured,
    /// Anything else.
    #[serde(other)]
    Unknown,
}

/// The guest's message in `onMessage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingMessage {
    /// `Text` for a text message.
    #[serde(rename = "type")]
    pub message_type: MessageType,
    /// The text of a `Text` message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A message the Messenger sends on the WebSocket, tagged by `action`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum WebMessagingRequest {
    /// Starts (or resumes) an anonymous session.
    #[serde(rename_all = "camelCase")]
    ConfigureSession {
        /// The Messenger's own session token (at most [`SESSION_TOKEN_MAX_CHARS`]).
        token: String,
        /// The deployment.
        deployment_id: String,
        /// Journey tracking context, passed through.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        journey_context: Option<Value>,
    },
    /// Starts (or resumes) a session authenticated by a messaging JWT.
    #[serde(rename_all = "camelCase")]
    ConfigureAuthenticatedSession {
        /// The Messenger's own session token.
        token: String,
        /// The deployment.
        deployment_id: String,
        /// `{"code": "<messaging JWT>"}`.
        data: AuthenticatedSessionData,
        /// Journey tracking context, passed through.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        journey_context: Option<Value>,
    },
    /// Asks for a JWT of the configured session.
    GetJwt {
        /// The session token.
        token: String,
    },
    /// The guest's message.
    OnMessage {
        /// The session token.
        token: String,
        /// What the guest wrote.
        message: IncomingMessage,
    },
}

impl fmt::Debug for WebMessagingRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConfigureSession { deployment_id, .. } => f
                .debug_struct("ConfigureSession")
                .field("token", &REDACTED)
                .field("deployment_id", deployment_id)
                .finish_non_exhaustive(),
            Self::ConfigureAuthenticatedSession {
                deployment_id, data, ..
            } => f
                .debug_struct("ConfigureAuthenticatedSession")
                .field("token", &REDACTED)
                .field("deployment_id", deployment_id)
                .field("data", data)
                .finish_non_exhaustive(),
            Self::GetJwt { .. } => f.debug_struct("GetJwt").field("token", &REDACTED).finish(),
            Self::OnMessage { message, .. } => f
                .debug_struct("OnMessage")
                .field("token", &REDACTED)
                .field("message", message)
                .finish(),
        }
    }
}

impl WebMessagingRequest {
    /// The session token every action carries.
    pub fn token(&self) -> &str {
        match self {
            Self::ConfigureSession { token, .. }
            | Self::ConfigureAuthenticatedSession { token, .. }
            | Self::GetJwt { token }
            | Self::OnMessage { token, .. } => token,
        }
    }
}

/// `type` of a WebSocket envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvelopeType {
    /// The answer to one of the Messenger's actions.
    Response,
    /// An event the platform pushes (such as an agent's message).
    Message,
}

/// `class` values of WebSocket envelopes.
pub mod envelope_class {
    /// Body is a [`super::SessionResponse`].
    pub const SESSION_RESPONSE: &str = "SessionResponse";
    /// Body is a [`super::JwtResponse`].
    pub const JWT_RESPONSE: &str = "JwtResponse";
    /// Body is a [`super::StructuredMessage`].
    pub const STRUCTURED_MESSAGE: &str = "StructuredMessage";
    /// Body is a string: an error's explanation.
    pub const STRING: &str = "string";
}

/// Every message Genesys sends on the WebSocket: `{"type", "class", "code", "body"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebMessagingEnvelope<B> {
    /// `response` to an action, or pushed `message`.
    #[serde(rename = "type")]
    pub envelope_type: EnvelopeType,
    /// What `body` is (see [`envelope_class`]).
    pub class: String,
    /// An HTTP-like status: 200, or the error's 4xx/5xx.
    pub code: u16,
    /// The payload.
    pub body: B,
}

/// The authentication failure `configureAuthenticatedSession` answers with.
pub const SESSION_AUTHENTICATION_FAILED: &str = "Session authentication failed";

impl WebMessagingEnvelope<SessionResponse> {
    /// A 200 response carrying a session.
    pub fn session(body: SessionResponse) -> Self {
        Self::response(envelope_class::SESSION_RESPONSE, body)
    }
}

impl WebMessagingEnvelope<JwtResponse> {
    /// A 200 response carrying a JWT.
    pub fn jwt(body: JwtResponse) -> Self {
        Self::response(envelope_class::JWT_RESPONSE, body)
    }
}

impl WebMessagingEnvelope<StructuredMessage> {
    /// A pushed message.
    pub fn message(body: StructuredMessage) -> Self {
        Self {
            envelope_type: EnvelopeType::Message,
            class: envelope_class::STRUCTURED_MESSAGE.to_owned(),
            code: 200,
            body,
        }
    }
}

impl WebMessagingEnvelope<String> {
    /// An error response: `{"type": "response", "class": "string", "code", "body": explanation}`.
    pub fn error(code: u16, explanation: impl Into<String>) -> Self {
        Self {
            envelope_type: EnvelopeType::Response,
            class: envelope_class::STRING.to_owned(),
            code,
            body: explanation.into(),
        }
    }
}

impl<B> WebMessagingEnvelope<B> {
    fn response(class: &str, body: B) -> Self {
        Self {
            envelope_type: EnvelopeType::Response,
            class: class.to_owned(),
            code: 200,
            body,
        }
    }
}

/// Body of a `SessionResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionResponse {
    /// The session is open.
    pub connected: bool,
    /// No earlier session had this token.
    pub new_session: bool,
    /// The guest can only read (a closed conversation).
    pub read_only: bool,
    /// Most bytes of custom attributes a message may carry.
    pub max_custom_data_bytes: u32,
}

/// Body of a `JwtResponse`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtResponse {
    /// A messaging JWT of the session. Never log it.
    pub jwt: String,
    /// Its expiry, seconds since the epoch.
    pub exp: i64,
}

impl fmt::Debug for JwtResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtResponse")
            .field("jwt", &REDACTED)
            .field("exp", &self.exp)
            .finish()
    }
}

/// Who a message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// From the guest to the contact center.
    Inbound,
    /// From the contact center (an agent or a bot) to the guest.
    Outbound,
}

/// `channel` of a structured message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageChannel {
    /// When the message was sent.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The platform's id of the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// A message event (`class: StructuredMessage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StructuredMessage {
    /// The message's id.
    pub id: String,
    /// `Text` for a text message.
    #[serde(rename = "type")]
    pub message_type: MessageType,
    /// The text of a `Text` message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `Outbound` for an agent's message.
    pub direction: Direction,
    /// When and under which id the platform sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<MessageChannel>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(allowed: &[&str]) -> WebDeployment {
        WebDeployment {
            id: "7f6e5d4c-3b2a-4190-8a7b-6c5d4e3f2a1b".into(),
            name: "d".into(),
            description: None,
            allow_all_domains: false,
            allowed_domains: allowed.iter().map(|d| (*d).to_owned()).collect(),
            status: DeploymentStatus::Active,
            self_uri: None,
        }
    }

    #[test]
    fn a_full_origin_entry_matches_that_origin_only() {
        let d = deployment(&["http://localhost:8080", "https://shop.example.com"]);
        assert!(d.allows_origin("http://localhost:8080"));
        assert!(d.allows_origin("HTTP://LocalHost:8080"), "case-insensitive");
        assert!(d.allows_origin("https://shop.example.com"));
        assert!(
            d.allows_origin("https://shop.example.com:443"),
            "default port implied"
        );
        assert!(!d.allows_origin("http://localhost:8081"), "another port");
        assert!(!d.allows_origin("https://localhost:8080"), "another scheme");
        assert!(!d.allows_origin("http://shop.example.com"), "another scheme");
        assert!(!d.allows_origin("https://shop.example.com:8443"), "another port");
    }

    #[test]
    fn a_bare_host_entry_matches_that_host_under_any_scheme_and_port() {
        let d = deployment(&["example.com"]);
        assert!(d.allows_origin("https://example.com"));
        assert!(d.allows_origin("http://example.com:3000"));
        assert!(d.allows_origin("https://EXAMPLE.com"));
        assert!(!d.allows_origin("https://evil-example.com"));
        assert!(!d.allows_origin("https://example.com.evil.net"));
        assert!(!d.allows_origin("https://sub.example.com"), "subdomains need *.");
        let pinned = deployment(&["example.com:8443"]);
        assert!(pinned.allows_origin("https://example.com:8443"));
        assert!(!pinned.allows_origin("https://example.com"));
    }

    #[test]
    fn a_wildcard_entry_matches_subdomains_only() {
        let d = deployment(&["*.example.com"]);
        assert!(d.allows_origin("https://shop.example.com"));
        assert!(d.allows_origin("http://a.b.example.com:8080"));
        assert!(!d.allows_origin("https://example.com"));
        assert!(!d.allows_origin("https://evil-example.com"));
        assert!(!d.allows_origin("https://example.com.evil.net"));
        assert!(!deployment(&["*."]).allows_origin("https://x.com"));
    }

    #[test]
    fn allow_all_domains_allows_any_origin_and_nothing_allows_a_malformed_one() {
        let mut d = deployment(&[]);
        assert!(!d.allows_origin("https://example.com"));
        d.allow_all_domains = true;
        assert!(d.allows_origin("https://anything.test"));
        let d = deployment(&["example.com", "*.example.com", "http://localhost:8080"]);
        for bad in [
            "null",
            "",
            "example.com",
            "https://",
            "https://user@example.com",
            "https://example.com/path",
            "https://example.com:99999",
        ] {
            assert!(!d.allows_origin(bad), "{bad}");
        }
    }

    #[test]
    fn ipv6_origins_parse_with_their_port() {
        let d = deployment(&["http://[::1]:8080"]);
        assert!(d.allows_origin("http://[::1]:8080"));
        assert!(!d.allows_origin("http://[::1]:8081"));
    }

    #[test]
    fn deployment_parses_genesys_json() {
        let d: WebDeployment = serde_json::from_value(json!({
            "id": "7f6e5d4c-3b2a-4190-8a7b-6c5d4e3f2a1b", "name": "Local demo",
            "allowAllDomains": false, "allowedDomains": ["http://localhost:8080"],
            "status": "OutdatedSdkVersion", "configuration": {"id": "c"}
        }))
        .unwrap();
        assert_eq!(d.status, DeploymentStatus::OutdatedSdkVersion);
        assert_eq!(
            serde_json::to_value(&d).unwrap()["allowedDomains"],
            json!(["http://localhost:8080"])
        );
        for status in [
            "Pending",
            "Active",
            "Inactive",
            "Error",
            "Deleting",
            "OutdatedSdkVersion",
        ] {
            let parsed: DeploymentStatus = serde_json::from_value(json!(status)).unwrap();
            assert_eq!(serde_json::to_value(parsed).unwrap(), status);
        }
    }

    #[test]
    fn exchange_request_reads_camel_case_and_checks_code_or_id_token() {
        let body = json!({
            "deploymentId": "d-1",
            "oauth": {"code": "c-1", "redirectUri": "https://shop.example.com/cb", "nonce": "n",
                      "maxAge": 300, "codeVerifier": "v", "iss": "https://idp"},
            "journeyContext": {"customer": {"id": "x"}}
        });
        let parsed = OAuthExchangeRequest::from_json_slice(body.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.oauth.code.as_deref(), Some("c-1"));
        assert_eq!(parsed.oauth.max_age, Some(300));
        assert_eq!(serde_json::to_value(&parsed).unwrap(), body);
        let field = |body: Value| {
            OAuthExchangeRequest::from_json_slice(body.to_string().as_bytes())
                .unwrap_err()
                .field
        };
        assert_eq!(
            field(json!({"deploymentId": "d", "oauth": {"redirectUri": "r"}})),
            "oauth.code"
        );
        assert_eq!(
            field(json!({"deploymentId": "d", "oauth": {"code": "c", "idToken": "t", "redirectUri": "r"}})),
            "oauth"
        );
        assert_eq!(
            field(json!({"deploymentId": "d", "oauth": {"code": "c"}})),
            "body"
        );
        assert_eq!(
            field(json!({"deploymentId": "d", "oauth": {"code": "c", "redirectUri": " "}})),
            "oauth.redirectUri"
        );
        assert_eq!(
            field(json!({"deploymentId": "", "oauth": {"code": "c", "redirectUri": "r"}})),
            "deploymentId"
        );
    }

    #[test]
    fn token_holders_redact_their_tokens_in_debug() {
        let secrets = [
            "code-123",
            "idt-456",
            "verifier-789",
            "jwt-abc",
            "refresh-def",
            "session-ghi",
        ];
        let debug = [
            format!(
                "{:?}",
                OAuthRequestParameters {
                    code: Some(secrets[0].into()),
                    id_token: Some(secrets[1].into()),
                    code_verifier: Some(secrets[2].into()),
                    redirect_uri: "r".into(),
                    ..OAuthRequestParameters::default()
                }
            ),
            format!(
                "{:?}",
                AuthorizationResponse {
                    jwt: secrets[3].into(),
                    refresh_token: Some(secrets[4].into())
                }
            ),
            format!(
                "{:?}",
                RefreshJwtRequest {
                    refresh_token: secrets[4].into(),
                    deployment_id: "d".into()
                }
            ),
            format!(
                "{:?}",
                WebMessagingRequest::ConfigureAuthenticatedSession {
                    token: secrets[5].into(),
                    deployment_id: "d".into(),
                    data: AuthenticatedSessionData {
                        code: secrets[3].into()
                    },
                    journey_context: None,
                }
            ),
            format!(
                "{:?}",
                WebMessagingEnvelope::jwt(JwtResponse {
                    jwt: secrets[3].into(),
                    exp: 1
                })
            ),
        ];
        for line in &debug {
            for secret in secrets {
                assert!(!line.contains(secret), "{line}");
            }
        }
    }

    #[test]
    fn websocket_actions_are_tagged_by_action() {
        let parsed: WebMessagingRequest = serde_json::from_value(json!({
            "action": "configureAuthenticatedSession", "token": "t", "deploymentId": "d",
            "data": {"code": "jwt"}
        }))
        .unwrap();
        assert!(
            matches!(&parsed, WebMessagingRequest::ConfigureAuthenticatedSession { data, .. } if data.code == "jwt")
        );
        assert_eq!(parsed.token(), "t");
        let message: WebMessagingRequest = serde_json::from_value(json!({
            "action": "onMessage", "token": "t", "message": {"type": "Text", "text": "hi"}
        }))
        .unwrap();
        assert_eq!(
            message,
            WebMessagingRequest::OnMessage {
                token: "t".into(),
                message: IncomingMessage {
                    message_type: MessageType::Text,
                    text: Some("hi".into())
                }
            }
        );
        assert_eq!(
            serde_json::to_value(WebMessagingRequest::GetJwt { token: "t".into() }).unwrap(),
            json!({"action": "getJwt", "token": "t"})
        );
        assert!(
            serde_json::from_value::<WebMessagingRequest>(
                json!({"action": "deleteEverything", "token": "t"})
            )
            .is_err()
        );
    }

    #[test]
    fn envelopes_have_genesys_shape() {
        let session = WebMessagingEnvelope::session(SessionResponse {
            connected: true,
            new_session: true,
            read_only: false,
            max_custom_data_bytes: 2048,
        });
        assert_eq!(
            serde_json::to_value(&session).unwrap(),
            json!({"type": "response", "class": "SessionResponse", "code": 200,
                   "body": {"connected": true, "newSession": true, "readOnly": false, "maxCustomDataBytes": 2048}})
        );
        assert_eq!(
            serde_json::to_value(WebMessagingEnvelope::error(401, SESSION_AUTHENTICATION_FAILED)).unwrap(),
            json!({"type": "response", "class": "string", "code": 401, "body": "Session authentication failed"})
        );
        let message = WebMessagingEnvelope::message(StructuredMessage {
            id: "m".into(),
            message_type: MessageType::Text,
            text: Some("echo: hi".into()),
            direction: Direction::Outbound,
            channel: None,
        });
        assert_eq!(
            serde_json::to_value(&message).unwrap(),
            json!({"type": "message", "class": "StructuredMessage", "code": 200,
                   "body": {"id": "m", "type": "Text", "text": "echo: hi", "direction": "Outbound"}})
        );
    }

    #[test]
    fn messaging_claims_use_camel_case() {
        let claims = MessagingJwtClaims {
            sub: "s".into(),
            deployment_id: "d".into(),
            iss: "i".into(),
            iat: 1,
            exp: 2,
            jti: "j".into(),
            sid: "x".into(),
        };
        assert_eq!(
            serde_json::to_value(&claims).unwrap(),
            json!({"sub": "s", "deploymentId": "d", "iss": "i", "iat": 1, "exp": 2, "jti": "j", "sid": "x"})
        );
    }
}
