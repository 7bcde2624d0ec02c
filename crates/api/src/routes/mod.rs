//! The HTTP routes and their wiring.

pub mod caller;
pub mod docs;
pub mod guest_token;
pub mod health;
pub mod oidc;
#[cfg(test)]
mod tests;
pub mod webmessaging;

use actix_web::{HttpResponse, web};
use domain::api::GUEST_TOKEN_PATH;

use crate::error::ApiError;

/// Registers every public route (the identity bridge's when `web_messaging` is on); unknown paths
/// and methods answer with problems.
pub fn configure(cfg: &mut web::ServiceConfig, web_messaging: bool) {
    if web_messaging {
        cfg.configure(oidc::configure).service(
            web::resource(webmessaging::AUTH_CODE_PATH)
                .route(web::post().to(webmessaging::issue_auth_code))
                .default_service(web::to(|| method_not_allowed("POST"))),
        );
    }
    cfg.service(
        web::resource(GUEST_TOKEN_PATH)
            .route(web::post().to(guest_token::issue_guest_token))
            .default_service(web::to(|| method_not_allowed("POST"))),
    )
    .service(get_only("/livez", web::get().to(health::livez)))
    .service(get_only("/readyz", web::get().to(health::readyz)))
    .service(get_only("/metrics", web::get().to(docs::metrics)))
    .service(get_only("/openapi.json", web::get().to(docs::openapi_json)))
    .default_service(web::to(not_found));
}

fn get_only(path: &str, route: actix_web::Route) -> actix_web::Resource {
    web::resource(path)
        .route(route)
        .default_service(web::to(|| method_not_allowed("GET")))
}

/// 404 for paths no route serves.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// 405 for known paths asked with another method; `allow` lists the ones they serve.
pub async fn method_not_allowed(allow: &'static str) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed { allow })
}
