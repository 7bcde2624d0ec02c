//! The web-messaging HTTP routes: reading a deployment (client credentials), and the token routes a
//! browser calls without any Genesys credential (code exchange, refresh, revoke) with their CORS.
//!
//! Also the messaging JWTs themselves: issued here, and checked here for the WebSocket.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use domain::genesys::{ErrorDetail, error_codes as genesys_codes};
use domain::webmessaging::{
    AuthorizationResponse, DEPLOYMENT_VIEW_PERMISSION, DeploymentStatus, MessagingJwtClaims,
    OAUTH_EXCHANGE_PATH, OAuthExchangeRequest, REFRESH_PATH, REVOKE_PATH, RefreshJwtRequest, TOKEN_PATHS,
    error_codes,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::deployments::Deployment;
use crate::error_body::{genesys_error, malformed_body};
use crate::genesys::{api_route, bearer_token};
use crate::identity::IdentityProviderClient;
use crate::rate_limit::WindowPosition;
use crate::sessions::{AuthSession, StoreFull};
use crate::state::{MockState, deployment_window, lock};

/// How long a browser may cache a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE_SECONDS: u32 = 600;
/// Methods the token routes answer to a browser.
const CORS_METHODS: &str = "POST, DELETE, OPTIONS";
/// Request headers a browser may send to the token routes.
const CORS_REQUEST_HEADERS: &str = "authorization, content-type, inin-correlation-id";
/// Answer headers a browser's script may read: the correlation id and the rate limit's.
const CORS_EXPOSED_HEADERS: &str =
    "inin-correlation-id, inin-ratelimit-allowed, inin-ratelimit-count, inin-ratelimit-reset, retry-after";

/// Whether `path` is one of the token routes (exchange, refresh, revoke).
pub(crate) fn is_token_path(path: &str) -> bool {
    TOKEN_PATHS.contains(&path)
}

// ---- GET /api/v2/webdeployments/deployments/{id} ----

/// The deployment, for a client with `webDeployments:deployment:view`.
pub(crate) fn deployment_route(
    req: &HttpRequest,
    deployment_id: &str,
    state: &MockState,
    correlation_id: &str,
) -> HttpResponse {
    if req.method() != Method::GET || deployment_id.is_empty() || deployment_id.contains('/') {
        return genesys_error(
            StatusCode::NOT_FOUND,
            genesys_codes::NOT_FOUND,
            format!("No resource matches {} {}", req.method(), req.path()),
            correlation_id,
        );
    }
    api_route(req, state, correlation_id, |client| {
        if !client
            .scopes
            .iter()
            .any(|scope| scope == DEPLOYMENT_VIEW_PERMISSION)
        {
            return genesys_error(
                StatusCode::FORBIDDEN,
                genesys_codes::MISSING_PERMISSIONS,
                format!(
                    "Unable to perform the requested action. You are missing the following permission(s): {DEPLOYMENT_VIEW_PERMISSION}"
                ),
                correlation_id,
            );
        }
        match state.deployment(deployment_id) {
            Some(deployment) => HttpResponse::Ok().json(&deployment.public),
            None => not_found(deployment_id, correlation_id),
        }
    })
}

fn not_found(deployment_id: &str, correlation_id: &str) -> HttpResponse {
    // The id is echoed only when it looks like one: it comes from the caller.
    let shown =
        Uuid::parse_str(deployment_id).map_or_else(|_| "(not a UUID)".to_owned(), |id| id.to_string());
    genesys_error(
        StatusCode::NOT_FOUND,
        genesys_codes::NOT_FOUND,
        format!("Web deployment {shown} not found"),
        correlation_id,
    )
}

// ---- The token routes ----

/// A token route's answer and the deployment (if one was found) that decides its CORS headers.
pub(crate) struct Answer {
    pub(crate) response: HttpResponse,
    deployment: Option<Arc<Deployment>>,
}

impl Answer {
    fn plain(response: HttpResponse) -> Self {
        Self {
            response,
            deployment: None,
        }
    }
}

/// Answers the exchange, refresh and revoke routes, and their CORS preflights.
pub(crate) async fn token_route(
    req: &HttpRequest,
    body: &[u8],
    state: &MockState,
    identity_provider: &IdentityProviderClient,
    correlation_id: &str,
) -> HttpResponse {
    let origin = origin(req);
    if req.method() == Method::OPTIONS {
        return preflight(origin.as_deref(), state, correlation_id);
    }
    let path = req.path();
    let answer = match (req.method().clone(), path) {
        (Method::POST, OAUTH_EXCHANGE_PATH) => {
            exchange(body, origin.as_deref(), state, identity_provider, correlation_id).await
        }
        (Method::POST, REFRESH_PATH) => refresh(body, origin.as_deref(), state, correlation_id),
        (Method::DELETE, REVOKE_PATH) => revoke(req, origin.as_deref(), state, correlation_id),
        (method, _) => Answer::plain(genesys_error(
            StatusCode::NOT_FOUND,
            genesys_codes::NOT_FOUND,
            format!("No resource matches {method} {path}"),
            correlation_id,
        )),
    };
    let Answer {
        mut response,
        deployment,
    } = answer;
    if let Some(origin) = origin {
        // The request's own deployment decides; before one is known (a bad body), any deployment.
        let allowed = match &deployment {
            Some(deployment) => deployment.public.allows_origin(&origin),
            None => state.any_deployment_allows(&origin),
        };
        if allowed {
            allow_origin(&mut response, &origin);
        }
    }
    response
}

/// CORS headers on a faulted answer to a token route, for an origin some deployment allows (the
/// fault answers before the request's deployment is known).
pub(crate) fn allow_faulted_cors(req: &HttpRequest, state: &MockState, response: &mut HttpResponse) {
    if !is_token_path(req.path()) {
        return;
    }
    if let Some(origin) = origin(req)
        && state.any_deployment_allows(&origin)
    {
        allow_origin(response, &origin);
        if req.method() == Method::OPTIONS {
            add_preflight_headers(response);
        }
    }
}

fn origin(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn allow_origin(response: &mut HttpResponse, origin: &str) {
    let Ok(value) = HeaderValue::from_str(origin) else {
        return;
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(CORS_EXPOSED_HEADERS),
    );
}

fn add_preflight_headers(response: &mut HttpResponse) {
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(CORS_METHODS),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(CORS_REQUEST_HEADERS),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from(PREFLIGHT_MAX_AGE_SECONDS),
    );
}

/// A preflight names no deployment, so it is allowed when any deployment allows the origin.
fn preflight(origin: Option<&str>, state: &MockState, correlation_id: &str) -> HttpResponse {
    match origin {
        Some(origin) if state.any_deployment_allows(origin) => {
            let mut response = HttpResponse::NoContent().finish();
            allow_origin(&mut response, origin);
            add_preflight_headers(&mut response);
            response
        }
        _ => origin_refused(correlation_id),
    }
}

fn origin_refused(correlation_id: &str) -> HttpResponse {
    genesys_error(
        StatusCode::FORBIDDEN,
        error_codes::ORIGIN_NOT_ALLOWED,
        "The request's Origin is not allowed by the web deployment",
        correlation_id,
    )
}

fn bad_request(field: &str, message: &str, correlation_id: &str) -> HttpResponse {
    let detail = ErrorDetail {
        field_name: Some(field.to_owned()),
        error_message: message.to_owned(),
    };
    malformed_body(vec![detail], correlation_id)
}

/// A deployment a browser-facing route (token routes, WebSocket) named, and its window.
pub(crate) struct Admitted {
    pub(crate) deployment: Arc<Deployment>,
    pub(crate) window: Option<WindowPosition>,
}

/// The deployment a browser-facing route names, counted against its rate-limit window and checked:
/// known, Active, allowing the request's origin (when it sends one). `Err` is the answer when not.
pub(crate) fn admit_deployment(
    deployment_id: &str,
    origin: Option<&str>,
    state: &MockState,
    correlation_id: &str,
) -> Result<Admitted, Box<Answer>> {
    let Some(deployment) = state.deployment(deployment_id) else {
        return Err(Box::new(Answer::plain(not_found(deployment_id, correlation_id))));
    };
    let refused = |response| {
        Err(Box::new(Answer {
            response,
            deployment: Some(deployment.clone()),
        }))
    };
    let window = match crate::rate_limit::count(state, &deployment_window(&deployment.public.id)) {
        Ok(window) => window,
        Err(over) => return refused(over.refusal(correlation_id)),
    };
    if deployment.public.status != DeploymentStatus::Active {
        return refused(genesys_error(
            StatusCode::FORBIDDEN,
            error_codes::DEPLOYMENT_NOT_ACTIVE,
            format!(
                "Web deployment {} is {:?}, not Active",
                deployment.public.id, deployment.public.status
            ),
            correlation_id,
        ));
    }
    if origin.is_some_and(|origin| !deployment.public.allows_origin(origin)) {
        return refused(origin_refused(correlation_id));
    }
    Ok(Admitted { deployment, window })
}

fn with_window(mut response: HttpResponse, window: Option<WindowPosition>) -> HttpResponse {
    if let Some(window) = window {
        window.add_headers(&mut response);
    }
    response
}

async fn exchange(
    body: &[u8],
    origin: Option<&str>,
    state: &MockState,
    identity_provider: &IdentityProviderClient,
    correlation_id: &str,
) -> Answer {
    let request = match OAuthExchangeRequest::from_json_slice(body) {
        Ok(request) => request,
        Err(violation) => {
            return Answer::plain(bad_request(&violation.field, &violation.message, correlation_id));
        }
    };
    let Admitted { deployment, window } =
        match admit_deployment(&request.deployment_id, origin, state, correlation_id) {
            Ok(admitted) => admitted,
            Err(answer) => return *answer,
        };
    let answer = |response| Answer {
        response: with_window(response, window),
        deployment: Some(deployment.clone()),
    };
    let Some(authentication) = &deployment.config.authentication else {
        return answer(genesys_error(
            StatusCode::BAD_REQUEST,
            error_codes::AUTHENTICATION_NOT_CONFIGURED,
            format!(
                "Web deployment {} has no OpenID Connect integration to redeem the code with",
                deployment.public.id
            ),
            correlation_id,
        ));
    };
    let visitor =
        match crate::identity::redeem(identity_provider, state, authentication, &request.oauth).await {
            Ok(visitor) => visitor,
            Err(error) => {
                let (status, code, message) = error.answer();
                tracing::info!(deployment = %deployment.public.id, code, "code exchange refused");
                return answer(genesys_error(status, code, message, correlation_id));
            }
        };
    let runtime = state.runtime();
    let jwt_ttl = jwt_lifetime(runtime.messaging_jwt_ttl_seconds, visitor.access_token_ttl);
    let opened = lock(&state.sessions).open(
        &deployment.public.id,
        &visitor.sub,
        visitor.access_token_ttl,
        Duration::from_secs(runtime.refresh_token_ttl_seconds),
        jwt_ttl,
        Instant::now(),
    );
    let (session, refresh_token) = match opened {
        Ok(opened) => opened,
        Err(StoreFull) => return answer(store_full(correlation_id)),
    };
    let (jwt, _) = issue_messaging_jwt(state, &session.sub, &session.deployment_id, &session.id, jwt_ttl);
    tracing::info!(deployment = %deployment.public.id, "code exchanged for a messaging JWT");
    answer(HttpResponse::Ok().json(AuthorizationResponse {
        jwt,
        refresh_token: Some(refresh_token),
    }))
}

fn store_full(correlation_id: &str) -> HttpResponse {
    genesys_error(
        StatusCode::SERVICE_UNAVAILABLE,
        error_codes::SESSION_STORE_FULL,
        "The emulator's session store is full (max_sessions): wait for sessions to expire, revoke some, \
         or reset the emulator",
        correlation_id,
    )
}

fn refresh(body: &[u8], origin: Option<&str>, state: &MockState, correlation_id: &str) -> Answer {
    let request = match serde_json::from_slice::<RefreshJwtRequest>(body) {
        Ok(request) => request,
        Err(e) => return Answer::plain(bad_request("body", &format!("must be JSON: {e}"), correlation_id)),
    };
    let Admitted { deployment, window } =
        match admit_deployment(&request.deployment_id, origin, state, correlation_id) {
            Ok(admitted) => admitted,
            Err(answer) => return *answer,
        };
    let runtime = state.runtime();
    let longest = Duration::from_secs(runtime.messaging_jwt_ttl_seconds);
    let session = lock(&state.sessions).refresh(
        &request.refresh_token,
        &deployment.public.id,
        longest,
        Instant::now(),
    );
    let response = match session {
        Some(session) => {
            let ttl = jwt_lifetime(runtime.messaging_jwt_ttl_seconds, session.provider_ttl);
            let (jwt, _) = issue_messaging_jwt(state, &session.sub, &session.deployment_id, &session.id, ttl);
            HttpResponse::Ok().json(AuthorizationResponse {
                jwt,
                refresh_token: None,
            })
        }
        None => genesys_error(
            StatusCode::UNAUTHORIZED,
            error_codes::REFRESH_TOKEN_INVALID,
            "The refresh token is unknown, expired or revoked, or belongs to another deployment",
            correlation_id,
        ),
    };
    Answer {
        response: with_window(response, window),
        deployment: Some(deployment),
    }
}

fn revoke(req: &HttpRequest, origin: Option<&str>, state: &MockState, correlation_id: &str) -> Answer {
    let refused = || {
        Answer::plain(genesys_error(
            StatusCode::UNAUTHORIZED,
            genesys_codes::BAD_CREDENTIALS,
            "The messaging JWT is missing, invalid, expired or already revoked",
            correlation_id,
        ))
    };
    let Some((claims, _)) = bearer_token(req).and_then(|jwt| authenticate(state, jwt, None)) else {
        return refused();
    };
    let Admitted { deployment, window } =
        match admit_deployment(&claims.deployment_id, origin, state, correlation_id) {
            Ok(admitted) => admitted,
            Err(answer) => return *answer,
        };
    lock(&state.sessions).revoke(&claims.sid);
    tracing::info!(deployment = %deployment.public.id, "web-messaging session revoked");
    Answer {
        response: with_window(HttpResponse::NoContent().finish(), window),
        deployment: Some(deployment),
    }
}

// ---- Messaging JWTs ----

/// `min(messagingJwtTtlSeconds, the identity provider's access-token lifetime)`, at least a second.
pub(crate) fn jwt_lifetime(messaging_jwt_ttl_seconds: u64, provider_ttl: Option<Duration>) -> Duration {
    let configured = Duration::from_secs(messaging_jwt_ttl_seconds);
    provider_ttl
        .map_or(configured, |provider| configured.min(provider))
        .max(Duration::from_secs(1))
}

/// A signed messaging JWT and its `exp`.
pub(crate) fn issue_messaging_jwt(
    state: &MockState,
    sub: &str,
    deployment_id: &str,
    session_id: &str,
    ttl: Duration,
) -> (String, i64) {
    let iat = OffsetDateTime::now_utc().unix_timestamp();
    let exp = iat.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
    let claims = MessagingJwtClaims {
        sub: sub.to_owned(),
        deployment_id: deployment_id.to_owned(),
        iss: state.issuer.clone(),
        iat,
        exp,
        jti: Uuid::new_v4().to_string(),
        sid: session_id.to_owned(),
    };
    (state.signer.sign(&claims), exp)
}

/// The claims and live session of a messaging JWT this emulator signed, not expired, of
/// `deployment_id` when one is given.
pub(crate) fn authenticate(
    state: &MockState,
    jwt: &str,
    deployment_id: Option<&str>,
) -> Option<(MessagingJwtClaims, AuthSession)> {
    let claims = state.signer.verify::<MessagingJwtClaims>(jwt)?;
    if claims.exp <= OffsetDateTime::now_utc().unix_timestamp() {
        return None;
    }
    if deployment_id.is_some_and(|id| !id.eq_ignore_ascii_case(&claims.deployment_id)) {
        return None;
    }
    let session = lock(&state.sessions).live(&claims.sid)?.clone();
    (session.deployment_id.eq_ignore_ascii_case(&claims.deployment_id) && session.sub == claims.sub)
        .then_some((claims, session))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_messaging_jwt_lives_as_long_as_the_shorter_of_the_setting_and_the_provider_token() {
        assert_eq!(jwt_lifetime(900, None), Duration::from_secs(900));
        assert_eq!(
            jwt_lifetime(900, Some(Duration::from_secs(300))),
            Duration::from_secs(300)
        );
        assert_eq!(
            jwt_lifetime(900, Some(Duration::from_secs(3600))),
            Duration::from_secs(900)
        );
        assert_eq!(jwt_lifetime(900, Some(Duration::ZERO)), Duration::from_secs(1));
    }

    #[test]
    fn token_paths_are_exactly_the_three_routes() {
        assert!(is_token_path(OAUTH_EXCHANGE_PATH));
        assert!(is_token_path(REFRESH_PATH));
        assert!(is_token_path(REVOKE_PATH));
        assert!(!is_token_path("/api/v2/webdeployments/token"));
    }
}
