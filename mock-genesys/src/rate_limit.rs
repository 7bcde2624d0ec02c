//! The rate limit as Genesys answers it: `inin-ratelimit-*` headers on counted requests, and a 429
//! with `Retry-After` over the limit.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use domain::genesys::{
    GenesysErrorBody, RATELIMIT_ALLOWED_HEADER, RATELIMIT_COUNT_HEADER, RATELIMIT_RESET_HEADER,
};

use crate::settings::RateLimit;
use crate::state::{Admission, MockState};

/// Where a counted request stands in its window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowPosition {
    limit: RateLimit,
    count: u32,
    reset_secs: u64,
}

impl WindowPosition {
    /// The 429 over the limit: Genesys' body, `Retry-After` and the rate-limit headers.
    pub(crate) fn refusal(&self, correlation_id: &str) -> HttpResponse {
        let mut response = HttpResponse::build(StatusCode::TOO_MANY_REQUESTS)
            .json(GenesysErrorBody::rate_limited(self.reset_secs, correlation_id));
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(self.reset_secs));
        self.add_headers(&mut response);
        response
    }

    /// Adds `inin-ratelimit-allowed`, `-count` and `-reset`.
    pub(crate) fn add_headers(&self, response: &mut HttpResponse) {
        let headers = response.headers_mut();
        headers.insert(
            HeaderName::from_static(RATELIMIT_ALLOWED_HEADER),
            HeaderValue::from(self.limit.requests),
        );
        headers.insert(
            HeaderName::from_static(RATELIMIT_COUNT_HEADER),
            HeaderValue::from(self.count),
        );
        headers.insert(
            HeaderName::from_static(RATELIMIT_RESET_HEADER),
            HeaderValue::from(self.reset_secs),
        );
    }
}

/// Counts one request of `key`: `Ok(None)` when the limit is off, `Ok(Some(..))` within it, and
/// `Err` over it (answer with [`WindowPosition::refusal`]).
pub(crate) fn count(state: &MockState, key: &str) -> Result<Option<WindowPosition>, WindowPosition> {
    let Some((limit, admission)) = state.admit(key) else {
        return Ok(None);
    };
    match admission {
        Admission::Allowed { count, reset_secs } => Ok(Some(WindowPosition {
            limit,
            count,
            reset_secs,
        })),
        Admission::Limited { count, reset_secs } => Err(WindowPosition {
            limit,
            count,
            reset_secs,
        }),
    }
}
