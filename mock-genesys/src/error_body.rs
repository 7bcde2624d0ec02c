//! Genesys-shaped error answers, shared by the emulated routes and the admin API.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use domain::genesys::{ErrorDetail, GenesysErrorBody, error_codes};

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

/// Genesys' 400 for a body it cannot use, with `details` naming each offending field.
pub(crate) fn malformed_body(details: Vec<ErrorDetail>, correlation_id: &str) -> HttpResponse {
    let mut body = GenesysErrorBody::new(
        400,
        error_codes::BAD_REQUEST,
        "The request could not be understood by the server due to malformed syntax",
        correlation_id,
    );
    body.details = details;
    HttpResponse::BadRequest().json(body)
}
