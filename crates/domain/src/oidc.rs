//! Wire types of OpenID Connect as both sides of a code exchange see them: the discovery document,
//! the token endpoint's request, answer and RFC 6749 error body, and the ID token's claims.
//!
//! Field names are the specifications' own (snake_case). Types holding a secret, a code or a token
//! redact it in `Debug`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a provider publishes its discovery document, under its issuer.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// `grant_type` of an authorization-code redemption.
pub const AUTHORIZATION_CODE_GRANT: &str = "authorization_code";
/// `grant_type` of a refresh.
pub const REFRESH_TOKEN_GRANT: &str = "refresh_token";
/// Client authentication by HTTP Basic (RFC 6749 section 2.3.1, the default).
pub const CLIENT_SECRET_BASIC: &str = "client_secret_basic";
/// Client authentication by `client_id` and `client_secret` form fields.
pub const CLIENT_SECRET_POST: &str = "client_secret_post";

const REDACTED: &str = "[redacted]";

fn redact<T>(value: &Option<T>) -> Option<&'static str> {
    value.as_ref().map(|_| REDACTED)
}

/// Error codes of the token endpoint (RFC 6749 section 5.2).
pub mod error_codes {
    /// A missing or malformed parameter.
    pub const INVALID_REQUEST: &str = "invalid_request";
    /// Client authentication failed.
    pub const INVALID_CLIENT: &str = "invalid_client";
    /// The code (or refresh token) is invalid, expired, used, or bound to another client,
    /// `redirect_uri` or PKCE verifier.
    pub const INVALID_GRANT: &str = "invalid_grant";
    /// The client may not use this grant type.
    pub const UNAUTHORIZED_CLIENT: &str = "unauthorized_client";
    /// The grant type is not supported.
    pub const UNSUPPORTED_GRANT_TYPE: &str = "unsupported_grant_type";
    /// The requested scope is invalid.
    pub const INVALID_SCOPE: &str = "invalid_scope";
}

/// The discovery document (OpenID Connect Discovery 1.0, section 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderMetadata {
    /// The issuer; ID tokens carry exactly this `iss`.
    pub issuer: String,
    /// Where browsers are sent to sign in.
    pub authorization_endpoint: String,
    /// Where codes are redeemed.
    pub token_endpoint: String,
    /// The provider's public signing keys.
    pub jwks_uri: String,
    /// Claims about the signed-in visitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// Supported `response_type` values (`code`).
    pub response_types_supported: Vec<String>,
    /// `public` or `pairwise`.
    pub subject_types_supported: Vec<String>,
    /// Algorithms ID tokens may be signed with (`RS256`).
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// Supported scopes (`openid`, `email`, `profile`, `offline_access`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// How clients authenticate at the token endpoint; absent means `client_secret_basic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// PKCE methods (`S256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// Supported grants (`authorization_code`, `refresh_token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types_supported: Option<Vec<String>>,
}

impl ProviderMetadata {
    /// Whether the token endpoint accepts a client authentication method, reading an absent list
    /// as RFC 8414's default (`client_secret_basic` only).
    pub fn supports_auth_method(&self, method: &str) -> bool {
        match &self.token_endpoint_auth_methods_supported {
            Some(methods) => methods.iter().any(|m| m == method),
            None => method == CLIENT_SECRET_BASIC,
        }
    }
}

/// Form body of a token-endpoint request (authorization code or refresh).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRequest {
    /// [`AUTHORIZATION_CODE_GRANT`] or [`REFRESH_TOKEN_GRANT`].
    pub grant_type: String,
    /// The code to redeem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The `redirect_uri` of the authorization request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// The PKCE verifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_verifier: Option<String>,
    /// The refresh token to redeem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The client, with `client_secret_post` (or a public client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The client's secret, with `client_secret_post`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRequest")
            .field("grant_type", &self.grant_type)
            .field("code", &redact(&self.code))
            .field("redirect_uri", &self.redirect_uri)
            .field("code_verifier", &redact(&self.code_verifier))
            .field("refresh_token", &redact(&self.refresh_token))
            .field("client_id", &self.client_id)
            .field("client_secret", &redact(&self.client_secret))
            .finish()
    }
}

/// 200 answer of the token endpoint.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The access token. Never log it.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// The access token's lifetime in seconds.
    pub expires_in: u64,
    /// The ID token (the `openid` scope). Never log it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// A refresh token (the `offline_access` scope). Never log it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The granted scopes, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &REDACTED)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("id_token", &redact(&self.id_token))
            .field("refresh_token", &redact(&self.refresh_token))
            .field("scope", &self.scope)
            .finish()
    }
}

/// Error answer of the token endpoint (RFC 6749 section 5.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// One of [`error_codes`].
    pub error: String,
    /// Human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// A page explaining the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

impl ErrorResponse {
    /// An error with a description.
    pub fn new(error: &str, description: impl Into<String>) -> Self {
        Self {
            error: error.to_owned(),
            error_description: Some(description.into()),
            error_uri: None,
        }
    }
}

/// `aud`: one audience or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience, as a string.
    One(String),
    /// Several audiences, as an array.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `client_id` is among the audiences.
    pub fn contains(&self, client_id: &str) -> bool {
        match self {
            Self::One(aud) => aud == client_id,
            Self::Many(auds) => auds.iter().any(|aud| aud == client_id),
        }
    }
}

/// Claims of an ID token (OpenID Connect Core 1.0, section 2, plus the profile claims Genesys reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// Issuer; equals the discovery document's `issuer`.
    pub iss: String,
    /// The visitor's stable id at the issuer (Genesys' sender address).
    pub sub: String,
    /// Audience; contains the client id.
    pub aud: Audience,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// When the visitor authenticated, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The authorization request's nonce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The party the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Given name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Family name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn metadata(auth_methods: Option<Vec<&str>>) -> ProviderMetadata {
        serde_json::from_value(json!({
            "issuer": "https://idp.example.com",
            "authorization_endpoint": "https://idp.example.com/authorize",
            "token_endpoint": "https://idp.example.com/token",
            "jwks_uri": "https://idp.example.com/jwks.json",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": auth_methods,
        }))
        .unwrap()
    }

    #[test]
    fn an_absent_auth_method_list_means_basic_only() {
        let default = metadata(None);
        assert!(default.supports_auth_method(CLIENT_SECRET_BASIC));
        assert!(!default.supports_auth_method(CLIENT_SECRET_POST));
        let post_only = metadata(Some(vec!["client_secret_post"]));
        assert!(!post_only.supports_auth_method(CLIENT_SECRET_BASIC));
        assert!(post_only.supports_auth_method(CLIENT_SECRET_POST));
    }

    #[test]
    fn discovery_ignores_unknown_fields_and_round_trips() {
        let mut value = serde_json::to_value(metadata(Some(vec!["client_secret_basic"]))).unwrap();
        value["claims_supported"] = json!(["sub"]);
        let parsed: ProviderMetadata = serde_json::from_value(value).unwrap();
        assert_eq!(parsed.issuer, "https://idp.example.com");
        assert_eq!(parsed.userinfo_endpoint, None);
    }

    #[test]
    fn audience_is_a_string_or_an_array() {
        let claims: IdTokenClaims = serde_json::from_value(json!({
            "iss": "i", "sub": "s", "aud": "genesys", "exp": 2, "iat": 1
        }))
        .unwrap();
        assert!(claims.aud.contains("genesys"));
        let claims: IdTokenClaims = serde_json::from_value(json!({
            "iss": "i", "sub": "s", "aud": ["other", "genesys"], "exp": 2, "iat": 1,
            "nonce": "n", "email": "e@example.com", "given_name": "G", "family_name": "F"
        }))
        .unwrap();
        assert!(claims.aud.contains("genesys") && !claims.aud.contains("gene"));
        assert_eq!(claims.nonce.as_deref(), Some("n"));
    }

    #[test]
    fn token_types_redact_their_secrets_in_debug() {
        let response: TokenResponse = serde_json::from_value(json!({
            "access_token": "at-1", "token_type": "Bearer", "expires_in": 900,
            "id_token": "idt-2", "refresh_token": "rt-3", "scope": "openid"
        }))
        .unwrap();
        let request = TokenRequest {
            grant_type: AUTHORIZATION_CODE_GRANT.into(),
            code: Some("code-4".into()),
            code_verifier: Some("ver-5".into()),
            client_secret: Some("sec-6".into()),
            refresh_token: Some("rt-7".into()),
            ..TokenRequest::default()
        };
        let debug = format!("{response:?} {request:?}");
        for secret in ["at-1", "idt-2", "rt-3", "code-4", "ver-5", "sec-6", "rt-7"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert_eq!(
            serde_urlencoded::to_string(&request).unwrap(),
            "grant_type=authorization_code&code=code-4&code_verifier=ver-5&refresh_token=rt-7&client_secret=sec-6"
        );
    }

    #[test]
    fn the_error_body_is_rfc_6749() {
        let body = ErrorResponse::new(error_codes::INVALID_GRANT, "code already used");
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"error": "invalid_grant", "error_description": "code already used"})
        );
        let minimal: ErrorResponse = serde_json::from_value(json!({"error": "invalid_client"})).unwrap();
        assert_eq!(minimal.error_description, None);
    }
}
