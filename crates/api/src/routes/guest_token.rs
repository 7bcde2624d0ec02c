//! `POST /api/webchat/guest-token`: checks the caller, then asks Genesys for a guest.

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use domain::Attributes;
use domain::api::{GuestTokenRequest, GuestTokenResponse};
use domain::genesys::{CreateGuestRequest, GuestRouting};
use domain::webmessaging::{OAuthExchangeRequest, OAuthRequestParameters};
use futures_util::StreamExt;
use genesys_client::{GenesysApi, GenesysError};
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::routes::caller::{check_client_rate, check_origin, request_origin};
use crate::settings::GuestUpstream;
use crate::state::{AppState, GuestPolicy};

/// Creates a Genesys web-chat guest and returns its short-lived guest token.
///
/// Checks run in this order: the caller's rate limit, its `Origin`, the content type, the body
/// size, the body's fields, the queue allow-list, readiness; only then is Genesys called.
#[utoipa::path(
    post,
    path = "/api/webchat/guest-token",
    tag = "guest-token",
    request_body(content = crate::schemas::GuestTokenRequestBody, content_type = "application/json"),
    params(
        ("Origin" = Option<String>, Header, description = "The calling page's origin; must be an allowed one when present"),
        ("X-Request-ID" = Option<String>, Header, description = "Echoed back; 1 to 128 of [A-Za-z0-9._-], else replaced"),
    ),
    responses(
        (status = 201, description = "Guest created", body = crate::schemas::GuestTokenResponseBody,
            headers(("X-Request-ID" = String, description = "This request's id"), ("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "invalid_request: the body or a field is invalid (detail names the field)", body = crate::schemas::Problem, content_type = "application/problem+json",
            headers(("X-Request-ID" = String, description = "This request's id"), ("Cache-Control" = String, description = "no-store"))),
        (status = 403, description = "origin_not_allowed (an Origin not in the allowed list, or none when one is required) or queue_not_allowed", body = crate::schemas::Problem, content_type = "application/problem+json",
            headers(("X-Request-ID" = String, description = "This request's id"), ("Cache-Control" = String, description = "no-store"))),
        (status = 408, description = "request_timeout: the body did not arrive within server.body_timeout_ms", body = crate::schemas::Problem, content_type = "application/problem+json",
            headers(("X-Request-ID" = String, description = "This request's id"), ("Cache-Control" = String, description = "no-store"))),
        (status = 413, description = "payload_too_large: the body is over the limit (4 KiB by default)", body = crate::schemas::Problem, content_type = "application/problem+json",
            headers(("X-Request-ID" = String, description = "This request's id"), ("Cache-Control" = String, description = "no-store"))),
        (status = 415, description = "unsupported_media_type: the body is not declared as application/json", body = crate::schemas::Problem, content_type = "application/problem+json",
            headers(("X-Request-ID" = String, description = "This request's id"), ("Cache-Control" = String, description = "no-store"))),
        (status = 431, description = "headers_too_large: too many request headers, or too large", body = crate::schemas::Problem, content_type = "application/problem+json",
            headers(("X-Request-ID" = String, description = "This request's id"), ("Cache-Control" = String, description = "no-store"))),
        (status = 422, description = "unknown_queue: Genesys has no such queue", body = crate::schemas::Problem, content_type = "application/problem+json",
            headers(("X-Request-ID" = String, description = "This request's id"), ("Cache-Control" = String, description = "no-store"))),
        (status = 429, description = "rate_limited: this caller's limit or Genesys' beyond the retry budget", body = crate::schemas::Problem, content_type = "application/problem+json",
            headers(("X-Request-ID" = String, description = "This request's id"), ("Cache-Control" = String, description = "no-store"),
                ("Retry-After" = u64, description = "Whole seconds to wait, at least 1"))),
        (status = 502, description = "upstream_auth_failed or upstream_error", body = crate::schemas::Problem, content_type = "application/problem+json",
            headers(("X-Request-ID" = String, description = "This request's id"), ("Cache-Control" = String, description = "no-store"))),
        (status = 503, description = "not_ready: no Genesys token yet", body = crate::schemas::Problem, content_type = "application/problem+json",
            headers(("X-Request-ID" = String, description = "This request's id"), ("Cache-Control" = String, description = "no-store"),
                ("Retry-After" = u64, description = "Whole seconds to wait, at least 1"))),
        (status = 504, description = "upstream_timeout: the request budget ran out", body = crate::schemas::Problem, content_type = "application/problem+json",
            headers(("X-Request-ID" = String, description = "This request's id"), ("Cache-Control" = String, description = "no-store"))),
    )
)]
pub async fn issue_guest_token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    genesys: web::Data<dyn GenesysApi>,
) -> Result<HttpResponse, ApiError> {
    check_client_rate(&req, &state)?;
    check_origin(&req, &state.policy)?;
    check_json_content_type(&req)?;
    let body = read_body(
        &req,
        payload,
        state.policy.body_limit_bytes,
        state.policy.body_timeout,
    )
    .await?;
    if state.policy.upstream == GuestUpstream::WebMessaging {
        return web_messaging_guest(&req, &body, &state, genesys.get_ref()).await;
    }
    let request = GuestTokenRequest::from_json_slice(&body).map_err(ApiError::InvalidRequest)?;
    // A single-chunk body shares the connection's read buffer: let it go before the upstream call.
    drop(body);
    if let Some(allowed) = &state.policy.allowed_queues
        && !allowed.contains(&request.queue_id)
    {
        return Err(ApiError::QueueNotAllowed(request.queue_id));
    }
    // A draining service keeps serving: the load balancer is still moving traffic away.
    if !state.lifecycle.is_logged_in() {
        return Err(ApiError::NotReady);
    }

    let upstream_request = upstream_request(&state.policy, request);
    match genesys.create_guest(&upstream_request).await {
        Ok(created) => {
            state.lifecycle.mark_logged_in();
            state.metrics.guest_token_issued();
            tracing::debug!(guest_id = %created.guest_id, queue_id = %created.routing.queue_id, "guest created");
            let body = GuestTokenResponse::new(
                created.guest_id,
                created.guest_token,
                created.expires_at,
                OffsetDateTime::now_utc(),
            );
            Ok(HttpResponse::Created()
                .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
                .json(body))
        }
        // The request span already holds the correlation id: the client reports every answered
        // attempt's id through the observer, failures included.
        Err(e) => {
            log_upstream_failure(&e);
            Err(ApiError::Upstream(e))
        }
    }
}

/// The claims of a Genesys messaging JWT this service reads: who and until when.
#[derive(serde::Deserialize)]
struct MessagingJwt {
    sub: String,
    exp: i64,
}

/// Web-messaging mode: the visitor (site session or pseudonym), the deployment's verdict, a code
/// of this service's provider, and Genesys' exchange of it for a messaging JWT.
async fn web_messaging_guest(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
    genesys: &dyn GenesysApi,
) -> Result<HttpResponse, ApiError> {
    // Checked (a page should send what the contract says) but unused: routing belongs to the
    // deployment's flow, and customerId is never an identity.
    let queue = GuestTokenRequest::web_messaging_queue(body).map_err(ApiError::InvalidRequest)?;
    if let (Some(queue), Some(allowed)) = (queue, &state.policy.allowed_queues)
        && !allowed.contains(&queue)
    {
        return Err(ApiError::QueueNotAllowed(queue));
    }
    if !state.lifecycle.is_logged_in() {
        return Err(ApiError::NotReady);
    }
    let bridge = state.bridge.as_deref().ok_or(ApiError::Internal)?;
    let identity = bridge.visitor(req, genesys, &state.metrics).await?;
    let origin = request_origin(req);
    bridge.check_deployment(origin, genesys).await?;
    let minted = bridge.mint_code(identity, origin);
    state.metrics.code_issued("guest_token");
    let exchange = OAuthExchangeRequest {
        deployment_id: bridge.deployment_id.clone(),
        oauth: OAuthRequestParameters {
            code: Some(minted.code),
            redirect_uri: minted.redirect_uri,
            nonce: Some(minted.nonce),
            code_verifier: Some(minted.code_verifier),
            ..OAuthRequestParameters::default()
        },
        journey_context: None,
    };
    let answer = match genesys.exchange_code(&exchange).await {
        Ok(answer) => answer,
        Err(e) => {
            state.metrics.exchange(e.kind());
            return Err(exchange_failure(e));
        }
    };
    state.metrics.exchange("ok");
    let claims = jsonwebtoken::dangerous::insecure_decode::<MessagingJwt>(&answer.jwt).map_err(|_| {
        tracing::error!("Genesys answered the exchange with a JWT that cannot be read");
        ApiError::Upstream(GenesysError::Decode {
            message: "the messaging JWT cannot be read".to_owned(),
            correlation_id: None,
        })
    })?;
    state.metrics.guest_token_issued();
    let now = OffsetDateTime::now_utc();
    let expires_at = OffsetDateTime::from_unix_timestamp(claims.claims.exp).unwrap_or(now);
    let mut body = GuestTokenResponse::for_subject(claims.claims.sub, answer.jwt, expires_at, now);
    body.refresh_token = answer.refresh_token;
    body.deployment_id = Some(bridge.deployment_id.clone());
    body.web_socket_url = Some(bridge.websocket_url.clone());
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(body))
}

/// The caller's answer to a failed exchange, with a log line an operator can act on.
fn exchange_failure(e: GenesysError) -> ApiError {
    match &e {
        GenesysError::Rejected { status, code, .. } => {
            let hint = match code.as_str() {
                "identity.provider.client.rejected" => {
                    "Genesys' OpenID Connect integration holds another client secret than oidc.client_secret"
                }
                "identity.provider.discovery.failed"
                | "identity.provider.token.failed"
                | "identity.provider.jwks.failed" => {
                    "Genesys cannot reach this service's provider: check oidc.issuer and the integration's discovery URI"
                }
                "id.token.invalid" => {
                    "Genesys refused the ID token: check oidc.issuer and oidc.client_id against the integration"
                }
                "deployment.authentication.not.configured" => {
                    "the deployment has no OpenID Connect integration (authenticated messaging is off)"
                }
                "deployment.not.active" => "the deployment is not active",
                _ => "see Genesys' code",
            };
            tracing::error!(status, code = %code, error = %e, "Genesys refused the code exchange: {hint}");
            if code == "deployment.not.active" {
                return ApiError::DeploymentInactive("inactive");
            }
            ApiError::ExchangeRefused(e)
        }
        _ => {
            log_upstream_failure(&e);
            ApiError::Upstream(e)
        }
    }
}

/// The Genesys request for a validated caller request.
pub fn upstream_request(policy: &GuestPolicy, request: GuestTokenRequest) -> CreateGuestRequest {
    let customer_id = request.customer_id.unwrap_or_default();
    let mut attributes = Attributes::new();
    // Both values are within Genesys' limits: the source system is checked at config load and
    // customer ids are at most 128 characters.
    let _ = attributes.insert("sourceSystem", &policy.source_system);
    let _ = attributes.insert("customerId", customer_id.as_str());
    debug_assert_eq!(attributes.len(), 2);
    CreateGuestRequest {
        routing: GuestRouting {
            queue_id: request.queue_id,
            language: Some(
                request
                    .language
                    .unwrap_or_else(|| policy.default_language.clone()),
            ),
            wrap_up_code: None,
        },
        attributes,
    }
}

fn log_upstream_failure(e: &GenesysError) {
    match e {
        GenesysError::UpstreamAuth { .. } => tracing::error!(
            error = %e,
            "Genesys rejects this service's OAuth client; check GENESYS_CLIENT_ID, GENESYS_CLIENT_SECRET and the client's scopes"
        ),
        GenesysError::Upstream { status: 404, .. } => tracing::error!(
            error = %e,
            "Genesys answered 404 for the guest route itself: genesys.base_url (GENESYS_BASE_URL) or the route is probably misconfigured"
        ),
        GenesysError::UnknownQueue { .. } | GenesysError::RateLimited { .. } => {
            tracing::info!(error = %e, kind = e.kind(), "Genesys refused the guest");
        }
        _ => tracing::warn!(error = %e, kind = e.kind(), "Genesys failed to create a guest"),
    }
}

fn check_json_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    let essence = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .map(|ct| ct.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/json") => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType),
    }
}

/// The whole body, at most `limit` bytes, arrived within `deadline` (a client trickling it is cut
/// off with 408; the head has its own deadline in the server).
pub async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    deadline: Duration,
) -> Result<web::Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    match actix_rt::time::timeout(deadline, collect_body(payload, limit)).await {
        Err(_elapsed) => Err(ApiError::BodyTimeout { limit: deadline }),
        Ok(body) => body,
    }
}

/// The body's chunks, at most `limit` bytes. A body that arrives in one chunk (the usual case) is
/// handed on as it is; more chunks are joined in a buffer grown as they come. actix-web's
/// `to_bytes_limited` reserves 32 KiB for every body it cannot size, which held most of the
/// service's memory at a few hundred concurrent requests (`cargo xtask bench`, memory scenario).
async fn collect_body(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    let mut first: Option<web::Bytes> = None;
    let mut joined: Option<web::BytesMut> = None;
    let mut length = 0_usize;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::UnreadableBody)?;
        length = length.saturating_add(chunk.len());
        if length > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        match (&mut joined, first.take()) {
            (Some(buffer), _) => buffer.extend_from_slice(&chunk),
            (None, None) => first = Some(chunk),
            (None, Some(earlier)) => {
                let mut buffer = web::BytesMut::with_capacity(length);
                buffer.extend_from_slice(&earlier);
                buffer.extend_from_slice(&chunk);
                joined = Some(buffer);
            }
        }
    }
    Ok(match joined {
        Some(buffer) => buffer.freeze(),
        None => first.unwrap_or_default(),
    })
}
