//! The OpenID Connect provider's routes, for Genesys (and the stock Messenger's redirect flow):
//! discovery, JWKS, authorize, token and userinfo. Errors follow RFC 6749 and OpenID Connect Core
//! (`{"error", "error_description"}`, or a redirect carrying them), not problem details.

use std::time::Instant;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use domain::oidc::{ErrorResponse, error_codes};
use genesys_client::GenesysApi;
use serde::{Deserialize, Serialize};

use crate::bridge::{IdentityBridge, unix_now};
use crate::error::ApiError;
use crate::oidc::{ClientAuthentication, CodeRequest, Grant, Identity, OAuthError, basic_credentials};
use crate::routes::caller::check_client_rate;
use crate::routes::guest_token::read_body;
use crate::state::AppState;

/// Largest token-endpoint form read.
const TOKEN_FORM_LIMIT: usize = 16 * 1024;
/// Longest `state` or `nonce` an authorization request may carry (characters).
const MAX_STATE_OR_NONCE: usize = 512;
/// The scopes this provider knows; others in a request are dropped.
const KNOWN_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

fn bridge(state: &AppState) -> Result<&IdentityBridge, ApiError> {
    // The routes are registered only with a bridge; this is the honest answer if one is missing.
    state.bridge.as_deref().ok_or(ApiError::NotFound)
}

fn no_store(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// An RFC 6749 error answer.
fn oauth_error(error: &OAuthError) -> HttpResponse {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response =
        HttpResponse::build(status).json(ErrorResponse::new(error.error, error.description.clone()));
    if error.basic_challenge {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"oidc\", charset=\"UTF-8\""),
        );
    }
    no_store(response)
}

/// The discovery document (OpenID Connect Discovery 1.0).
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "openid-connect",
    responses((status = 200, description = "The provider's discovery document", content_type = "application/json", body = Object,
        headers(("X-Request-ID" = String, description = "This request's id")))))]
pub async fn discovery(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let bridge = bridge(&state)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(bridge.provider.discovery()))
}

/// The public keys ID tokens are signed with (and, after a rotation, the previous ones).
#[utoipa::path(get, path = "/oidc/jwks.json", tag = "openid-connect",
    responses((status = 200, description = "A JWK set", content_type = "application/json", body = Object,
        headers(("X-Request-ID" = String, description = "This request's id")))))]
pub async fn jwks(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let bridge = bridge(&state)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(bridge.provider.jwks(Instant::now())))
}

/// The query of an authorization request.
#[derive(Debug, Default, Deserialize)]
struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    prompt: Option<String>,
}

/// `redirect_uri` with `params` added to its query.
fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> HttpResponse {
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    no_store(
        HttpResponse::Found()
            .insert_header((header::LOCATION, format!("{redirect_uri}{separator}{query}")))
            .finish(),
    )
}

/// The authorization endpoint: the standard redirect flow for the stock Messenger. The visitor's
/// site session comes from the configured cookie (or `Authorization: Bearer`).
#[utoipa::path(get, path = "/oidc/authorize", tag = "openid-connect",
    params(
        ("response_type" = crate::schemas::ResponseType, Query, description = "code"),
        ("client_id" = String, Query, description = "The Genesys integration's client id"),
        ("redirect_uri" = String, Query, description = "One of the configured redirect URIs, exactly"),
        ("scope" = String, Query, description = "openid, and any of profile email offline_access"),
        ("state" = Option<String>, Query, description = "Returned as is; at most 512 characters", max_length = 512),
        ("nonce" = Option<String>, Query, description = "Put in the ID token; at most 512 characters", max_length = 512),
        ("code_challenge" = String, Query, description = "PKCE challenge: BASE64URL(SHA-256(verifier)), 43 characters", pattern = "^[A-Za-z0-9_-]{43}$"),
        ("code_challenge_method" = crate::schemas::CodeChallengeMethod, Query, description = "S256"),
        ("prompt" = Option<String>, Query, description = "none: never show a login page"),
    ),
    responses(
        (status = 302, description = "To redirect_uri with a code or an error, or to the site's login page"),
        (status = 400, description = "invalid_request: unknown client or redirect URI (not redirected)", body = crate::schemas::Problem, content_type = "application/problem+json"),
        (status = 429, description = "rate_limited", body = crate::schemas::Problem, content_type = "application/problem+json"),
    ))]
pub async fn authorize(
    req: HttpRequest,
    state: web::Data<AppState>,
    genesys: web::Data<dyn GenesysApi>,
) -> Result<HttpResponse, ApiError> {
    check_client_rate(&req, &state)?;
    let bridge = bridge(&state)?;
    let query: AuthorizeQuery = serde_urlencoded::from_str(req.query_string()).map_err(|_| {
        ApiError::InvalidRequest(domain::FieldViolation::new(
            "query",
            "is not a valid query string",
        ))
    })?;
    // Until client and redirect URI are known good, errors are shown here, never redirected.
    if query.client_id.as_deref() != Some(bridge.provider.client_id()) {
        return Err(ApiError::InvalidRequest(domain::FieldViolation::new(
            "client_id",
            "is not this provider's client",
        )));
    }
    let redirect_uri = match query.redirect_uri.as_deref() {
        Some(uri) if bridge.provider.allows_redirect(uri) => uri.to_owned(),
        _ => {
            return Err(ApiError::InvalidRequest(domain::FieldViolation::new(
                "redirect_uri",
                "must be one of the provider's redirect URIs, exactly",
            )));
        }
    };
    // Echoed into the redirect and sealed into the code: bounded, so neither grows without end.
    if query
        .state
        .as_ref()
        .is_some_and(|state| state.chars().count() > MAX_STATE_OR_NONCE)
    {
        return Err(ApiError::InvalidRequest(domain::FieldViolation::new(
            "state",
            "must be at most 512 characters",
        )));
    }
    let state_param = query.state.clone().unwrap_or_default();
    let refuse = |error: &str, description: &str| {
        let mut params = vec![("error", error), ("error_description", description)];
        if !state_param.is_empty() {
            params.push(("state", &state_param));
        }
        Ok(redirect_with(&redirect_uri, &params))
    };
    if query
        .nonce
        .as_ref()
        .is_some_and(|nonce| nonce.chars().count() > MAX_STATE_OR_NONCE)
    {
        return refuse(
            error_codes::INVALID_REQUEST,
            "nonce must be at most 512 characters",
        );
    }
    if query.response_type.as_deref() != Some("code") {
        return refuse("unsupported_response_type", "response_type must be code");
    }
    let requested: Vec<&str> = query.scope.as_deref().unwrap_or("").split(' ').collect();
    if !requested.contains(&"openid") {
        return refuse(error_codes::INVALID_SCOPE, "scope must include openid");
    }
    let scope: Vec<&str> = KNOWN_SCOPES
        .into_iter()
        .filter(|known| requested.contains(known))
        .collect();
    let code_challenge = match (&query.code_challenge, query.code_challenge_method.as_deref()) {
        (Some(challenge), Some("S256")) if challenge.len() == 43 => challenge.clone(),
        _ => {
            return refuse(
                error_codes::INVALID_REQUEST,
                "PKCE with code_challenge_method S256 is required",
            );
        }
    };
    let prompt_none = query.prompt.as_deref() == Some("none");
    let identity = match bridge.signed_in(&req, genesys.get_ref(), &state.metrics).await {
        Ok(Some(identity)) => identity,
        Ok(None) if bridge.allow_anonymous => Identity::anonymous(unix_now()),
        // Not signed in, or a session that failed: the visitor signs in (again).
        _ if prompt_none => return refuse("login_required", "the visitor is not signed in"),
        _ => match &bridge.sessions.settings().login_url {
            Some(login_url) => {
                let back = format!(
                    "{}{}?{}",
                    bridge.provider.issuer(),
                    req.path(),
                    req.query_string()
                );
                return Ok(redirect_with(login_url, &[("return_to", &back)]));
            }
            None => return refuse("login_required", "the visitor is not signed in"),
        },
    };
    let code = bridge.provider.mint_code(
        CodeRequest {
            client_id: bridge.provider.client_id().to_owned(),
            redirect_uri: redirect_uri.clone(),
            code_challenge,
            nonce: query.nonce.clone(),
            scope: scope.join(" "),
            identity,
        },
        unix_now(),
    );
    state.metrics.code_issued("authorize");
    let mut params = vec![("code", code.as_str())];
    if !state_param.is_empty() {
        params.push(("state", &state_param));
    }
    Ok(redirect_with(&redirect_uri, &params))
}

/// A token-endpoint form, each parameter once.
#[derive(Default)]
struct TokenForm {
    grant_type: String,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

fn token_form(body: &[u8]) -> Result<TokenForm, OAuthError> {
    let invalid = |description: &str| OAuthError {
        status: 400,
        error: error_codes::INVALID_REQUEST,
        description: description.to_owned(),
        basic_challenge: false,
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| invalid("the body must be a form (application/x-www-form-urlencoded)"))?;
    let mut form = TokenForm::default();
    let mut seen = std::collections::HashSet::new();
    for (name, value) in pairs {
        if !seen.insert(name.clone()) {
            return Err(invalid("a parameter appears more than once"));
        }
        let slot = match name.as_str() {
            "grant_type" => {
                form.grant_type = value;
                continue;
            }
            "code" => &mut form.code,
            "redirect_uri" => &mut form.redirect_uri,
            "code_verifier" => &mut form.code_verifier,
            "refresh_token" => &mut form.refresh_token,
            "client_id" => &mut form.client_id,
            "client_secret" => &mut form.client_secret,
            _ => continue,
        };
        *slot = Some(value);
    }
    Ok(form)
}

/// The token endpoint: `authorization_code` (PKCE S256) and `refresh_token` (rotating), client
/// authentication `client_secret_basic` or `client_secret_post`.
#[utoipa::path(post, path = "/oidc/token", tag = "openid-connect",
    request_body(content = crate::schemas::TokenRequestForm, content_type = "application/x-www-form-urlencoded",
        description = "grant_type=authorization_code with code, redirect_uri and code_verifier, or grant_type=refresh_token with refresh_token; the client authenticates with HTTP Basic or client_id and client_secret in the form"),
    responses(
        (status = 200, description = "access_token, id_token, refresh_token", content_type = "application/json", body = Object),
        (status = 400, description = "RFC 6749 error: invalid_request, invalid_grant, unsupported_grant_type", content_type = "application/json", body = Object),
        (status = 401, description = "invalid_client", content_type = "application/json", body = Object),
    ))]
pub async fn token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let bridge = bridge(&state)?;
    let body = read_body(&req, payload, TOKEN_FORM_LIMIT, state.policy.body_timeout).await?;
    let outcome = redeem(&req, bridge, &body);
    let (grant, answer) = match outcome {
        Ok((grant, tokens)) => {
            state.metrics.token_request(grant, "ok");
            return Ok(no_store(HttpResponse::Ok().json(tokens)));
        }
        Err((grant, error)) => (grant, error),
    };
    state.metrics.token_request(grant, answer.error);
    tracing::info!(grant, error = answer.error, reason = %answer.description, "token request refused");
    Ok(oauth_error(&answer))
}

fn redeem(
    req: &HttpRequest,
    bridge: &IdentityBridge,
    body: &[u8],
) -> Result<(&'static str, domain::oidc::TokenResponse), (&'static str, OAuthError)> {
    let form = token_form(body).map_err(|e| ("unknown", e))?;
    let grant = Grant::from_form(
        &form.grant_type,
        form.code,
        form.redirect_uri,
        form.code_verifier,
        form.refresh_token,
    )
    .map_err(|e| ("unknown", e))?;
    let kind = grant.kind();
    let basic = basic_credentials(
        req.headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    )
    .map_err(|e| (kind, e))?;
    bridge
        .provider
        .authenticate(&ClientAuthentication {
            basic,
            form_id: form.client_id,
            form_secret: form.client_secret,
        })
        .map_err(|e| (kind, e))?;
    bridge
        .provider
        .token(grant, unix_now(), Instant::now())
        .map(|tokens| (kind, tokens))
        .map_err(|e| (kind, e))
}

/// What userinfo says of the visitor, per granted scope.
#[derive(Serialize)]
struct UserInfo {
    sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    family_name: Option<String>,
}

/// The visitor behind an access token of this provider (GET or POST, OpenID Connect Core 5.3.1).
#[utoipa::path(method(get, post), path = "/oidc/userinfo", tag = "openid-connect",
    responses(
        (status = 200, description = "sub, and email, given_name, family_name as the scope allows", content_type = "application/json", body = Object),
        (status = 401, description = "No valid access token (WWW-Authenticate: Bearer error=\"invalid_token\")"),
    ))]
pub async fn userinfo(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let bridge = bridge(&state)?;
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let found = token.and_then(|token| bridge.provider.userinfo(token, unix_now(), Instant::now()));
    let Some((identity, scope)) = found else {
        let mut response = HttpResponse::Unauthorized().finish();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
        return Ok(no_store(response));
    };
    let granted = |name: &str| scope.split(' ').any(|s| s == name);
    Ok(no_store(HttpResponse::Ok().json(UserInfo {
        sub: identity.sub,
        email: identity.email.filter(|_| granted("email")),
        given_name: identity.given_name.filter(|_| granted("profile")),
        family_name: identity.family_name.filter(|_| granted("profile")),
    })))
}

/// Registers the provider's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use crate::routes::method_not_allowed;
    cfg.service(
        web::resource(domain::oidc::DISCOVERY_PATH)
            .route(web::get().to(discovery))
            .default_service(web::to(|| method_not_allowed("GET"))),
    )
    .service(
        web::resource(crate::oidc::JWKS_PATH)
            .route(web::get().to(jwks))
            .default_service(web::to(|| method_not_allowed("GET"))),
    )
    .service(
        web::resource(crate::oidc::AUTHORIZE_PATH)
            .route(web::get().to(authorize))
            .default_service(web::to(|| method_not_allowed("GET"))),
    )
    .service(
        web::resource(crate::oidc::TOKEN_PATH)
            .route(web::post().to(token))
            .default_service(web::to(|| method_not_allowed("POST"))),
    )
    .service(
        web::resource(crate::oidc::USERINFO_PATH)
            .route(web::route().method(Method::GET).to(userinfo))
            .route(web::post().to(userinfo))
            .default_service(web::to(|| method_not_allowed("GET, POST"))),
    );
}
