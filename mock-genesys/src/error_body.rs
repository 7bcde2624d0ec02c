//! Genesys-shaped error answers, shared by the emulated routes and the admin API.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use domain::genesys::GenesysErrorBody;

/// A Genesys error answer with no details.
pub(crate) fn genesys_error(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    correlation_id: &str,
) -> HttpResponse {
    let body = GenesysErrorBody::new(status.as_u16(), code, message, correlation_id);
    HttpResponse::build(status).json(body)
}
