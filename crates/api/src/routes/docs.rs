//! Self-description: Prometheus metrics and the OpenAPI document.

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};
use genesys_client::GenesysApi;

use crate::state::AppState;

/// Content type of prometheus-client's text encoding (OpenMetrics).
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Prometheus metrics in the OpenMetrics text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics, OpenMetrics 1.0.0 text (application/openmetrics-text; version=1.0.0; charset=utf-8)",
        content_type = "application/openmetrics-text", body = String,
        headers(("X-Request-ID" = String, description = "This request's id")))))]
pub async fn metrics(state: web::Data<AppState>, genesys: web::Data<dyn GenesysApi>) -> HttpResponse {
    let tracked = state.limiter.as_ref().map(|limiter| limiter.tracked_ips());
    state.metrics.set_live(&genesys.status(), tracked);
    HttpResponse::Ok()
        .insert_header((actix_web::http::header::CONTENT_TYPE, OPENMETRICS))
        .body(state.metrics.encode())
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object,
        headers(("X-Request-ID" = String, description = "This request's id")))))]
pub async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(ContentType::json())
        .body(web::Bytes::copy_from_slice(state.openapi_json.as_bytes()))
}
