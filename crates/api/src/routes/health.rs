//! Liveness and readiness. Both only read state: they never call Genesys.

use actix_web::{HttpResponse, web};
use genesys_client::{GenesysApi, TokenState};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;

/// Body of `GET /livez`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthStatus {
    /// `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Body of `GET /readyz` when ready.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadyStatus {
    /// `ready`.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// The Genesys access token held (never its value).
    pub token: TokenReport,
}

/// What readiness tells of the Genesys access token.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenReport {
    /// Seconds since the held token was requested.
    pub age_seconds: u64,
    /// Seconds the held token stays valid.
    pub expires_in_seconds: u64,
    /// Seconds until it is refreshed (in the background).
    pub refresh_in_seconds: u64,
    /// How the last token request ended: `ok`, or an error kind such as `transport`.
    #[schema(example = "ok")]
    pub last_refresh: Option<&'static str>,
}

impl TokenReport {
    fn of(token: &TokenState) -> Self {
        let secs = |d: Option<std::time::Duration>| d.map_or(0, |d| d.as_secs());
        Self {
            age_seconds: secs(token.age),
            expires_in_seconds: secs(token.expires_in),
            refresh_in_seconds: secs(token.refresh_in),
            last_refresh: token.last_request.map(|(_, outcome)| outcome),
        }
    }
}

/// Liveness: 200 while the process runs; never depends on Genesys.
#[utoipa::path(get, path = "/livez", tag = "health",
    responses((status = 200, description = "The process is running", body = HealthStatus,
        headers(("X-Request-ID" = String, description = "This request's id")))))]
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(HealthStatus { status: "ok" })
}

/// Readiness: 200 when a Genesys access token is held and the service is not draining.
///
/// It reads state and answers in microseconds: a token that lapsed is fetched again in the
/// background (within the refresh cool-down), never here.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready to issue guest tokens", body = ReadyStatus,
            headers(("X-Request-ID" = String, description = "This request's id"))),
        (status = 503, description = "not_ready: no Genesys token held, or draining before shutdown", body = crate::schemas::Problem,
            content_type = "application/problem+json",
            headers(("X-Request-ID" = String, description = "This request's id"), ("Cache-Control" = String, description = "no-store"),
                ("Retry-After" = u64, description = "Whole seconds to wait, at least 1"))),
    ))]
pub async fn readyz(
    state: web::Data<AppState>,
    genesys: web::Data<dyn GenesysApi>,
) -> Result<HttpResponse, ApiError> {
    if state.lifecycle.is_draining() {
        return Err(ApiError::ShuttingDown);
    }
    if !state.lifecycle.is_logged_in() {
        return Err(ApiError::NotReady);
    }
    if let Some(bridge) = &state.bridge
        && let Some(reason) = bridge
            .deployment
            .last_known()
            .and_then(|reading| reading.unready_reason(&bridge.deployment_id))
    {
        return Err(ApiError::Unready(reason));
    }
    let token = genesys.status().token;
    if !token.held {
        let why = match token.last_request {
            Some((ago, outcome)) => format!(
                "no Genesys access token is held; the last token request failed ({outcome}) {} s ago \
                 and is retried in the background",
                ago.as_secs()
            ),
            None => "no Genesys access token is held; one is requested in the background".to_owned(),
        };
        return Err(ApiError::Unready(why));
    }
    Ok(HttpResponse::Ok().json(ReadyStatus {
        status: "ready",
        token: TokenReport::of(&token),
    }))
}
