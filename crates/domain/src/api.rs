//! Wire types of our own API: the guest-token request and answer, problem details and the
//! stable error-code table.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::validation::{CustomerId, FieldViolation, LanguageTag, QueueId};

/// Path of the guest-token endpoint.
pub const GUEST_TOKEN_PATH: &str = "/api/webchat/guest-token";

/// A validated `POST /api/webchat/guest-token` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestTokenRequest {
    /// The queue to route the chat to.
    pub queue_id: QueueId,
    /// Conversation language, if the caller chose one (the service's default applies otherwise).
    pub language: Option<LanguageTag>,
    /// The caller's customer reference, if given (`anonymous` otherwise).
    pub customer_id: Option<CustomerId>,
}

impl GuestTokenRequest {
    /// Parses and validates a raw body. The first problem found is reported, naming the field.
    pub fn from_json_slice(body: &[u8]) -> Result<Self, FieldViolation> {
        Self::from_json(&parse_body(body)?)
    }

    /// Validates an already parsed JSON value.
    pub fn from_json(value: &Value) -> Result<Self, FieldViolation> {
        let fields = Fields::from_json(value, true)?;
        Ok(Self {
            queue_id: fields
                .queue_id
                .expect("a required queue is present once validated"),
            language: fields.language,
            customer_id: fields.customer_id,
        })
    }

    /// Validates a raw body of the web-messaging mode, where `queueId` is optional (routing
    /// belongs to the deployment's flow) and `customerId` is checked but never an identity;
    /// returns the queue when one is named.
    pub fn web_messaging_queue(body: &[u8]) -> Result<Option<QueueId>, FieldViolation> {
        let value = parse_body(body)?;
        Fields::from_json(&value, false).map(|fields| fields.queue_id)
    }
}

fn parse_body(body: &[u8]) -> Result<Value, FieldViolation> {
    serde_json::from_slice(body).map_err(|e| {
        FieldViolation::new(
            "body",
            format!(
                "must be a JSON object (line {}, column {}: {})",
                e.line(),
                e.column(),
                json_error_kind(&e)
            ),
        )
    })
}

/// The request's fields, each checked.
struct Fields {
    queue_id: Option<QueueId>,
    language: Option<LanguageTag>,
    customer_id: Option<CustomerId>,
}

impl Fields {
    fn from_json(value: &Value, queue_required: bool) -> Result<Self, FieldViolation> {
        let object = value.as_object().ok_or_else(|| {
            FieldViolation::new("body", "must be a JSON object such as {\"queueId\": \"<uuid>\"}")
        })?;
        let queue_id = match object.get("queueId") {
            Some(Value::String(raw)) => Some(QueueId::parse_field(raw, "queueId")?),
            None | Some(Value::Null) if queue_required => {
                return Err(FieldViolation::new("queueId", "is required"));
            }
            None | Some(Value::Null) => None,
            Some(_) => {
                return Err(FieldViolation::new("queueId", "must be a string holding a UUID"));
            }
        };
        let language = match object.get("language") {
            None | Some(Value::Null) => None,
            Some(Value::String(raw)) => Some(LanguageTag::parse_field(raw, "language")?),
            Some(_) => {
                return Err(FieldViolation::new("language", "must be a string such as en-us"));
            }
        };
        let customer_id = match object.get("customerId") {
            None | Some(Value::Null) => None,
            Some(Value::String(raw)) => Some(CustomerId::parse_field(raw, "customerId")?),
            Some(_) => return Err(FieldViolation::new("customerId", "must be a string")),
        };
        Ok(Self {
            queue_id,
            language,
            customer_id,
        })
    }
}

fn json_error_kind(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "the body ends early",
        Category::Syntax => "syntax error",
        Category::Data => "unexpected data",
        Category::Io => "unreadable body",
    }
}

/// 201 answer of `POST /api/webchat/guest-token`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuestTokenResponse {
    /// The guest's id: the Genesys guest id (a UUID) in tutorial mode, the messaging JWT's `sub`
    /// (the visitor) in web-messaging mode.
    pub guest_id: String,
    /// The token the widget uses: the tutorial's guest JWT, or the Genesys messaging JWT. Never log it.
    pub guest_token: String,
    /// When the token expires (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Whole seconds from `now` until `expires_at`, never negative.
    pub ttl_seconds: u64,
    /// Web messaging: the refresh token of the Genesys session. Never log it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Web messaging: the deployment the session belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    /// Web messaging: the Messenger WebSocket to open with the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_socket_url: Option<String>,
}

impl GuestTokenResponse {
    /// Builds the answer, deriving `ttl_seconds` from `expires_at` as seen at `now`.
    pub fn new(guest_id: Uuid, guest_token: String, expires_at: OffsetDateTime, now: OffsetDateTime) -> Self {
        Self::for_subject(guest_id.to_string(), guest_token, expires_at, now)
    }

    /// The answer for a guest identified by `guest_id` (any string).
    pub fn for_subject(
        guest_id: String,
        guest_token: String,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Self {
        let ttl_seconds = u64::try_from((expires_at - now).whole_seconds()).unwrap_or(0);
        Self {
            guest_id,
            guest_token,
            expires_at,
            ttl_seconds,
            refresh_token: None,
            deployment_id: None,
            web_socket_url: None,
        }
    }
}

impl std::fmt::Debug for GuestTokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestTokenResponse")
            .field("guest_id", &self.guest_id)
            .field("guest_token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .field("ttl_seconds", &self.ttl_seconds)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("deployment_id", &self.deployment_id)
            .field("web_socket_url", &self.web_socket_url)
            .finish()
    }
}

/// The stable, machine-readable error codes of the API, with their HTTP status and title.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 400: the body is not JSON or a field is invalid.
    InvalidRequest,
    /// 401: web messaging needs a signed-in visitor and the request carries no site session.
    NotSignedIn,
    /// 401: the request's site session is not valid (forged, expired, another issuer, ...).
    SiteSessionInvalid,
    /// 403: the `Origin` is not allowed.
    OriginNotAllowed,
    /// 403: the queue is outside the allow-list.
    QueueNotAllowed,
    /// 404: no such route.
    NotFound,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 408: the client did not send the request body in time.
    RequestTimeout,
    /// 413: the body is over the limit.
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 431: too many request headers, or too large.
    HeadersTooLarge,
    /// 422: Genesys says the queue does not exist.
    UnknownQueue,
    /// 429: the caller's own limit, or Genesys' limit beyond the retry budget.
    RateLimited,
    /// 500: a fault of this service.
    Internal,
    /// 502: Genesys rejects our OAuth client or scope.
    UpstreamAuthFailed,
    /// 502: Genesys failed (5xx, malformed answer, broken connection).
    UpstreamError,
    /// 502: Genesys refused to exchange this service's code for a messaging JWT.
    IdentityExchangeFailed,
    /// 503: no Genesys access token yet, or shutting down.
    NotReady,
    /// 503: the Genesys web deployment is not active.
    DeploymentInactive,
    /// 503: the Genesys web deployment cannot be found or read.
    DeploymentUnavailable,
    /// 504: the request budget ran out.
    UpstreamTimeout,
}

impl ErrorCode {
    /// Every code, in table order.
    pub const ALL: [ErrorCode; 21] = [
        Self::InvalidRequest,
        Self::NotSignedIn,
        Self::SiteSessionInvalid,
        Self::OriginNotAllowed,
        Self::QueueNotAllowed,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::RequestTimeout,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::HeadersTooLarge,
        Self::UnknownQueue,
        Self::RateLimited,
        Self::Internal,
        Self::UpstreamAuthFailed,
        Self::UpstreamError,
        Self::IdentityExchangeFailed,
        Self::NotReady,
        Self::DeploymentInactive,
        Self::DeploymentUnavailable,
        Self::UpstreamTimeout,
    ];

    /// The `code` member of problem bodies.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::NotSignedIn => "not_signed_in",
            Self::SiteSessionInvalid => "site_session_invalid",
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::QueueNotAllowed => "queue_not_allowed",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RequestTimeout => "request_timeout",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::HeadersTooLarge => "headers_too_large",
            Self::UnknownQueue => "unknown_queue",
            Self::RateLimited => "rate_limited",
            Self::Internal => "internal_error",
            Self::UpstreamAuthFailed => "upstream_auth_failed",
            Self::UpstreamError => "upstream_error",
            Self::IdentityExchangeFailed => "identity_exchange_failed",
            Self::NotReady => "not_ready",
            Self::DeploymentInactive => "deployment_inactive",
            Self::DeploymentUnavailable => "deployment_unavailable",
            Self::UpstreamTimeout => "upstream_timeout",
        }
    }

    /// The HTTP status that goes with the code.
    pub const fn status(self) -> u16 {
        match self {
            Self::InvalidRequest => 400,
            Self::NotSignedIn | Self::SiteSessionInvalid => 401,
            Self::OriginNotAllowed | Self::QueueNotAllowed => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::RequestTimeout => 408,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::HeadersTooLarge => 431,
            Self::UnknownQueue => 422,
            Self::RateLimited => 429,
            Self::Internal => 500,
            Self::UpstreamAuthFailed | Self::UpstreamError | Self::IdentityExchangeFailed => 502,
            Self::NotReady | Self::DeploymentInactive | Self::DeploymentUnavailable => 503,
            Self::UpstreamTimeout => 504,
        }
    }

    /// A short, fixed summary (the problem `title`).
    pub const fn title(self) -> &'static str {
        match self {
            Self::InvalidRequest => "Invalid request",
            Self::NotSignedIn => "Not signed in",
            Self::SiteSessionInvalid => "Site session not valid",
            Self::OriginNotAllowed => "Origin not allowed",
            Self::QueueNotAllowed => "Queue not allowed",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::RequestTimeout => "Request timeout",
            Self::PayloadTooLarge => "Payload too large",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::HeadersTooLarge => "Request headers too large",
            Self::UnknownQueue => "Unknown queue",
            Self::RateLimited => "Too many requests",
            Self::Internal => "Internal error",
            Self::UpstreamAuthFailed => "Upstream authentication failed",
            Self::UpstreamError => "Upstream error",
            Self::IdentityExchangeFailed => "Identity exchange failed",
            Self::NotReady => "Service not ready",
            Self::DeploymentInactive => "Chat deployment inactive",
            Self::DeploymentUnavailable => "Chat deployment unavailable",
            Self::UpstreamTimeout => "Upstream timeout",
        }
    }

    /// The problem `type` URI: a stable identifier per code.
    pub fn type_uri(self) -> String {
        format!("urn:guest-token:problem:{}", self.as_str())
    }
}

/// An RFC 9457 problem-details body (`application/problem+json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProblemDetails {
    /// Stable URI naming the problem type.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary, fixed per code.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong for this request and how to fix it.
    pub detail: String,
    /// Machine-readable code, see [`ErrorCode`].
    pub code: String,
    /// The request's `X-Request-ID`.
    pub request_id: String,
}

impl ProblemDetails {
    /// The problem body for `code`, with a request-specific `detail`.
    pub fn new(code: ErrorCode, detail: impl Into<String>, request_id: impl Into<String>) -> Self {
        Self {
            problem_type: code.type_uri(),
            title: code.title().to_owned(),
            status: code.status(),
            detail: detail.into(),
            code: code.as_str().to_owned(),
            request_id: request_id.into(),
        }
    }
}

/// Media type of problem bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    #[test]
    fn parses_the_seed_example_request() {
        let req = GuestTokenRequest::from_json_slice(
            br#"{"queueId": "a1b2c3d4-e5f6-7890-abcd-ef1234567890", "language": "en-us", "customerId": "cust_99887766"}"#,
        )
        .unwrap();
        assert_eq!(req.queue_id.to_string(), "a1b2c3d4-e5f6-7890-abcd-ef1234567890");
        assert_eq!(req.language.unwrap().as_str(), "en-us");
        assert_eq!(req.customer_id.unwrap().as_str(), "cust_99887766");
    }

    #[test]
    fn optional_fields_may_be_absent_or_null() {
        let req = GuestTokenRequest::from_json(
            &json!({"queueId": "a1b2c3d4-e5f6-7890-abcd-ef1234567890", "language": null}),
        )
        .unwrap();
        assert_eq!(req.language, None);
        assert_eq!(req.customer_id, None);
    }

    #[test]
    fn rejections_name_the_field_to_fix() {
        let field = |body: &[u8]| GuestTokenRequest::from_json_slice(body).unwrap_err().field;
        assert_eq!(field(b"not json"), "body");
        assert_eq!(field(b"[1]"), "body");
        assert_eq!(field(b"{}"), "queueId");
        assert_eq!(field(br#"{"queueId": 12}"#), "queueId");
        assert_eq!(field(br#"{"queueId": "12"}"#), "queueId");
        let q = r#""queueId": "a1b2c3d4-e5f6-7890-abcd-ef1234567890""#;
        assert_eq!(
            field(format!(r#"{{{q}, "language": "en_US"}}"#).as_bytes()),
            "language"
        );
        assert_eq!(field(format!(r#"{{{q}, "language": 5}}"#).as_bytes()), "language");
        assert_eq!(
            field(format!(r#"{{{q}, "customerId": ""}}"#).as_bytes()),
            "customerId"
        );
        assert_eq!(
            field(format!(r#"{{{q}, "customerId": "{}"}}"#, "x".repeat(129)).as_bytes()),
            "customerId"
        );
        assert_eq!(
            field(format!(r#"{{{q}, "customerId": true}}"#).as_bytes()),
            "customerId"
        );
    }

    #[test]
    fn ttl_seconds_is_derived_from_expires_at_and_never_negative() {
        let now = datetime!(2026-11-24 13:30:00.400 UTC);
        let resp = GuestTokenResponse::new(Uuid::nil(), "t".into(), datetime!(2026-11-24 14:30:00 UTC), now);
        assert_eq!(resp.ttl_seconds, 3599);
        let expired =
            GuestTokenResponse::new(Uuid::nil(), "t".into(), datetime!(2026-11-24 13:00:00 UTC), now);
        assert_eq!(expired.ttl_seconds, 0);
        let body = serde_json::to_value(&resp).unwrap();
        assert_eq!(body["expiresAt"], "2026-11-24T14:30:00Z");
        assert_eq!(body["ttlSeconds"], 3599);
        assert!(!format!("{resp:?}").contains("\"t\""));
    }

    #[test]
    fn error_table_matches_the_spec() {
        let table: Vec<(u16, &str)> = ErrorCode::ALL.iter().map(|c| (c.status(), c.as_str())).collect();
        for row in [
            (400, "invalid_request"),
            (403, "origin_not_allowed"),
            (403, "queue_not_allowed"),
            (413, "payload_too_large"),
            (415, "unsupported_media_type"),
            (422, "unknown_queue"),
            (429, "rate_limited"),
            (502, "upstream_auth_failed"),
            (502, "upstream_error"),
            (503, "not_ready"),
            (504, "upstream_timeout"),
        ] {
            assert!(table.contains(&row), "missing {row:?}");
        }
        let codes: std::collections::HashSet<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(codes.len(), ErrorCode::ALL.len(), "codes are unique");
    }

    #[test]
    fn problem_details_serialize_in_rfc9457_shape() {
        let body = serde_json::to_value(ProblemDetails::new(
            ErrorCode::InvalidRequest,
            "queueId: is required",
            "r-1",
        ))
        .unwrap();
        assert_eq!(
            body,
            json!({
                "type": "urn:guest-token:problem:invalid_request",
                "title": "Invalid request",
                "status": 400,
                "detail": "queueId: is required",
                "code": "invalid_request",
                "requestId": "r-1"
            })
        );
    }
}
