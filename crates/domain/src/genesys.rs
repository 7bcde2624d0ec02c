//! Wire types of the Genesys Cloud routes this project uses, shared by the client and the emulator.
//!
//! Field names follow Genesys' JSON (camelCase on the Platform API, snake_case on OAuth).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::validation::{Attributes, FieldViolation, LanguageTag, QueueId};

/// Path of the OAuth token endpoint (on the login host).
pub const OAUTH_TOKEN_PATH: &str = "/oauth/token";
/// Path of the guest-creation endpoint (on the API host).
pub const GUESTS_PATH: &str = "/api/v2/webchat/instances/guests";
/// Path prefix of the queue lookup (on the API host); the queue id follows.
pub const QUEUES_PATH_PREFIX: &str = "/api/v2/routing/queues/";
/// The scope a client needs to create guests.
pub const GUEST_CREATE_SCOPE: &str = "webchat:guest:create";
/// The header carrying Genesys' correlation id, on requests and responses.
pub const CORRELATION_ID_HEADER: &str = "inin-correlation-id";
/// Rate-limit headers on API routes.
pub const RATELIMIT_ALLOWED_HEADER: &str = "inin-ratelimit-allowed";
/// Requests counted in the current window.
pub const RATELIMIT_COUNT_HEADER: &str = "inin-ratelimit-count";
/// Seconds until the window resets.
pub const RATELIMIT_RESET_HEADER: &str = "inin-ratelimit-reset";

/// Stable `code` values of Genesys error bodies.
pub mod error_codes {
    /// Missing, unknown, expired or revoked access token (401).
    pub const BAD_CREDENTIALS: &str = "bad.credentials";
    /// The client lacks a required scope (403).
    pub const MISSING_PERMISSIONS: &str = "missing.permissions";
    /// The request body or parameters are invalid (400).
    pub const BAD_REQUEST: &str = "bad.request";
    /// The addressed entity does not exist (404).
    pub const NOT_FOUND: &str = "not.found";
    /// The per-client rate limit was exceeded (429).
    pub const TOO_MANY_REQUESTS: &str = "too.many.requests.retry.after";
    /// A server-side failure (5xx).
    pub const INTERNAL_SERVER_ERROR: &str = "internal.server.error";
    /// The service is temporarily unavailable (503).
    pub const SERVICE_UNAVAILABLE: &str = "service.unavailable";
}

/// OAuth error codes (RFC 6749 section 5.2).
pub mod oauth_error_codes {
    /// Missing or unsupported `grant_type`, or a body that is not a form.
    pub const UNSUPPORTED_GRANT_TYPE: &str = "unsupported_grant_type";
    /// Unknown client or wrong secret.
    pub const INVALID_CLIENT: &str = "invalid_client";
}

/// Form body of a client-credentials token request. Credentials normally travel in HTTP Basic
/// auth; the form fields are the alternative RFC 6749 allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCredentialsForm {
    /// Must be `client_credentials`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_type: Option<String>,
    /// Client id, when not sent in `Authorization`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Client secret, when not sent in `Authorization`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl ClientCredentialsForm {
    /// The grant type this project uses.
    pub const GRANT_TYPE: &'static str = "client_credentials";
}

/// 200 answer of `POST /oauth/token`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthTokenResponse {
    /// The bearer token. Never log it.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Lifetime in seconds from issue.
    pub expires_in: u64,
}

impl std::fmt::Debug for OAuthTokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthTokenResponse")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Error answer of `POST /oauth/token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthErrorResponse {
    /// An [`oauth_error_codes`] value.
    pub error: String,
    /// Human-readable explanation.
    #[serde(default)]
    pub error_description: String,
}

/// `routing` of a guest-creation request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuestRouting {
    /// The queue the conversation is routed to.
    pub queue_id: QueueId,
    /// Conversation language; Genesys defaults it to `en-us`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<LanguageTag>,
    /// Wrap-up code to apply, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrap_up_code: Option<String>,
}

/// Body of `POST /api/v2/webchat/instances/guests`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateGuestRequest {
    /// Where the conversation goes.
    pub routing: GuestRouting,
    /// Free-form string attributes within Genesys' limits.
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    pub attributes: Attributes,
}

impl CreateGuestRequest {
    /// Parses and validates a JSON body, reporting every offending field by its JSON path
    /// (`routing.queueId`, `attributes.<key>`, ...), as the emulator's `details[]` needs.
    pub fn from_json(body: &Value) -> Result<Self, Vec<FieldViolation>> {
        let mut violations = Vec::new();
        let Some(object) = body.as_object() else {
            return Err(vec![FieldViolation::new("body", "must be a JSON object")]);
        };
        let routing = match object.get("routing") {
            Some(Value::Object(routing)) => Some(routing),
            Some(_) => {
                violations.push(FieldViolation::new("routing", "must be an object"));
                None
            }
            None => {
                violations.push(FieldViolation::new("routing", "is required"));
                None
            }
        };
        let mut queue_id = None;
        let mut language = None;
        let mut wrap_up_code = None;
        if let Some(routing) = routing {
            match routing.get("queueId") {
                Some(Value::String(raw)) => match QueueId::parse_field(raw, "routing.queueId") {
                    Ok(id) => queue_id = Some(id),
                    Err(v) => violations.push(v),
                },
                Some(_) => violations.push(FieldViolation::new(
                    "routing.queueId",
                    "must be a string holding a UUID",
                )),
                None => violations.push(FieldViolation::new("routing.queueId", "is required")),
            }
            match routing.get("language") {
                None | Some(Value::Null) => {}
                Some(Value::String(raw)) => match LanguageTag::parse_field(raw, "routing.language") {
                    Ok(tag) => language = Some(tag),
                    Err(v) => violations.push(v),
                },
                Some(_) => violations.push(FieldViolation::new("routing.language", "must be a string")),
            }
            match routing.get("wrapUpCode") {
                None | Some(Value::Null) => {}
                Some(Value::String(raw)) => wrap_up_code = Some(raw.clone()),
                Some(_) => violations.push(FieldViolation::new("routing.wrapUpCode", "must be a string")),
            }
        }
        let mut attributes = Attributes::default();
        match object.get("attributes") {
            None | Some(Value::Null) => {}
            Some(Value::Object(raw)) => {
                let mut map = BTreeMap::new();
                for (key, value) in raw {
                    match value {
                        Value::String(s) => {
                            map.insert(key.clone(), s.clone());
                        }
                        _ => violations.push(FieldViolation::new(
                            format!("attributes.{key}"),
                            "must be a string",
                        )),
                    }
                }
                match Attributes::parse_field(map, "attributes") {
                    Ok(parsed) => attributes = parsed,
                    Err(mut more) => violations.append(&mut more),
                }
            }
            Some(_) => violations.push(FieldViolation::new("attributes", "must be an object of strings")),
        }
        match (queue_id, violations.is_empty()) {
            (Some(queue_id), true) => Ok(Self {
                routing: GuestRouting {
                    queue_id,
                    language,
                    wrap_up_code,
                },
                attributes,
            }),
            _ => Err(violations),
        }
    }
}

/// `routing` echoed in a guest-creation answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuestRoutingEcho {
    /// The queue the guest was created on.
    pub queue_id: QueueId,
    /// The conversation language in effect.
    pub language: String,
}

/// 200 answer of `POST /api/v2/webchat/instances/guests`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateGuestResponse {
    /// The new guest's id.
    pub guest_id: Uuid,
    /// Signed guest JWT for the widget. Never log it.
    pub guest_token: String,
    /// When `guest_token` expires (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Routing in effect.
    pub routing: GuestRoutingEcho,
}

impl std::fmt::Debug for CreateGuestResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateGuestResponse")
            .field("guest_id", &self.guest_id)
            .field("guest_token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .field("routing", &self.routing)
            .finish()
    }
}

/// Claims of a guest JWT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuestTokenClaims {
    /// The guest id.
    pub sub: String,
    /// Always `guest`.
    #[serde(rename = "type")]
    pub token_type: String,
    /// The queue the guest belongs to.
    pub queue_id: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issuer.
    pub iss: String,
}

/// 200 answer of `GET /api/v2/routing/queues/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Queue {
    /// Queue id.
    pub id: QueueId,
    /// Display name.
    pub name: String,
    /// The queue's own URI on the API.
    pub self_uri: String,
}

/// One entry of a Genesys error body's `details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// The offending field, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_name: Option<String>,
    /// What is wrong.
    #[serde(default)]
    pub error_message: String,
}

impl From<FieldViolation> for ErrorDetail {
    fn from(v: FieldViolation) -> Self {
        Self {
            field_name: Some(v.field),
            error_message: v.message,
        }
    }
}

/// The error body of every Genesys Platform API route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenesysErrorBody {
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// Stable code, one of [`error_codes`] for the routes we use.
    #[serde(default)]
    pub code: String,
    /// HTTP status.
    #[serde(default)]
    pub status: u16,
    /// Equals the response's `inin-correlation-id`.
    #[serde(default)]
    pub context_id: String,
    /// Per-field details.
    #[serde(default)]
    pub details: Vec<ErrorDetail>,
    /// Nested errors (unused by the routes we call, kept for shape).
    #[serde(default)]
    pub errors: Vec<Value>,
}

impl GenesysErrorBody {
    /// A body with no details.
    pub fn new(status: u16, code: &str, message: impl Into<String>, context_id: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: code.to_owned(),
            status,
            context_id: context_id.into(),
            details: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// The 429 body Genesys sends, naming the wait in seconds.
    pub fn rate_limited(retry_after_secs: u64, context_id: impl Into<String>) -> Self {
        Self::new(
            429,
            error_codes::TOO_MANY_REQUESTS,
            format!("Rate limit exceeded the maximum. Retry the request in [{retry_after_secs}] seconds"),
            context_id,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const QUEUE: &str = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";

    #[test]
    fn create_guest_request_round_trips_in_genesys_shape() {
        let body = json!({
            "routing": {"queueId": QUEUE, "language": "en-us", "wrapUpCode": "w1"},
            "attributes": {"sourceSystem": "embedded-widget", "customerId": "c1"}
        });
        let parsed = CreateGuestRequest::from_json(&body).unwrap();
        assert_eq!(parsed.routing.queue_id.to_string(), QUEUE);
        assert_eq!(serde_json::to_value(&parsed).unwrap(), body);
        let via_serde: CreateGuestRequest = serde_json::from_value(body).unwrap();
        assert_eq!(via_serde, parsed);
    }

    #[test]
    fn create_guest_request_needs_only_a_queue() {
        let parsed = CreateGuestRequest::from_json(&json!({"routing": {"queueId": QUEUE}})).unwrap();
        assert_eq!(parsed.routing.language, None);
        assert!(parsed.attributes.is_empty());
        assert_eq!(
            serde_json::to_value(&parsed).unwrap(),
            json!({"routing": {"queueId": QUEUE}})
        );
    }

    #[test]
    fn create_guest_request_names_every_offending_field() {
        let fields = |body: Value| -> Vec<String> {
            CreateGuestRequest::from_json(&body)
                .unwrap_err()
                .into_iter()
                .map(|v| v.field)
                .collect()
        };
        assert_eq!(fields(json!([])), ["body"]);
        assert_eq!(fields(json!({})), ["routing"]);
        assert_eq!(fields(json!({"routing": {}})), ["routing.queueId"]);
        assert_eq!(
            fields(json!({"routing": {"queueId": "nope"}})),
            ["routing.queueId"]
        );
        assert_eq!(fields(json!({"routing": {"queueId": 7}})), ["routing.queueId"]);
        assert_eq!(
            fields(
                json!({"routing": {"queueId": QUEUE, "language": "english language"}, "attributes": {"n": 1}})
            ),
            ["routing.language", "attributes.n"]
        );
        assert_eq!(
            fields(json!({"routing": {"queueId": QUEUE}, "attributes": "x"})),
            ["attributes"]
        );
        let too_many: serde_json::Map<String, Value> =
            (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert_eq!(
            fields(json!({"routing": {"queueId": QUEUE}, "attributes": too_many})),
            ["attributes"]
        );
    }

    #[test]
    fn guest_response_parses_rfc3339_and_hides_the_token_in_debug() {
        let body = json!({
            "guestId": "6f1c1f4e-3d7e-4a51-9a35-0b8c9e2f0a11",
            "guestToken": "eyJ.secret.sig",
            "expiresAt": "2026-11-24T14:30:00.000Z",
            "routing": {"queueId": QUEUE, "language": "en-us"}
        });
        let parsed: CreateGuestResponse = serde_json::from_value(body).unwrap();
        assert_eq!(parsed.expires_at.unix_timestamp(), 1_795_530_600);
        assert!(!format!("{parsed:?}").contains("eyJ.secret.sig"));
    }

    #[test]
    fn oauth_token_response_hides_the_token_in_debug() {
        let token: OAuthTokenResponse = serde_json::from_value(
            json!({"access_token": "at-123", "token_type": "bearer", "expires_in": 86400}),
        )
        .unwrap();
        assert_eq!(token.expires_in, 86400);
        assert!(!format!("{token:?}").contains("at-123"));
    }

    #[test]
    fn genesys_error_body_tolerates_missing_fields_and_builds_the_429_message() {
        let parsed: GenesysErrorBody =
            serde_json::from_value(json!({"message": "x", "code": "not.found"})).unwrap();
        assert_eq!(parsed.status, 0);
        let body = serde_json::to_value(GenesysErrorBody::rate_limited(17, "ctx")).unwrap();
        assert_eq!(
            body["message"],
            "Rate limit exceeded the maximum. Retry the request in [17] seconds"
        );
        assert_eq!(body["code"], "too.many.requests.retry.after");
        assert_eq!(body["contextId"], "ctx");
        assert_eq!(body["details"], json!([]));
        assert_eq!(body["errors"], json!([]));
    }
}
