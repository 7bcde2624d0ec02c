//! The OpenAPI 3.1 document, generated from the route attributes and the types of
//! [`crate::schemas`]; built once at start-up and served by `GET /openapi.json`.

use utoipa::OpenApi;

use crate::schemas::{GuestTokenRequestBody, GuestTokenResponseBody, Problem, ProblemCode};

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
        crate::routes::webmessaging::issue_auth_code,
        crate::routes::oidc::discovery,
        crate::routes::oidc::jwks,
        crate::routes::oidc::authorize,
        crate::routes::oidc::token,
        crate::routes::oidc::userinfo,
        crate::routes::health::livez,
        crate::routes::health::readyz,
        crate::routes::docs::metrics,
        crate::routes::docs::openapi_json,
    ),
    components(schemas(
        GuestTokenRequestBody,
        GuestTokenResponseBody,
        Problem,
        ProblemCode,
        crate::routes::health::HealthStatus,
        crate::routes::health::ReadyStatus,
        crate::schemas::ResponseType,
        crate::schemas::CodeChallengeMethod,
        crate::routes::webmessaging::AuthCodeResponse,
    )),
    tags(
        (name = "guest-token", description = "Guest tokens for the chat widget"),
        (name = "web-messaging", description = "Codes for the Messenger's AuthProvider (when web messaging is on)"),
        (name = "openid-connect", description = "This service as the OpenID Connect provider Genesys redeems codes at (when web messaging is on)"),
        (name = "health", description = "Liveness and readiness"),
        (name = "operations", description = "Metrics and this document"),
    )
)]
pub struct ApiDoc;

/// The document as JSON text.
pub fn document_json() -> String {
    ApiDoc::openapi()
        .to_json()
        .expect("the OpenAPI document serializes")
}

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
        for path in [
            GUEST_TOKEN_PATH,
            "/api/webmessaging/auth-code",
            "/.well-known/openid-configuration",
            "/oidc/jwks.json",
            "/oidc/authorize",
            "/oidc/token",
            "/oidc/userinfo",
            "/livez",
            "/readyz",
            "/metrics",
            "/openapi.json",
        ] {
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
        let mut response = GuestTokenResponse::new(
            uuid::Uuid::nil(),
            "t".into(),
            time::OffsetDateTime::UNIX_EPOCH,
            time::OffsetDateTime::UNIX_EPOCH,
        );
        // Every field, those of web messaging included.
        response.refresh_token = Some("r".into());
        response.deployment_id = Some("d".into());
        response.web_socket_url = Some("w".into());
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
        // The tutorial's guest id is a UUID; web messaging's is the visitor's `sub`.
        assert_eq!(
            schemas["GuestTokenResponse"]["properties"]["guestId"]["format"],
            serde_json::Value::Null
        );
        assert_eq!(
            schemas["GuestTokenResponse"]["required"],
            serde_json::json!(["guestId", "guestToken", "expiresAt", "ttlSeconds"])
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
