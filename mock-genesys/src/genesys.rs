//! The tutorial's Genesys routes (OAuth client credentials, guest creation, queue lookup) and the
//! bearer authentication and rate limit of every API route.

use actix_web::http::header;
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use domain::QueueId;
use domain::genesys::{
    ClientCredentialsForm, CreateGuestRequest, CreateGuestResponse, ErrorDetail, GUEST_CREATE_SCOPE,
    GUESTS_PATH, GuestRoutingEcho, GuestTokenClaims, OAUTH_TOKEN_PATH, OAuthErrorResponse,
    OAuthTokenResponse, QUEUES_PATH_PREFIX, Queue, error_codes, oauth_error_codes,
};
use serde::Serialize;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error_body::{genesys_error, malformed_body};
use crate::settings::ClientConfig;
use crate::state::MockState;

/// Language Genesys applies when a guest request names none.
const DEFAULT_LANGUAGE: &str = "en-us";
/// Answers the tutorial's routes: the OAuth token, guest creation and the queue lookup.
pub(crate) fn route(req: &HttpRequest, body: &[u8], state: &MockState, correlation_id: &str) -> HttpResponse {
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
pub(crate) fn api_route(
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
    let window = match crate::rate_limit::count(state, &client.id) {
        Ok(window) => window,
        Err(over) => return over.refusal(correlation_id),
    };
    let mut response = handler(client);
    if let Some(window) = window {
        window.add_headers(&mut response);
    }
    response
}

/// The token of `Authorization: Bearer <token>`.
pub(crate) fn bearer_token(req: &HttpRequest) -> Option<&str> {
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
        Err(details) => return malformed_body(details, correlation_id),
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
