//! The OpenAPI 3.1 document, generated from the route attributes and these schema types.
//!
//! The schema types mirror the wire types of `domain::api` (which stays free of documentation
//! dependencies); a test pins that both serialize to the same field names.

use std::borrow::Cow;

use domain::api::ErrorCode;
use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{OpenApi, PartialSchema, ToSchema};

/// Body of `POST /api/webchat/guest-token`.
#[derive(Serialize, ToSchema)]
#[schema(as = GuestTokenRequest)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct GuestTokenRequestBody {
    /// The Genesys queue to route the chat to (a UUID).
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
    /// The Genesys guest id (a UUID).
    #[schema(format = "uuid")]
    guest_id: String,
    /// The signed guest JWT for the chat widget.
    guest_token: String,
    /// When the guest token expires (RFC 3339, UTC).
    #[schema(format = DateTime, example = "2026-11-24T14:30:00.000Z")]
    expires_at: String,
    /// Whole seconds left until `expiresAt`, computed when the answer was made.
    #[schema(minimum = 0, example = 3599)]
    ttl_seconds: u64,
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

/// The document of every public route.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Guest-token API",
        description = "Issues short-lived Genesys web-chat guest tokens to an embedded chat widget. \
            Errors are RFC 9457 problem details (application/problem+json, Cache-Control: no-store); \
            every response carries X-Request-ID. A path no route serves answers 404 not_found, and a \
            route asked with another method answers 405 method_not_allowed with an Allow header \
            naming the one it serves; both are problems too.",
        license(name = "MIT OR Apache-2.0")
    ),
    paths(
        crate::routes::guest_token::issue_guest_token,
        crate::routes::health::livez,
        crate::routes::health::readyz,
        crate::routes::docs::metrics,
        crate::routes::docs::openapi_json,
    ),
    components(schemas(GuestTokenRequestBody, GuestTokenResponseBody, Problem, ProblemCode, crate::routes::health::HealthStatus)),
    tags(
        (name = "guest-token", description = "Guest tokens for the chat widget"),
        (name = "health", description = "Liveness and readiness"),
        (name = "operations", description = "Metrics and this document"),
    )
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use domain::api::{ErrorCode, GUEST_TOKEN_PATH, GuestTokenResponse, ProblemDetails};
    use serde_json::Value;

    use super::*;

    fn doc() -> Value {
        serde_json::from_str(&ApiDoc::openapi().to_json().unwrap()).unwrap()
    }

    fn properties(doc: &Value, schema: &str) -> BTreeSet<String> {
        doc["components"]["schemas"][schema]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no schema {schema}"))
            .keys()
            .cloned()
            .collect()
    }

    fn keys(v: Value) -> BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn is_openapi_3_1_and_lists_every_public_route() {
        let doc = doc();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        for path in [GUEST_TOKEN_PATH, "/livez", "/readyz", "/metrics", "/openapi.json"] {
            assert!(doc["paths"].get(path).is_some(), "missing {path}");
        }
        let responses = doc["paths"][GUEST_TOKEN_PATH]["post"]["responses"]
            .as_object()
            .unwrap();
        for status in [
            "201", "400", "403", "413", "415", "422", "429", "502", "503", "504",
        ] {
            assert!(responses.contains_key(status), "missing {status}");
        }
    }

    #[test]
    fn schemas_match_the_wire_types() {
        let doc = doc();
        let response = GuestTokenResponse::new(
            uuid::Uuid::nil(),
            "t".into(),
            time::OffsetDateTime::UNIX_EPOCH,
            time::OffsetDateTime::UNIX_EPOCH,
        );
        assert_eq!(
            properties(&doc, "GuestTokenResponse"),
            keys(serde_json::to_value(response).unwrap())
        );
        let problem = ProblemDetails::new(ErrorCode::NotReady, "d", "r");
        assert_eq!(
            properties(&doc, "Problem"),
            keys(serde_json::to_value(problem).unwrap())
        );
        assert_eq!(
            properties(&doc, "GuestTokenRequest"),
            ["customerId", "language", "queueId"].map(String::from).into()
        );
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["GuestTokenRequest"]["properties"]["queueId"]["format"],
            "uuid"
        );
        assert_eq!(
            schemas["GuestTokenRequest"]["required"],
            serde_json::json!(["queueId"])
        );
        assert_eq!(
            schemas["GuestTokenResponse"]["properties"]["guestId"]["format"],
            "uuid"
        );
        let codes: BTreeSet<String> = doc["components"]["schemas"]["ProblemCode"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        let expected: BTreeSet<String> = ErrorCode::ALL.iter().map(|c| c.as_str().to_owned()).collect();
        assert_eq!(codes, expected);
    }
}
