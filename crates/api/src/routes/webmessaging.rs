//! `POST /api/webmessaging/auth-code`: what the Messenger's `AuthProvider.getAuthCode` resolves
//! with. The page hands it to the stock Messenger, which has Genesys exchange the code at this
//! service's token endpoint.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use genesys_client::GenesysApi;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::routes::caller::{check_client_rate, check_origin, request_origin};
use crate::state::AppState;

/// Path of the route.
pub const AUTH_CODE_PATH: &str = "/api/webmessaging/auth-code";

/// 200 answer: exactly the Messenger's `getAuthCode` shape.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthCodeResponse {
    /// The authorization code (single use, 60 s).
    auth_code: String,
    /// The redirect URI it is bound to.
    redirect_uri: String,
    /// The nonce the ID token will carry.
    nonce: String,
    /// The PKCE verifier of the code's challenge.
    code_verifier: String,
}

/// A code for the signed-in visitor (or, when allowed, a pseudonymous one), bound to this
/// provider's client, a redirect URI on the caller's origin, a PKCE challenge and a nonce.
///
/// The visitor is the site's session, sent as `Authorization: Bearer <session JWT>` (or the
/// configured cookie); a `customerId` or anything else the page says never is.
#[utoipa::path(
    post,
    path = "/api/webmessaging/auth-code",
    tag = "web-messaging",
    params(
        ("Authorization" = Option<String>, Header, description = "Bearer <the site's session JWT>"),
        ("Origin" = Option<String>, Header, description = "The calling page's origin; must be an allowed one when present"),
    ),
    responses(
        (status = 200, description = "A code for the Messenger", body = AuthCodeResponse,
            headers(("X-Request-ID" = String, description = "This request's id"), ("Cache-Control" = String, description = "no-store"))),
        (status = 401, description = "not_signed_in or site_session_invalid", body = crate::schemas::Problem, content_type = "application/problem+json"),
        (status = 403, description = "origin_not_allowed: not allowed here or by the Genesys deployment", body = crate::schemas::Problem, content_type = "application/problem+json"),
        (status = 429, description = "rate_limited", body = crate::schemas::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Whole seconds to wait, at least 1"))),
        (status = 503, description = "deployment_inactive, deployment_unavailable or not_ready", body = crate::schemas::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Whole seconds to wait, at least 1"))),
    )
)]
pub async fn issue_auth_code(
    req: HttpRequest,
    state: web::Data<AppState>,
    genesys: web::Data<dyn GenesysApi>,
) -> Result<HttpResponse, ApiError> {
    check_client_rate(&req, &state)?;
    check_origin(&req, &state.policy)?;
    let bridge = state.bridge.as_deref().ok_or(ApiError::NotFound)?;
    let identity = bridge.visitor(&req, genesys.get_ref(), &state.metrics).await?;
    // What Genesys would refuse at the exchange gets no code: an inactive deployment, or an
    // origin it does not allow.
    let origin = request_origin(&req);
    bridge.check_deployment(origin, genesys.get_ref()).await?;
    let minted = bridge.mint_code(identity, origin);
    state.metrics.code_issued("auth_code");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(AuthCodeResponse {
            auth_code: minted.code,
            redirect_uri: minted.redirect_uri,
            nonce: minted.nonce,
            code_verifier: minted.code_verifier,
        }))
}
