//! The checks every browser-facing route makes of its caller before doing any work: its rate
//! (per client IP, `X-Forwarded-For` believed only from trusted proxies) and its `Origin`.

use actix_web::HttpRequest;
use actix_web::http::header;

use crate::error::ApiError;
use crate::state::{AppState, GuestPolicy};

/// Every `X-Forwarded-For` line joined in order: a proxy may append its own line instead of
/// extending the caller's, and the right-most entries are the ones to believe.
fn forwarded_for(req: &HttpRequest) -> Option<String> {
    let lines: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!lines.is_empty()).then(|| lines.join(","))
}

/// Takes one request from the caller's bucket, or refuses with the wait.
pub fn check_client_rate(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(limiter) = &state.limiter else {
        return Ok(());
    };
    let client = limiter.client_ip(req.peer_addr().map(|a| a.ip()), forwarded_for(req).as_deref());
    limiter.check(client).map_err(|retry_after| {
        state.metrics.rate_limited();
        tracing::info!(client = %limiter.key(client), "refused by the per-client limit");
        ApiError::RateLimited { retry_after }
    })
}

/// Refuses a disallowed `Origin` (and a missing one when required) before any upstream call.
pub fn check_origin(req: &HttpRequest, policy: &GuestPolicy) -> Result<(), ApiError> {
    match request_origin(req) {
        None if policy.require_origin => Err(ApiError::OriginRequired),
        None => Ok(()),
        Some(origin) if policy.allowed_origins.contains(origin) => Ok(()),
        Some(_) => Err(ApiError::OriginNotAllowed),
    }
}

/// The request's `Origin`, when it has a readable one.
pub fn request_origin(req: &HttpRequest) -> Option<&str> {
    match req.headers().get(header::ORIGIN) {
        None => None,
        // An unreadable Origin is no allowed origin either: `""` is never in the list.
        Some(origin) => Some(origin.to_str().unwrap_or("")),
    }
}
