//! The one error type of the HTTP boundary: every refusal maps to a stable [`ErrorCode`] and
//! renders as an RFC 9457 problem (`application/problem+json`) with `Retry-After` where it applies.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use domain::api::{ErrorCode, PROBLEM_JSON, ProblemDetails};
use domain::{FieldViolation, QueueId};
use genesys_client::GenesysError;

use crate::request_scope;

/// How long a caller should wait before asking again while the service is not ready.
pub const NOT_READY_RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long a caller should wait before asking again while the deployment is not active.
pub const DEPLOYMENT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Why a request was refused. `Display` is the problem's `detail`: it helps the caller fix the
/// request and never holds upstream internals, secrets or tokens.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body or one of its fields is invalid.
    #[error("{0}")]
    InvalidRequest(FieldViolation),
    /// A CORS preflight asked for a method or header this API does not allow.
    #[error("{0}")]
    BadPreflight(String),
    /// The request's `Origin` is not in the allowed list.
    #[error("requests from this Origin are not accepted")]
    OriginNotAllowed,
    /// `require_origin` is set and the request had no `Origin`.
    #[error("an Origin header is required")]
    OriginRequired,
    /// The queue is outside the configured allow-list.
    #[error("queue {0} is not available through this service")]
    QueueNotAllowed(QueueId),
    /// No route matches the path.
    #[error("no resource at this path")]
    NotFound,
    /// The route exists, but not for this method.
    #[error("this method is not supported here; use {allow}")]
    MethodNotAllowed {
        /// The methods the route serves, for the `Allow` header.
        allow: &'static str,
    },
    /// The body exceeds the limit.
    #[error("the body must be at most {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not declared as JSON.
    #[error("send the body as JSON with Content-Type: application/json")]
    UnsupportedMediaType,
    /// The body could not be read.
    #[error("the body could not be read")]
    UnreadableBody,
    /// The client did not send the whole body within the deadline.
    #[error("the request body did not arrive within {} ms", .limit.as_millis())]
    BodyTimeout {
        /// The deadline.
        limit: Duration,
    },
    /// The request's headers are too many or too large.
    #[error(
        "send at most {max_count} request headers, at most {max_bytes} bytes of names and values together"
    )]
    HeadersTooLarge {
        /// Most headers accepted.
        max_count: usize,
        /// Most bytes of names and values accepted.
        max_bytes: usize,
    },
    /// The caller exceeded its own request rate.
    #[error("too many requests from this client; retry after {}", wait_in_words(*.retry_after))]
    RateLimited {
        /// When the caller may try again.
        retry_after: Duration,
    },
    /// The service holds no Genesys token yet.
    #[error("the service is starting and cannot issue guest tokens yet; retry shortly")]
    NotReady,
    /// Readiness: the service holds no usable Genesys token; the text says why.
    #[error("{0}")]
    Unready(String),
    /// The service is shutting down.
    #[error("the service is shutting down; retry shortly")]
    ShuttingDown,
    /// Genesys refused or failed.
    #[error("{}", upstream_detail(.0))]
    Upstream(GenesysError),
    /// Web messaging needs a signed-in visitor and none was presented.
    #[error("sign in first: send the site's session token as Authorization: Bearer <token>")]
    NotSignedIn,
    /// The presented site session is not valid; the text says which check failed.
    #[error("the site session is not valid: {0}; sign in again")]
    SiteSessionInvalid(&'static str),
    /// The Genesys web deployment is not active (or not allowing this origin is handled as origin).
    #[error("the chat is not available right now (the Genesys deployment is {0}); retry later")]
    DeploymentInactive(&'static str),
    /// The Genesys web deployment cannot be read.
    #[error("the chat is not available right now; retry later")]
    DeploymentUnavailable,
    /// Genesys refused to exchange this service's code for a messaging JWT.
    #[error("the chat service refused to start an authenticated session; the operator has been alerted")]
    ExchangeRefused(GenesysError),
    /// A fault of this service.
    #[error("an unexpected error occurred")]
    Internal,
}

fn upstream_detail(e: &GenesysError) -> String {
    match e {
        GenesysError::UnknownQueue { queue_id, .. } => format!("queue {queue_id} does not exist"),
        GenesysError::UpstreamAuth { .. } => {
            "the chat service could not authenticate this application; the operator has been alerted"
                .to_owned()
        }
        GenesysError::RateLimited { retry_after, .. } => format!(
            "the chat service is busy; retry after {}",
            wait_in_words(*retry_after)
        ),
        GenesysError::Timeout { .. } => "the chat service did not answer in time; retry shortly".to_owned(),
        GenesysError::InvalidRequest { .. }
        | GenesysError::Rejected { .. }
        | GenesysError::Upstream { .. }
        | GenesysError::Transport { .. }
        | GenesysError::Decode { .. } => {
            "the chat service failed to create a guest; retry shortly".to_owned()
        }
    }
}

/// Whole seconds, rounded up, at least 1: `Retry-After: 0` would invite an immediate retry.
pub fn retry_after_secs(d: Duration) -> u64 {
    let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    secs.max(1)
}

/// The `Retry-After` wait as words: "1 second", "2 seconds".
fn wait_in_words(d: Duration) -> String {
    match retry_after_secs(d) {
        1 => "1 second".to_owned(),
        secs => format!("{secs} seconds"),
    }
}

impl ApiError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidRequest(_) | Self::BadPreflight(_) | Self::UnreadableBody => {
                ErrorCode::InvalidRequest
            }
            Self::OriginNotAllowed | Self::OriginRequired => ErrorCode::OriginNotAllowed,
            Self::QueueNotAllowed(_) => ErrorCode::QueueNotAllowed,
            Self::NotFound => ErrorCode::NotFound,
            Self::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::BodyTimeout { .. } => ErrorCode::RequestTimeout,
            Self::HeadersTooLarge { .. } => ErrorCode::HeadersTooLarge,
            Self::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::NotReady | Self::Unready(_) | Self::ShuttingDown => ErrorCode::NotReady,
            Self::NotSignedIn => ErrorCode::NotSignedIn,
            Self::SiteSessionInvalid(_) => ErrorCode::SiteSessionInvalid,
            Self::DeploymentInactive(_) => ErrorCode::DeploymentInactive,
            Self::DeploymentUnavailable => ErrorCode::DeploymentUnavailable,
            Self::ExchangeRefused(_) => ErrorCode::IdentityExchangeFailed,
            Self::Internal => ErrorCode::Internal,
            Self::Upstream(e) => match e {
                GenesysError::UnknownQueue { .. } => ErrorCode::UnknownQueue,
                GenesysError::UpstreamAuth { .. } => ErrorCode::UpstreamAuthFailed,
                GenesysError::RateLimited { .. } => ErrorCode::RateLimited,
                GenesysError::Timeout { .. } => ErrorCode::UpstreamTimeout,
                GenesysError::InvalidRequest { .. }
                | GenesysError::Rejected { .. }
                | GenesysError::Upstream { .. }
                | GenesysError::Transport { .. }
                | GenesysError::Decode { .. } => ErrorCode::UpstreamError,
            },
        }
    }

    /// The `Retry-After` to send, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after }
            | Self::Upstream(GenesysError::RateLimited { retry_after, .. }) => Some(*retry_after),
            Self::NotReady | Self::Unready(_) | Self::ShuttingDown | Self::DeploymentUnavailable => {
                Some(NOT_READY_RETRY_AFTER)
            }
            Self::DeploymentInactive(_) => Some(DEPLOYMENT_RETRY_AFTER),
            _ => None,
        }
    }

    /// The problem response for the request `request_id`.
    pub fn to_problem_response(&self, request_id: &str) -> HttpResponse {
        let mut response = problem_response(self.code(), &self.to_string(), self.retry_after(), request_id);
        if let Self::MethodNotAllowed { allow } = self {
            // RFC 9110: a 405 lists the methods the resource does serve.
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if matches!(
            self,
            Self::BodyTimeout { .. }
                | Self::PayloadTooLarge { .. }
                | Self::UnreadableBody
                | Self::HeadersTooLarge { .. }
        ) {
            // The rest of the body was never read: the connection cannot carry another request.
            response
                .head_mut()
                .set_connection_type(actix_web::http::ConnectionType::Close);
        }
        response
    }
}

/// Renders a problem body with its status, content type and optional `Retry-After`.
pub fn problem_response(
    code: ErrorCode,
    detail: &str,
    retry_after: Option<Duration>,
    request_id: &str,
) -> HttpResponse {
    let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    builder.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
    builder.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    if let Some(wait) = retry_after {
        builder.insert_header((header::RETRY_AFTER, retry_after_secs(wait)));
    }
    let body = serde_json::to_vec(&ProblemDetails::new(code, detail, request_id))
        .expect("problem details always serialize");
    builder.body(body)
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code().status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        self.to_problem_response(&request_scope::current_request_id())
    }
}

impl From<GenesysError> for ApiError {
    fn from(e: GenesysError) -> Self {
        Self::Upstream(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_and_is_never_zero() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(120)), 120);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[test]
    fn retry_details_say_second_for_one_and_seconds_otherwise() {
        let limited = |ms| ApiError::RateLimited {
            retry_after: Duration::from_millis(ms),
        };
        assert_eq!(
            limited(400).to_string(),
            "too many requests from this client; retry after 1 second"
        );
        assert_eq!(
            limited(1500).to_string(),
            "too many requests from this client; retry after 2 seconds"
        );
        let busy = |secs| {
            ApiError::from(GenesysError::RateLimited {
                retry_after: Duration::from_secs(secs),
                correlation_id: None,
            })
            .to_string()
        };
        assert_eq!(busy(1), "the chat service is busy; retry after 1 second");
        assert_eq!(busy(30), "the chat service is busy; retry after 30 seconds");
    }

    #[test]
    fn upstream_details_never_carry_upstream_internals() {
        let errors = [
            GenesysError::UpstreamAuth {
                status: 401,
                reason: "invalid_client: internal-reason-xyz".into(),
                correlation_id: Some("corr-123".into()),
            },
            GenesysError::Transport {
                message: "connection refused to 10.1.2.3:443".into(),
                correlation_id: Some("corr-123".into()),
            },
            GenesysError::Decode {
                message: "expected value at line 1 column 1 near internal-body".into(),
                correlation_id: None,
            },
            GenesysError::InvalidRequest {
                details: vec!["routing.queueId: internal detail".into()],
                correlation_id: Some("corr-123".into()),
            },
            GenesysError::Upstream {
                status: 503,
                correlation_id: Some("corr-123".into()),
            },
        ];
        for e in errors {
            let detail = ApiError::from(e.clone()).to_string();
            for leak in ["internal", "10.1.2.3", "corr-123", "503", "401"] {
                assert!(!detail.contains(leak), "{detail:?} leaks {leak:?} for {e:?}");
            }
        }
    }
}
