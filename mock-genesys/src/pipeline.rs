//! The pipeline every request outside `/__admin` goes through: correlation id, body limit, fault,
//! latency, routing (with its rate limit), journal.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use domain::genesys::{GenesysErrorBody, error_codes};
use domain::webmessaging::DEPLOYMENTS_PATH_PREFIX;
use time::OffsetDateTime;

use crate::correlation::correlation_id;
use crate::error_body::genesys_error;
use crate::faults::FaultAnswer;
use crate::identity::IdentityProviderClient;
use crate::journal::JournalEntry;
use crate::state::MockState;

/// Largest request body accepted (a guest body is at most ~70 KiB with 50 maximal attributes).
pub(crate) const BODY_LIMIT_BYTES: usize = 1 << 20;
/// The body a `malformed` fault answers: JSON cut off mid-value.
const MALFORMED_BODY: &str = r#"{"guestId": "6f1c1f4e-3d7e-4a51-9a35"#;

/// What a fault does instead of the normal answer.
pub(crate) enum Intercepted {
    /// Drop the connection; the caller journals and aborts it.
    Reset,
    /// Answer this instead.
    Answer(HttpResponse),
}

/// Takes the request's fault (if any) and waits the latency and the fault's delay; `Some` when the
/// fault replaces the normal answer.
pub(crate) async fn fault_and_latency(
    req: &HttpRequest,
    state: &MockState,
    correlation_id: &str,
) -> Option<Intercepted> {
    let fault = state.take_fault(req.method().as_str(), req.path());
    let delay =
        state.runtime().latency_ms.pick() + fault.as_ref().map_or(Duration::ZERO, |fault| fault.delay);
    if !delay.is_zero() {
        actix_web::rt::time::sleep(delay).await;
    }
    match fault.and_then(|fault| fault.answer)? {
        FaultAnswer::Reset => Some(Intercepted::Reset),
        FaultAnswer::Malformed => Some(Intercepted::Answer(
            HttpResponse::Ok()
                .content_type("application/json")
                .body(MALFORMED_BODY),
        )),
        FaultAnswer::Respond {
            status,
            retry_after,
            body,
        } => Some(Intercepted::Answer(fault_response(
            status,
            retry_after,
            body,
            correlation_id,
        ))),
    }
}

/// Journals a reset request, then drops its connection without an answer.
pub(crate) fn reset(
    req: &HttpRequest,
    state: &MockState,
    entry: JournalEntry,
    correlation_id: &str,
) -> HttpResponse {
    // Journal first: the peer may act (and read the journal) as soon as the socket drops.
    state.journal(entry);
    crate::connection::abort_connection(req);
    tracing::debug!(method = %req.method(), path = req.path(), %correlation_id, "fault: connection reset");
    HttpResponse::InternalServerError().force_close().finish()
}

/// Entry point of every request outside `/__admin` (and `/v1`, which has no body to read).
pub(crate) async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<MockState>,
    identity_provider: web::Data<IdentityProviderClient>,
) -> HttpResponse {
    let id = state.next_request_id();
    let received_at = OffsetDateTime::now_utc();
    let correlation_id = correlation_id(&req);
    // Read here rather than by an extractor so that an oversized body gets a Genesys answer too.
    let body = match payload.to_bytes_limited(BODY_LIMIT_BYTES).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, path = req.path(), "request body unreadable");
            return genesys_error(
                StatusCode::BAD_REQUEST,
                error_codes::BAD_REQUEST,
                "The request body could not be read",
                &correlation_id,
            );
        }
        Err(_) => {
            state.journal(JournalEntry::record(id, received_at, &req, &[], 413));
            return genesys_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                error_codes::BAD_REQUEST,
                format!("The request body exceeds {BODY_LIMIT_BYTES} bytes"),
                &correlation_id,
            );
        }
    };
    let response = match fault_and_latency(&req, &state, &correlation_id).await {
        Some(Intercepted::Reset) => {
            let entry = JournalEntry::record(id, received_at, &req, &body, 0);
            return reset(&req, &state, entry, &correlation_id);
        }
        Some(Intercepted::Answer(mut response)) => {
            crate::webmessaging::allow_faulted_cors(&req, &state, &mut response);
            response
        }
        None => route(&req, &body, &state, &identity_provider, &correlation_id).await,
    };
    let status = response.status().as_u16();
    state.journal(JournalEntry::record(id, received_at, &req, &body, status));
    tracing::debug!(method = %req.method(), path = req.path(), status, %correlation_id, "answered");
    response
}

async fn route(
    req: &HttpRequest,
    body: &[u8],
    state: &MockState,
    identity_provider: &IdentityProviderClient,
    correlation_id: &str,
) -> HttpResponse {
    if crate::webmessaging::is_token_path(req.path()) {
        return crate::webmessaging::token_route(req, body, state, identity_provider, correlation_id).await;
    }
    if let Some(deployment_id) = req.path().strip_prefix(DEPLOYMENTS_PATH_PREFIX) {
        return crate::webmessaging::deployment_route(req, deployment_id, state, correlation_id);
    }
    crate::genesys::route(req, body, state, correlation_id)
}

fn fault_response(
    status: u16,
    retry_after: Option<String>,
    body: Option<serde_json::Value>,
    correlation_id: &str,
) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut builder = HttpResponse::build(status);
    if let Some(retry_after) = &retry_after {
        builder.insert_header((header::RETRY_AFTER, retry_after.as_str()));
    }
    let delta_seconds = retry_after
        .as_deref()
        .and_then(|value| value.trim().parse::<u64>().ok());
    match body {
        Some(body) => builder.json(body),
        // The same body as a real rate-limit refusal when the wait is in whole seconds.
        None if status == StatusCode::TOO_MANY_REQUESTS && delta_seconds.is_some() => builder.json(
            GenesysErrorBody::rate_limited(delta_seconds.unwrap_or_default(), correlation_id),
        ),
        None => {
            let (code, message) = fault_code(status);
            builder.json(GenesysErrorBody::new(
                status.as_u16(),
                code,
                message,
                correlation_id,
            ))
        }
    }
}

/// The Genesys code and message a faulted status carries.
fn fault_code(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => (error_codes::BAD_REQUEST, "The request could not be understood"),
        401 => (
            error_codes::BAD_CREDENTIALS,
            "Invalid login credentials or the access token has expired",
        ),
        403 => (
            error_codes::MISSING_PERMISSIONS,
            "Unable to perform the requested action: missing permissions",
        ),
        404 => (error_codes::NOT_FOUND, "The requested resource was not found"),
        429 => (error_codes::TOO_MANY_REQUESTS, "Rate limit exceeded the maximum"),
        503 => (
            error_codes::SERVICE_UNAVAILABLE,
            "Service is currently unavailable",
        ),
        _ => (
            error_codes::INTERNAL_SERVER_ERROR,
            "The server encountered an error",
        ),
    }
}
