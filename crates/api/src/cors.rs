//! CORS for the allowed browser origins (actix-cors). CORS only tells browsers what they may
//! read; the guest-token route refuses disallowed origins itself.

use actix_cors::Cors;
use actix_web::http::{Method, header};

use crate::request_scope::REQUEST_ID_HEADER;
use crate::settings::CorsSettings;

/// The CORS middleware for `settings`: exact origins, `POST`, `Content-Type`, `Authorization` (the
/// site session of web messaging) and `X-Request-ID` in, `X-Request-ID` and `Retry-After` exposed.
pub fn cors(settings: &CorsSettings) -> Cors {
    let max_age = usize::try_from(settings.max_age.as_secs()).unwrap_or(usize::MAX);
    settings
        .allowed_origins
        .iter()
        .fold(Cors::default(), |cors, origin| {
            cors.allowed_origin(origin.as_str())
        })
        .allowed_methods([Method::POST])
        .allowed_headers([header::CONTENT_TYPE, header::AUTHORIZATION, REQUEST_ID_HEADER])
        .expose_headers([REQUEST_ID_HEADER, header::RETRY_AFTER])
        .max_age(max_age)
        // Disallowed origins still reach the handler, which answers 403 with a problem body.
        .block_on_origin_mismatch(false)
}
