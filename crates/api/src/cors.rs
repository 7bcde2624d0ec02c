//! CORS for the allowed browser origins. CORS only tells browsers what they may read; the
//! guest-token route refuses disallowed origins itself.
//!
//! A few lines of our own rather than actix-cors: its header lists are joined from a `HashSet`,
//! so `Access-Control-Allow-Headers` came out in a different order from run to run, and a
//! plain `OPTIONS` without `Origin` was refused as a failed preflight instead of answering 405.

use std::collections::HashSet;
use std::rc::Rc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};

use crate::error::ApiError;
use crate::settings::CorsSettings;

/// `Access-Control-Allow-Methods` of a preflight answer.
pub const ALLOW_METHODS: &str = "POST";
/// `Access-Control-Allow-Headers` of a preflight answer.
pub const ALLOW_HEADERS: &str = "content-type, x-request-id";
/// `Access-Control-Expose-Headers` of every answer to an allowed origin.
pub const EXPOSE_HEADERS: &str = "x-request-id, retry-after";

/// Which origins browsers may call from, and how long they may cache a preflight answer.
#[derive(Debug, Clone)]
pub struct CorsPolicy {
    allowed_origins: HashSet<String>,
    max_age: HeaderValue,
}

impl CorsPolicy {
    /// The policy `settings` describe.
    pub fn new(settings: &CorsSettings) -> Self {
        Self {
            allowed_origins: settings
                .allowed_origins
                .iter()
                .map(|o| o.as_str().to_owned())
                .collect(),
            max_age: HeaderValue::from(settings.max_age.as_secs()),
        }
    }

    /// The request's `Origin` if it is an allowed one, compared exactly.
    fn allowed_origin(&self, req: &ServiceRequest) -> Option<HeaderValue> {
        let origin = req.headers().get(header::ORIGIN)?;
        let text = origin.to_str().ok()?;
        self.allowed_origins.contains(text).then(|| origin.clone())
    }
}

/// The CORS middleware: answers preflights itself (403 `origin_not_allowed` for other origins,
/// with no `Access-Control-Allow-Origin`) and marks every other answer to an allowed origin.
pub async fn cors(
    policy: Rc<CorsPolicy>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let allowed_origin = policy.allowed_origin(&req);
    let is_preflight = req.method() == Method::OPTIONS
        && req.headers().contains_key(header::ORIGIN)
        && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if is_preflight {
        let mut response = match allowed_origin {
            Some(origin) => HttpResponse::Ok()
                .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS))
                .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, policy.max_age.clone()))
                .finish(),
            None => ApiError::OriginNotAllowed.error_response(),
        };
        response.headers_mut().append(
            header::VARY,
            HeaderValue::from_static("Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
        );
        return Ok(req.into_response(response));
    }

    // Only middleware fail with `Err`, and none sits inside this one: handlers' errors arrive
    // here as responses, and get the headers below.
    let mut res = next.call(req).await?.map_into_boxed_body();
    let headers = res.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = allowed_origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
    Ok(res)
}
