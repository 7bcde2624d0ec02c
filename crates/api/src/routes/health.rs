//! Liveness and readiness.

use actix_web::{HttpResponse, web};
use genesys_client::GenesysApi;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;

/// Body of the health routes.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthStatus {
    /// `ok` (alive) or `ready`.
    #[schema(example = "ready")]
    pub status: &'static str,
}

/// Liveness: 200 while the process runs; never depends on Genesys.
#[utoipa::path(get, path = "/livez", tag = "health",
    responses((status = 200, description = "The process is running", body = HealthStatus,
        headers(("X-Request-ID" = String, description = "This request's id")))))]
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(HealthStatus { status: "ok" })
}

/// Readiness: 200 when a Genesys access token is held and the service is not shutting down.
///
/// A token that lapsed while the service sat idle is refreshed here, so readiness reflects
/// whether Genesys accepts the client now.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready to issue guest tokens", body = HealthStatus,
            headers(("X-Request-ID" = String, description = "This request's id"))),
        (status = 503, description = "not_ready: no Genesys token yet, or shutting down", body = crate::openapi::Problem,
            content_type = "application/problem+json",
            headers(("X-Request-ID" = String, description = "This request's id"), ("Cache-Control" = String, description = "no-store"),
                ("Retry-After" = u64, description = "Whole seconds to wait, at least 1"))),
    ))]
pub async fn readyz(
    state: web::Data<AppState>,
    genesys: web::Data<dyn GenesysApi>,
) -> Result<HttpResponse, ApiError> {
    if state.lifecycle.is_shutting_down() {
        return Err(ApiError::ShuttingDown);
    }
    if !state.lifecycle.is_logged_in() {
        return Err(ApiError::NotReady);
    }
    if !genesys.has_token()
        && let Err(e) = genesys.fetch_token().await
    {
        tracing::warn!(error = %e, "readiness: the Genesys access token could not be refreshed");
        return Err(ApiError::NotReady);
    }
    Ok(HttpResponse::Ok().json(HealthStatus { status: "ready" }))
}
