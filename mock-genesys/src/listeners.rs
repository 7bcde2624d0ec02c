//! Keeps `/__admin` and the Genesys routes apart when the admin API has a listener of its own.

use std::net::SocketAddr;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web;
use domain::genesys::error_codes;

use crate::ADMIN_PREFIX;
use crate::correlation::correlation_id;
use crate::error_body::genesys_error;

/// The admin listener's address, present in the app data only when it has its own listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdminListener(pub(crate) SocketAddr);

/// Whether `path` is under the admin prefix.
pub(crate) fn is_admin_path(path: &str) -> bool {
    path.strip_prefix(ADMIN_PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Answers 404 to an admin path on the main listener and to any other path on the admin listener.
pub(crate) async fn serve_on_its_listener(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Some(admin) = req.app_data::<web::Data<AdminListener>>() {
        let on_admin_listener = req.app_config().local_addr() == admin.0;
        if on_admin_listener != is_admin_path(req.path()) {
            let message = format!(
                "No resource matches {} {} on this listener (the admin API has its own)",
                req.method(),
                req.path()
            );
            let response = genesys_error(
                StatusCode::NOT_FOUND,
                error_codes::NOT_FOUND,
                message,
                &correlation_id(req.request()),
            );
            return Ok(req.into_response(response).map_into_right_body());
        }
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_prefix_and_what_is_under_it_are_admin_paths() {
        assert!(is_admin_path("/__admin"));
        assert!(is_admin_path("/__admin/health"));
        assert!(!is_admin_path("/__administrator"));
        assert!(!is_admin_path("/oauth/token"));
    }
}
