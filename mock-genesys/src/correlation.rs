//! Genesys' correlation id: echoed or created on every answer, and the `contextId` of error bodies.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};
use domain::genesys::CORRELATION_ID_HEADER;
use uuid::Uuid;

/// Longest correlation id echoed back; longer ones are replaced.
const MAX_CORRELATION_ID_LEN: usize = 256;

/// Echoes or creates `inin-correlation-id` on every answer, admin and error answers included.
pub(crate) async fn with_correlation_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = correlation_id(req.request());
    let mut res = next.call(req).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(HeaderName::from_static(CORRELATION_ID_HEADER), value);
    }
    Ok(res)
}

/// The correlation id already chosen for a request, kept in its extensions.
#[derive(Clone)]
struct CorrelationId(String);

/// The request's own correlation id, or a new UUID (the same one for every call on one request).
pub(crate) fn correlation_id(req: &HttpRequest) -> String {
    if let Some(CorrelationId(id)) = req.extensions().get::<CorrelationId>() {
        return id.clone();
    }
    let id = req
        .headers()
        .get(CORRELATION_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= MAX_CORRELATION_ID_LEN)
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned);
    req.extensions_mut().insert(CorrelationId(id.clone()));
    id
}
