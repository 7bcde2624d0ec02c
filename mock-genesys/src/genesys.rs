//! The emulated Genesys routes and the pipeline every non-admin request goes through:
//! correlation id, fault, latency, routing, rate limit, journal.

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use domain::QueueId;
use domain::genesys::{
    ClientCredentialsForm, CreateGuestRequest, CreateGuestResponse, ErrorDetail, GUEST_CREATE_SCOPE,
    GUESTS_PATH, GenesysErrorBody, GuestRoutingEcho, GuestTokenClaims, OAUTH_TOKEN_PATH, OAuthErrorResponse,
    OAuthTokenResponse, QUEUES_PATH_PREFIX, Queue, RATELIMIT_ALLOWED_HEADER, RATELIMIT_COUNT_HEADER,
    RATELIMIT_RESET_HEADER, error_codes, oauth_error_codes,
};
use serde::Serialize;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::correlation::correlation_id;
use crate::error_body::genesys_error;
use crate::faults::FaultAnswer;
use crate::journal::JournalEntry;
use crate::settings::ClientConfig;
use crate::state::{Admission, MockState};

/// Language Genesys applies when a guest request names none.
const DEFAULT_LANGUAGE: &str = "en-us";
/// Largest request body accepted (a guest body is at most ~70 KiB with 50 maximal attributes).
pub(crate) const BODY_LIMIT_BYTES: usize = 1 << 20;
/// The body a `malformed` fault answers: JSON cut off mid-value.
const MALFORMED_BODY: &str = r#"{"guestId": "6f1c1f4e-3d7e-4a51-9a35"#;

/// Entry point of every request outside `/__admin`.
pub(crate) async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<MockState>,
) -> HttpResponse {
    let id = state.next_request_id();
    let received_at = OffsetDateTime::now_utc();
    let correlation_id = correlation_id(&req);
    // Read here rather than by an extractor so that an oversized body gets a Genesys answer too.
    let body = match payload.to_bytes_limited(BODY_LIMIT_BYTES).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, path = req.path(), "request body unreadable");
            return genesys_error(
                StatusCode::BAD_REQUEST,
                error_codes::BAD_REQUEST,
                "The request body could not be read",
                &correlation_id,
            );
        }
        Err(_) => {
            state.journal(JournalEntry::record(id, received_at, &req, &[], 413));
            return genesys_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                error_codes::BAD_REQUEST,
                format!("The request body exceeds {BODY_LIMIT_BYTES} bytes"),
                &correlation_id,
            );
        }
    };
    let fault = state.take_fault(req.method().as_str(), req.path());
    let delay =
        state.runtime().latency_ms.pick() + fault.as_ref().map_or(Duration::ZERO, |fault| fault.delay);
    if !delay.is_zero() {
        actix_web::rt::time::sleep(delay).await;
    }
    let response = match fault.and_then(|fault| fault.answer) {
        Some(FaultAnswer::Reset) => {
            // Journal first: the peer may act (and read the journal) as soon as the socket drops.
            state.journal(JournalEntry::record(id, received_at, &req, &body, 0));
            crate::connection::abort_connection(&req);
            tracing::debug!(method = %req.method(), path = req.path(), %correlation_id, "fault: connection reset");
            return HttpResponse::InternalServerError().force_close().finish();
        }
        Some(FaultAnswer::Malformed) => HttpResponse::Ok()
            .content_type("application/json")
            .body(MALFORMED_BODY),
        Some(FaultAnswer::Respond {
            status,
            retry_after,
            body,
        }) => fault_response(status, retry_after, body, &correlation_id),
        None => route(&req, &body, &state, &correlation_id),
    };
    let status = response.status().as_u16();
    state.journal(JournalEntry::record(id, received_at, &req, &body, status));
    tracing::debug!(method = %req.method(), path = req.path(), status, %correlation_id, "answered");
    response
}

fn route(req: &HttpRequest, body: &[u8], state: &MockState, correlation_id: &str) -> HttpResponse {
    let path = req.path();
    let method = req.method();
    if path == OAUTH_TOKEN_PATH && method == Method::POST {
        return issue_access_token(req, body, state);
    }
    if path == GUESTS_PATH && method == Method::POST {
        return api_route(req, state, correlation_id, |client| {
            create_guest(client, body, state, correlation_id)
        });
    }
    if let Some(queue_id) = path.strip_prefix(QUEUES_PATH_PREFIX)
        && method == Method::GET
        && !queue_id.is_empty()
        && !queue_id.contains('/')
    {
        return api_route(req, state, correlation_id, |_| {
            get_queue(queue_id, state, correlation_id)
        });
    }
    genesys_error(
        StatusCode::NOT_FOUND,
        error_codes::NOT_FOUND,
        format!("No resource matches {method} {path}"),
        correlation_id,
    )
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    HttpResponse::build(status).json(body)
}

fn fault_response(
    status: u16,
    retry_after: Option<String>,
    body: Option<serde_json::Value>,
    correlation_id: &str,
) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut builder = HttpResponse::build(status);
    if let Some(retry_after) = &retry_after {
        builder.insert_header((header::RETRY_AFTER, retry_after.as_str()));
    }
    let delta_seconds = retry_after
        .as_deref()
        .and_then(|value| value.trim().parse::<u64>().ok());
    match body {
        Some(body) => builder.json(body),
        // The same body as a real rate-limit refusal when the wait is in whole seconds.
        None if status == StatusCode::TOO_MANY_REQUESTS && delta_seconds.is_some() => builder.json(
            GenesysErrorBody::rate_limited(delta_seconds.unwrap_or_default(), correlation_id),
        ),
        None => {
            let (code, message) = fault_code(status);
            builder.json(GenesysErrorBody::new(
                status.as_u16(),
                code,
                message,
                correlation_id,
            ))
        }
    }
}

/// The Genesys code and message a faulted status carries.
fn fault_code(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => (error_codes::BAD_REQUEST, "The request could not be understood"),
        401 => (
            error_codes::BAD_CREDENTIALS,
            "Invalid login credentials or the access token has expired",
        ),
        403 => (
            error_codes::MISSING_PERMISSIONS,
            "Unable to perform the requested action: missing permissions",
        ),
        404 => (error_codes::NOT_FOUND, "The requested resource was not found"),
        429 => (error_codes::TOO_MANY_REQUESTS, "Rate limit exceeded the maximum"),
        503 => (
            error_codes::SERVICE_UNAVAILABLE,
            "Service is currently unavailable",
        ),
        _ => (
            error_codes::INTERNAL_SERVER_ERROR,
            "The server encountered an error",
        ),
    }
}

// ---- POST /oauth/token ----

fn oauth_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    json(
        status,
        &OAuthErrorResponse {
            error: error.to_owned(),
            error_description: description.to_owned(),
        },
    )
}

fn issue_access_token(req: &HttpRequest, body: &[u8], state: &MockState) -> HttpResponse {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let form = if is_form {
        serde_urlencoded::from_bytes::<ClientCredentialsForm>(body).ok()
    } else {
        None
    };
    let Some(form) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            oauth_error_codes::UNSUPPORTED_GRANT_TYPE,
            "the body must be an application/x-www-form-urlencoded form with grant_type=client_credentials",
        );
    };
    if form.grant_type.as_deref() != Some(ClientCredentialsForm::GRANT_TYPE) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            oauth_error_codes::UNSUPPORTED_GRANT_TYPE,
            "grant_type must be client_credentials",
        );
    }
    let credentials =
        basic_credentials(req).or_else(|| form.client_id.clone().zip(form.client_secret.clone()));
    let client = credentials.and_then(|(id, secret)| state.authenticate(&id, &secret));
    let Some(client) = client else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            oauth_error_codes::INVALID_CLIENT,
            "client authentication failed: unknown client or wrong secret",
        );
    };
    let ttl = state.runtime().token_ttl_seconds;
    json(
        StatusCode::OK,
        &OAuthTokenResponse {
            access_token: state.issue_token(client, Duration::from_secs(ttl)),
            token_type: "bearer".to_owned(),
            expires_in: ttl,
        },
    )
}

/// `(client_id, client_secret)` from `Authorization: Basic ...`.
fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

// ---- API routes: bearer auth and rate limit ----

/// Authenticates the bearer token, counts the request against the client's window, runs `handler`
/// and adds the rate-limit headers.
fn api_route(
    req: &HttpRequest,
    state: &MockState,
    correlation_id: &str,
    handler: impl FnOnce(&ClientConfig) -> HttpResponse,
) -> HttpResponse {
    let client = bearer_token(req).and_then(|token| state.token_client(token));
    let Some(client) = client else {
        return genesys_error(
            StatusCode::UNAUTHORIZED,
            error_codes::BAD_CREDENTIALS,
            "Invalid login credentials or the access token has expired",
            correlation_id,
        );
    };
    let Some((limit, admission)) = state.admit(&client.id) else {
        return handler(client);
    };
    let (mut response, count, reset_secs) = match admission {
        Admission::Allowed { count, reset_secs } => (handler(client), count, reset_secs),
        Admission::Limited { count, reset_secs } => {
            let mut response = json(
                StatusCode::TOO_MANY_REQUESTS,
                &GenesysErrorBody::rate_limited(reset_secs, correlation_id),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(reset_secs));
            (response, count, reset_secs)
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static(RATELIMIT_ALLOWED_HEADER),
        HeaderValue::from(limit.requests),
    );
    headers.insert(
        HeaderName::from_static(RATELIMIT_COUNT_HEADER),
        HeaderValue::from(count),
    );
    headers.insert(
        HeaderName::from_static(RATELIMIT_RESET_HEADER),
        HeaderValue::from(reset_secs),
    );
    response
}

fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

// ---- POST /api/v2/webchat/instances/guests ----

fn create_guest(client: &ClientConfig, body: &[u8], state: &MockState, correlation_id: &str) -> HttpResponse {
    if !client.scopes.iter().any(|scope| scope == GUEST_CREATE_SCOPE) {
        return genesys_error(
            StatusCode::FORBIDDEN,
            error_codes::MISSING_PERMISSIONS,
            format!(
                "Unable to perform the requested action. You are missing the following permission(s): {GUEST_CREATE_SCOPE}"
            ),
            correlation_id,
        );
    }
    let parsed = serde_json::from_slice::<serde_json::Value>(body)
        .map_err(|e| {
            vec![ErrorDetail {
                field_name: Some("body".to_owned()),
                error_message: format!("must be JSON: {e}"),
            }]
        })
        .and_then(|value| {
            CreateGuestRequest::from_json(&value)
                .map_err(|violations| violations.into_iter().map(ErrorDetail::from).collect())
        });
    let request = match parsed {
        Ok(request) => request,
        Err(details) => {
            let mut error = GenesysErrorBody::new(
                400,
                error_codes::BAD_REQUEST,
                "The request could not be understood by the server due to malformed syntax",
                correlation_id,
            );
            error.details = details;
            return json(StatusCode::BAD_REQUEST, &error);
        }
    };
    let queue_id = request.routing.queue_id;
    if state.queue_name(&queue_id).is_none() {
        return genesys_error(
            StatusCode::NOT_FOUND,
            error_codes::NOT_FOUND,
            format!("Queue {queue_id} not found"),
            correlation_id,
        );
    }
    let guest_id = Uuid::new_v4();
    let iat = OffsetDateTime::now_utc().unix_timestamp();
    let ttl = i64::try_from(state.runtime().guest_token_ttl_seconds).unwrap_or(i64::MAX);
    let exp = iat.saturating_add(ttl);
    let guest_token = state.signer.sign(&GuestTokenClaims {
        sub: guest_id.to_string(),
        token_type: "guest".to_owned(),
        queue_id: queue_id.to_string(),
        iat,
        exp,
        iss: state.issuer.clone(),
    });
    let language = request
        .routing
        .language
        .map_or_else(|| DEFAULT_LANGUAGE.to_owned(), |tag| tag.as_str().to_owned());
    json(
        StatusCode::OK,
        &CreateGuestResponse {
            guest_id,
            guest_token,
            expires_at: OffsetDateTime::from_unix_timestamp(exp).unwrap_or(OffsetDateTime::UNIX_EPOCH),
            routing: GuestRoutingEcho { queue_id, language },
        },
    )
}

// ---- GET /api/v2/routing/queues/{queueId} ----

fn get_queue(raw_id: &str, state: &MockState, correlation_id: &str) -> HttpResponse {
    let found = raw_id
        .parse::<QueueId>()
        .ok()
        .and_then(|id| state.queue_name(&id).map(|name| (id, name)));
    match found {
        Some((id, name)) => json(
            StatusCode::OK,
            &Queue {
                id,
                name: name.to_owned(),
                self_uri: format!("{QUEUES_PATH_PREFIX}{id}"),
            },
        ),
        None => genesys_error(
            StatusCode::NOT_FOUND,
            error_codes::NOT_FOUND,
            format!("Queue {raw_id} not found"),
            correlation_id,
        ),
    }
}
