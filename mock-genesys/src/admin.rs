//! The `/__admin` API: health, reset, journal, faults, token revocation, settings, JWKS and web
//! deployments.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use domain::genesys::error_codes;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::ADMIN_PREFIX;
use crate::correlation::correlation_id;
use crate::deployments::{DeploymentListing, DeploymentSpec, MAX_DEPLOYMENTS, PutError};
use crate::error_body::genesys_error;
use crate::faults::{FaultSpec, MAX_FAULTS};
use crate::journal::{JournalEntry, RequestDirection};
use crate::settings::SettingsPatch;
use crate::state::MockState;

/// Registers the admin routes under [`ADMIN_PREFIX`].
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope(ADMIN_PREFIX)
            .route("/health", web::get().to(health))
            .route("/reset", web::post().to(reset))
            .service(
                web::resource("/requests")
                    .route(web::get().to(list_requests))
                    .route(web::delete().to(clear_requests)),
            )
            .service(
                web::resource("/faults")
                    .route(web::get().to(list_faults))
                    .route(web::post().to(add_fault))
                    .route(web::delete().to(clear_faults)),
            )
            .route("/faults/{id}", web::delete().to(delete_fault))
            .route("/tokens/revoke", web::post().to(revoke_tokens))
            .service(
                web::resource("/settings")
                    .route(web::get().to(get_settings))
                    .route(web::patch().to(patch_settings)),
            )
            .route("/jwks.json", web::get().to(jwks))
            .route("/deployments", web::get().to(list_deployments))
            .service(
                web::resource("/deployments/{id}")
                    .route(web::put().to(put_deployment))
                    .route(web::delete().to(delete_deployment)),
            )
            .default_service(web::to(unknown_admin_route)),
    );
}

fn bad_request(req: &HttpRequest, message: impl Into<String>) -> HttpResponse {
    genesys_error(
        StatusCode::BAD_REQUEST,
        error_codes::BAD_REQUEST,
        message,
        &correlation_id(req),
    )
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn reset(state: web::Data<MockState>) -> HttpResponse {
    state.reset();
    tracing::info!("state reset");
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalFilter {
    path: Option<String>,
    direction: Option<RequestDirection>,
}

async fn list_requests(req: HttpRequest, state: web::Data<MockState>) -> HttpResponse {
    let filter = match web::Query::<JournalFilter>::from_query(req.query_string()) {
        Ok(filter) => filter.into_inner(),
        Err(e) => return bad_request(&req, format!("invalid query: {e}")),
    };
    // Pointers are copied under the journal's lock; the entries are serialized outside it, straight
    // into the answer's bytes.
    let entries = state.requests(filter.path.as_deref(), filter.direction);
    HttpResponse::Ok().json(JournalListing {
        requests: entries.iter().map(|entry| &**entry).collect(),
    })
}

#[derive(Serialize)]
struct JournalListing<'a> {
    requests: Vec<&'a JournalEntry>,
}

async fn clear_requests(state: web::Data<MockState>) -> HttpResponse {
    state.clear_requests();
    HttpResponse::NoContent().finish()
}

async fn list_faults(state: web::Data<MockState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"faults": state.faults()}))
}

async fn add_fault(req: HttpRequest, body: web::Bytes, state: web::Data<MockState>) -> HttpResponse {
    let spec = match serde_json::from_slice::<FaultSpec>(&body) {
        Ok(spec) => spec,
        Err(e) => return bad_request(&req, format!("invalid fault: {e}")),
    };
    if let Err(message) = spec.validate() {
        return bad_request(&req, format!("invalid fault: {message}"));
    }
    match state.add_fault(spec) {
        Ok(id) => HttpResponse::Created().json(json!({"id": id})),
        Err(_) => bad_request(
            &req,
            format!("the fault list is full ({MAX_FAULTS} active faults): delete some first"),
        ),
    }
}

async fn clear_faults(state: web::Data<MockState>) -> HttpResponse {
    state.clear_faults();
    HttpResponse::NoContent().finish()
}

async fn delete_fault(req: HttpRequest, id: web::Path<String>, state: web::Data<MockState>) -> HttpResponse {
    if state.remove_fault(&id) {
        HttpResponse::NoContent().finish()
    } else {
        genesys_error(
            StatusCode::NOT_FOUND,
            error_codes::NOT_FOUND,
            format!("Fault {id} not found"),
            &correlation_id(&req),
        )
    }
}

async fn revoke_tokens(state: web::Data<MockState>) -> HttpResponse {
    state.revoke_tokens();
    HttpResponse::NoContent().finish()
}

async fn get_settings(state: web::Data<MockState>) -> HttpResponse {
    HttpResponse::Ok().json(state.runtime())
}

async fn patch_settings(req: HttpRequest, body: web::Bytes, state: web::Data<MockState>) -> HttpResponse {
    let patch = match serde_json::from_slice::<SettingsPatch>(&body) {
        Ok(patch) => patch,
        Err(e) => return bad_request(&req, format!("invalid settings: {e}")),
    };
    match state.patch_settings(&patch) {
        Ok(settings) => HttpResponse::Ok().json(settings),
        Err(e) => bad_request(&req, e.to_string()),
    }
}

async fn jwks(state: web::Data<MockState>) -> HttpResponse {
    HttpResponse::Ok().json(state.signer.jwks())
}

async fn list_deployments(state: web::Data<MockState>) -> HttpResponse {
    let deployments = state.deployments();
    HttpResponse::Ok().json(DeploymentsListing {
        deployments: deployments.iter().map(|d| DeploymentListing::of(d)).collect(),
    })
}

#[derive(Serialize)]
struct DeploymentsListing<'a> {
    deployments: Vec<DeploymentListing<'a>>,
}

async fn put_deployment(
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
    state: web::Data<MockState>,
) -> HttpResponse {
    let spec = match serde_json::from_slice::<DeploymentSpec>(&body) {
        Ok(spec) => spec,
        Err(e) => return bad_request(&req, format!("invalid deployment: {e}")),
    };
    match state.put_deployment(spec.into_config(&id)) {
        Ok(created) => {
            let deployment = state.deployment(&id);
            let listed = deployment.as_deref().map(DeploymentListing::of);
            if created {
                HttpResponse::Created().json(listed)
            } else {
                HttpResponse::Ok().json(listed)
            }
        }
        Err(PutError::Invalid(field, reason)) => bad_request(
            &req,
            format!("invalid deployment: {} {reason}", api_field_name(&field)),
        ),
        Err(PutError::Full) => bad_request(
            &req,
            format!("the emulator holds {MAX_DEPLOYMENTS} deployments: delete some first"),
        ),
    }
}

/// The admin API's camelCase spelling of a deployment field named as the settings file spells it.
fn api_field_name(field: &str) -> String {
    let mut name = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            name.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            name.push(c);
        }
    }
    name
}

async fn delete_deployment(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<MockState>,
) -> HttpResponse {
    if state.remove_deployment(&id) {
        HttpResponse::NoContent().finish()
    } else {
        genesys_error(
            StatusCode::NOT_FOUND,
            error_codes::NOT_FOUND,
            "Web deployment not found",
            &correlation_id(&req),
        )
    }
}

async fn unknown_admin_route(req: HttpRequest) -> HttpResponse {
    genesys_error(
        StatusCode::NOT_FOUND,
        error_codes::NOT_FOUND,
        format!("No admin route matches {} {}", req.method(), req.path()),
        &correlation_id(&req),
    )
}
