//! The schema types of the OpenAPI document: they mirror the wire types of `domain::api` (which
//! stays free of documentation dependencies); a test of [`crate::openapi`] pins that both serialize
//! to the same field names.

use std::borrow::Cow;

use domain::api::ErrorCode;
use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// Body of `POST /api/webchat/guest-token`.
#[derive(Serialize, ToSchema)]
#[schema(as = GuestTokenRequest)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct GuestTokenRequestBody {
    /// The Genesys queue to route the chat to (a UUID). Required with the tutorial upstream;
    /// optional (and only checked) with web messaging, where the deployment's flow routes.
    #[schema(format = "uuid", example = "a1b2c3d4-e5f6-7890-abcd-ef1234567890")]
    queue_id: String,
    /// BCP 47 language tag (RFC 5646 shape: a primary subtag of 2 to 3 or 5 to 8 letters, then
    /// subtags of 1 to 8 letters or digits joined by `-`), at most 35 characters, any case; the
    /// service's default (`en-us`) when absent or null.
    #[schema(
        max_length = 35,
        pattern = r"^(?:[A-Za-z]{2,3}|[A-Za-z]{5,8})(?:-[A-Za-z0-9]{1,8})*$",
        example = "en-us"
    )]
    language: Option<String>,
    /// The caller's customer reference, 1 to 128 characters: no control characters, and no white
    /// space at either end; `anonymous` when absent or null. An attribute, never an identity.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?$",
        example = "cust_99887766"
    )]
    customer_id: Option<String>,
}

/// 201 answer of `POST /api/webchat/guest-token`.
#[derive(Serialize, ToSchema)]
#[schema(as = GuestTokenResponse)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct GuestTokenResponseBody {
    /// The guest: the Genesys guest id (a UUID) with the tutorial upstream; the visitor (the
    /// messaging JWT's `sub`) with the web-messaging upstream.
    #[schema(min_length = 1)]
    guest_id: String,
    /// The token for the chat widget: the tutorial's guest JWT, or the Genesys messaging JWT
    /// that authenticates the Messenger WebSocket.
    guest_token: String,
    /// When the token expires (RFC 3339, UTC).
    #[schema(format = DateTime, example = "2026-11-24T14:30:00.000Z")]
    expires_at: String,
    /// Whole seconds left until `expiresAt`, computed when the answer was made.
    #[schema(minimum = 0, example = 3599)]
    ttl_seconds: u64,
    /// Web messaging only: the refresh token of the Genesys session.
    refresh_token: Option<String>,
    /// Web messaging only: the Genesys web deployment.
    #[schema(format = "uuid")]
    deployment_id: Option<String>,
    /// Web messaging only: the Messenger WebSocket to open with `guestToken`.
    web_socket_url: Option<String>,
}

/// An RFC 9457 problem (`application/problem+json`).
#[derive(Serialize, ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// URI identifying the problem type, stable per `code`.
    #[serde(rename = "type")]
    #[schema(example = "urn:guest-token:problem:invalid_request")]
    problem_type: String,
    /// Short summary, fixed per `code`.
    #[schema(example = "Invalid request")]
    title: String,
    /// The HTTP status.
    #[schema(example = 400)]
    status: u16,
    /// What went wrong and how to fix it.
    #[schema(example = "queueId: is required")]
    detail: String,
    /// Machine-readable code.
    #[schema(value_type = ProblemCode, example = "invalid_request")]
    code: String,
    /// The request's `X-Request-ID`.
    request_id: String,
}

/// The stable error codes, as the schema of a string enum built from [`ErrorCode::ALL`], so the
/// document cannot drift from the code table.
pub struct ProblemCode;

impl PartialSchema for ProblemCode {
    fn schema() -> RefOr<Schema> {
        let table: Vec<String> = ErrorCode::ALL
            .iter()
            .map(|code| format!("{} ({})", code.as_str(), code.status()))
            .collect();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(ErrorCode::ALL.iter().map(|code| code.as_str())))
            .description(Some(format!("The stable error codes: {}.", table.join(", "))))
            .into()
    }
}

impl ToSchema for ProblemCode {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ProblemCode")
    }
}

/// Form of `POST /oidc/token` (read by `routes::oidc::token_form`).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct TokenRequestForm {
    grant_type: GrantType,
    /// The code (authorization_code).
    code: Option<String>,
    /// The redirect URI the code was issued for (authorization_code).
    redirect_uri: Option<String>,
    /// The PKCE verifier (authorization_code).
    code_verifier: Option<String>,
    /// The refresh token (refresh_token).
    refresh_token: Option<String>,
    /// For client_secret_post.
    client_id: Option<String>,
    /// For client_secret_post.
    client_secret: Option<String>,
}

/// The grants the token endpoint knows.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum GrantType {
    /// Redeems a code.
    AuthorizationCode,
    /// Redeems (and rotates) a refresh token.
    RefreshToken,
}

/// `response_type` of `GET /oidc/authorize`: the code flow only.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ResponseType {
    /// An authorization code.
    Code,
}

/// `code_challenge_method` of `GET /oidc/authorize`: PKCE with SHA-256 only.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub enum CodeChallengeMethod {
    /// BASE64URL(SHA-256(code_verifier)).
    S256,
}
