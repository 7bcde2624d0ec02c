//! The outermost middleware: the request id, the request's scope and tracing span, metrics, and
//! the last word on every error response (always a problem body carrying the request id).

use std::time::Instant;

use actix_cors::CorsError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::ConnectionType;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use domain::api::{ErrorCode, PROBLEM_JSON};
use futures_util::future::Either;
use tracing::Instrument;

use crate::error::{ApiError, problem_response};
use crate::request_scope::{REQUEST_ID_HEADER, RequestScope, request_id_from};
use crate::state::AppState;

/// The outermost middleware: request id, span, metrics, and problem bodies for every error.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = request_id_from(req.headers());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().clone();
    // Resolved from the path alone, before routing; a bounded label for metrics.
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = %route,
    );
    let scope = RequestScope::new(request_id.clone());
    let _in_flight = state.as_ref().map(|s| s.metrics.track_in_flight());

    let body_limit = state.as_ref().map_or(0, |s| s.policy.body_limit_bytes);
    let oversized_headers = state.as_ref().and_then(|s| {
        headers_over_limit(
            req.headers(),
            s.policy.max_header_count,
            s.policy.max_header_bytes,
        )
    });
    let draining = state.as_ref().is_some_and(|s| s.lifecycle.is_draining());
    let id_for_errors = request_id.clone();
    let served = async move {
        if let Some(refusal) = oversized_headers {
            return Ok(req.into_response(refusal.to_problem_response(&id_for_errors)));
        }
        match next.call(req).await {
            Ok(res) => {
                let res = res.map_into_boxed_body();
                let (request, response) = res.into_parts();
                Ok(ServiceResponse::new(
                    request,
                    into_problem(response, &id_for_errors, body_limit),
                ))
            }
            // Only middleware errors arrive here (handlers' errors are responses already).
            Err(err) => Err(into_problem(
                HttpResponse::from_error(err),
                &id_for_errors,
                body_limit,
            )),
        }
    };
    let outcome = RequestScope::run(scope.clone(), served)
        .instrument(span.clone())
        .await;
    let mut response = match outcome {
        Ok(res) => Either::Left(res),
        Err(res) => Either::Right(res),
    };
    if draining {
        // Keep-alive clients move to another replica instead of reusing a connection that is
        // about to close (a request sent on it then could be lost).
        match &mut response {
            Either::Left(res) => res
                .response_mut()
                .head_mut()
                .set_connection_type(ConnectionType::Close),
            Either::Right(res) => res.head_mut().set_connection_type(ConnectionType::Close),
        }
    }
    let headers = match &mut response {
        Either::Left(res) => res.headers_mut(),
        Either::Right(res) => res.headers_mut(),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    let status = match &response {
        Either::Left(res) => res.status().as_u16(),
        Either::Right(res) => res.status().as_u16(),
    };
    let elapsed = started.elapsed();
    if let Some(state) = &state {
        state
            .metrics
            .observe_http_request(method.as_str(), &route, status, elapsed);
    }
    // The outcome goes on the one line that closes the request, not on the span: the JSON
    // formatter re-reads and re-writes a span's fields on every `record`, which was a quarter of
    // a request's instructions with JSON logs at `info` (bench/README.md).
    // Microsecond precision is plenty and keeps log lines short.
    let latency_ms = (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0;
    let correlation_id = scope.correlation_id();
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms,
            upstream_attempts = scope.upstream_attempts(),
            upstream_correlation_id = correlation_id.as_deref(),
            "request finished"
        );
    });
    match response {
        Either::Left(res) => Ok(res),
        Either::Right(res) => Err(InternalError::from_response("middleware error", res).into()),
    }
}

/// The refusal of a request whose headers are more than `max_count` or, names and values
/// together, more than `max_bytes`.
fn headers_over_limit(headers: &HeaderMap, max_count: usize, max_bytes: usize) -> Option<ApiError> {
    let count = headers.len();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    (count > max_count || bytes > max_bytes).then_some(ApiError::HeadersTooLarge { max_count, max_bytes })
}

fn is_problem(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(PROBLEM_JSON))
}

/// Turns any error response that is not yet a problem (actix's own, actix-cors') into one,
/// keeping its headers (CORS ones included).
fn into_problem(old: HttpResponse, request_id: &str, body_limit: usize) -> HttpResponse {
    let status = old.status();
    // A route's own error answer (the OpenID Connect routes answer in RFC 6749's terms) stays.
    let routes_own = old.error().is_none();
    if status.as_u16() < 400 || is_problem(old.headers()) || routes_own {
        return old;
    }
    let api_error = old.error().and_then(|e| e.as_error::<ApiError>());
    let cors_error = old.error().and_then(|e| e.as_error::<CorsError>());
    let mut new = if let Some(api_error) = api_error {
        api_error.to_problem_response(request_id)
    } else if let Some(cors_error) = cors_error {
        match cors_error {
            CorsError::OriginNotAllowed | CorsError::MissingOrigin => {
                ApiError::OriginNotAllowed.to_problem_response(request_id)
            }
            // The other preflight refusals name a method or header, nothing internal.
            other => ApiError::BadPreflight(other.to_string()).to_problem_response(request_id),
        }
    } else {
        let (code, detail) = match status.as_u16() {
            404 => (ErrorCode::NotFound, ApiError::NotFound.to_string()),
            405 => (
                ErrorCode::MethodNotAllowed,
                "this method is not supported here".to_owned(),
            ),
            413 => (
                ErrorCode::PayloadTooLarge,
                ApiError::PayloadTooLarge { limit: body_limit }.to_string(),
            ),
            415 => (
                ErrorCode::UnsupportedMediaType,
                ApiError::UnsupportedMediaType.to_string(),
            ),
            400..=499 => (ErrorCode::InvalidRequest, "the request is malformed".to_owned()),
            _ => (ErrorCode::Internal, ApiError::Internal.to_string()),
        };
        if code == ErrorCode::Internal {
            tracing::error!(status = status.as_u16(), "unexpected error response");
        }
        problem_response(code, &detail, None, request_id)
    };
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH && !new.headers().contains_key(name)
        {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    new
}
