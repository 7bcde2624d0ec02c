//! Per-request context: the request id, the request's tracing span and metrics, and the last word
//! on every error response (always a problem body carrying the request id).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use actix_cors::CorsError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use domain::api::{ErrorCode, PROBLEM_JSON};
use futures_util::future::Either;
use tracing::{Instrument, field};
use uuid::Uuid;

use crate::error::{ApiError, problem_response};
use crate::state::AppState;

/// The request-id header, read from callers and set on every response.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest caller-supplied request id that is kept.
const MAX_REQUEST_ID_CHARS: usize = 128;

tokio::task_local! {
    static CURRENT: Rc<RequestContext>;
}

/// What the service learns about one request while it runs.
struct RequestContext {
    request_id: String,
    upstream_attempts: Cell<u32>,
    correlation_id: RefCell<Option<String>>,
}

/// The caller's `X-Request-ID` if it is sane (1 to 128 of `[A-Za-z0-9._-]`), else a new UUID.
pub fn request_id_from(headers: &HeaderMap) -> String {
    headers
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_REQUEST_ID_CHARS
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        })
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned)
}

/// The id of the request being served on this task (a fresh UUID outside any request).
pub fn current_request_id() -> String {
    CURRENT
        .try_with(|c| c.request_id.clone())
        .unwrap_or_else(|_| Uuid::new_v4().to_string())
}

/// Counts one upstream HTTP attempt against the current request, if there is one.
pub(crate) fn note_upstream_attempt() {
    let _ = CURRENT.try_with(|c| c.upstream_attempts.set(c.upstream_attempts.get() + 1));
}

/// Remembers Genesys' correlation id for the current request's log line.
pub(crate) fn note_correlation_id(id: &str) {
    let _ = CURRENT.try_with(|c| *c.correlation_id.borrow_mut() = Some(id.to_owned()));
}

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
        status = field::Empty,
        latency_ms = field::Empty,
        upstream_attempts = field::Empty,
        upstream_correlation_id = field::Empty,
    );
    let context = Rc::new(RequestContext {
        request_id: request_id.clone(),
        upstream_attempts: Cell::new(0),
        correlation_id: RefCell::new(None),
    });
    let _in_flight = state.as_ref().map(|s| s.metrics.track_in_flight());

    let body_limit = state.as_ref().map_or(0, |s| s.policy.body_limit_bytes);
    let id_for_errors = request_id.clone();
    let served = async move {
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
    let outcome = CURRENT
        .scope(context.clone(), served)
        .instrument(span.clone())
        .await;
    let mut response = match outcome {
        Ok(res) => Either::Left(res),
        Err(res) => Either::Right(res),
    };
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
    span.record("status", status);
    // Microsecond precision is plenty and keeps log lines short.
    span.record(
        "latency_ms",
        (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0,
    );
    span.record("upstream_attempts", context.upstream_attempts.get());
    if let Some(correlation_id) = context.correlation_id.borrow().as_deref() {
        span.record("upstream_correlation_id", correlation_id);
    }
    span.in_scope(|| tracing::info!("request finished"));
    match response {
        Either::Left(res) => Ok(res),
        Either::Right(res) => Err(InternalError::from_response("middleware error", res).into()),
    }
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
    if status.as_u16() < 400 || is_problem(old.headers()) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with_id(id: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_str(id).unwrap());
        headers
    }

    #[test]
    fn keeps_a_sane_caller_request_id() {
        assert_eq!(request_id_from(&with_id("abc-123_X.y")), "abc-123_X.y");
        let max = "a".repeat(128);
        assert_eq!(request_id_from(&with_id(&max)), max);
    }

    #[test]
    fn replaces_an_insane_request_id_with_a_uuid() {
        for bad in [
            "",
            "has space",
            "semi;colon",
            "ünïcode",
            &"a".repeat(129),
            "<script>",
        ] {
            let Ok(value) = HeaderValue::from_str(bad) else {
                continue;
            };
            let mut headers = HeaderMap::new();
            headers.insert(REQUEST_ID_HEADER, value);
            let id = request_id_from(&headers);
            assert!(Uuid::try_parse(&id).is_ok(), "{bad:?} -> {id:?}");
        }
        assert!(Uuid::try_parse(&request_id_from(&HeaderMap::new())).is_ok());
    }
}
