//! A small OpenID Connect provider for the web-messaging tests: discovery, a token endpoint that
//! redeems single-use codes bound to their redirect URI, PKCE challenge and nonce, and a JWKS. ID
//! tokens are RS256, signed through jose with a committed test-only key.
//!
//! Misbehaviours can be switched on at run time: a step that is slow, answers garbage or an error
//! status; ID tokens with the wrong issuer, audience or nonce, expired, badly signed, HMAC-signed
//! or naming an unknown key; and the provider can stop listening altogether.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use domain::oidc::{ErrorResponse, ProviderMetadata, TokenRequest, TokenResponse};
use jose::RsaSigningKey;
use serde_json::{Value, json};

/// The test-only signing key the provider publishes.
const SIGNING_KEY: &[u8] = include_bytes!("../../../crates/jose/tests/fixtures/test-only-rsa-2048.pkcs8.pem");
/// The client the emulator's deployment authenticates as (public test values).
pub const CLIENT_ID: &str = "genesys-test";
pub const CLIENT_SECRET: &str = "genesys-test-secret";
/// Where the tests say the browser came back to.
pub const REDIRECT_URI: &str = "https://shop.example.com/callback";
/// How long minted codes stay valid.
const CODE_TTL: Duration = Duration::from_secs(60);

/// A step of the exchange, as the emulator calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Discovery,
    Token,
    Jwks,
}

/// What is wrong with the ID tokens issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdTokenFault {
    #[default]
    None,
    WrongIssuer,
    WrongAudience,
    WrongNonce,
    Expired,
    BadSignature,
    UnknownKid,
    Hs256,
}

/// The provider's behaviour, changed by the tests while it runs.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// Answer this step only after this delay.
    pub slow: Option<(Step, Duration)>,
    /// Answer this step 200 with a body that is not JSON.
    pub garbage: Option<Step>,
    /// Answer this step with this status and an empty JSON object.
    pub status: Option<(Step, u16)>,
    /// What is wrong with the ID tokens.
    pub id_token: IdTokenFault,
    /// `token_endpoint_auth_methods_supported`; `None` leaves it out (basic by default).
    pub auth_methods: Option<Vec<&'static str>>,
    /// `expires_in` of the access tokens.
    pub access_token_expires_in: u64,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            slow: None,
            garbage: None,
            status: None,
            id_token: IdTokenFault::None,
            auth_methods: None,
            access_token_expires_in: 3600,
        }
    }
}

/// A code the provider issued, and what redeeming it must match.
struct Grant {
    sub: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    expires: Instant,
}

/// What the token endpoint received, for assertions.
#[derive(Debug, Clone, Default)]
pub struct TokenCall {
    pub authorization: Option<String>,
    pub form: HashMap<String, String>,
}

struct Shared {
    behaviour: Mutex<Behaviour>,
    grants: Mutex<HashMap<String, Grant>>,
    token_calls: Mutex<Vec<TokenCall>>,
    key: RsaSigningKey,
    issuer: Mutex<String>,
}

/// The provider, on 127.0.0.1 with a random port, on its own thread; dropping it stops it.
pub struct IdentityProvider {
    shared: Arc<Shared>,
    port: u16,
    handle: Option<ServerHandle>,
    thread: Option<JoinHandle<()>>,
}

impl IdentityProvider {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(Behaviour::default()),
            grants: Mutex::new(HashMap::new()),
            token_calls: Mutex::new(Vec::new()),
            key: RsaSigningKey::from_pem(SIGNING_KEY).expect("test key"),
            issuer: Mutex::new(format!("http://127.0.0.1:{port}")),
        });
        let server_shared = Arc::clone(&shared);
        let (sender, receiver) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let data = web::Data::from(server_shared);
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .route("/.well-known/openid-configuration", web::get().to(discovery))
                        .route("/token", web::post().to(token))
                        .route("/jwks.json", web::get().to(jwks))
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(0)
                .listen(listener)
                .expect("listen")
                .run();
                sender.send(server.handle()).unwrap();
                let _ = server.await;
            });
        });
        let handle = receiver.recv().expect("the provider starts");
        Self {
            shared,
            port,
            handle: Some(handle),
            thread: Some(thread),
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.base_url())
    }

    /// The issuer its discovery document and (correct) ID tokens name.
    pub fn issuer(&self) -> String {
        self.shared.issuer.lock().unwrap().clone()
    }

    pub fn behave(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.shared.behaviour.lock().unwrap());
    }

    /// What the token endpoint received so far.
    pub fn token_calls(&self) -> Vec<TokenCall> {
        self.shared.token_calls.lock().unwrap().clone()
    }

    /// A single-use code for `sub`, as the authorization endpoint would issue after a sign-in with
    /// PKCE S256 (`verifier`) and `nonce`.
    pub fn mint_code(&self, sub: &str, verifier: &str, nonce: Option<&str>) -> String {
        let code = format!("code-{}", uuid::Uuid::new_v4());
        self.shared.grants.lock().unwrap().insert(
            code.clone(),
            Grant {
                sub: sub.to_owned(),
                redirect_uri: REDIRECT_URI.to_owned(),
                code_challenge: s256(verifier),
                nonce: nonce.map(str::to_owned),
                expires: Instant::now() + CODE_TTL,
            },
        );
        code
    }

    /// Stops listening: the port refuses connections from now on.
    pub fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            // `stop` sends its command eagerly; joining waits until the listener is closed.
            drop(handle.stop(false));
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for IdentityProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The PKCE S256 challenge of `verifier`.
pub fn s256(verifier: &str) -> String {
    use sha2::Digest;
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// Applies the step's switched-on misbehaviour; `Some` answers instead of the step.
async fn misbehave(shared: &Shared, step: Step) -> Option<HttpResponse> {
    let behaviour = shared.behaviour.lock().unwrap().clone();
    if let Some((slow_step, delay)) = behaviour.slow
        && slow_step == step
    {
        actix_web::rt::time::sleep(delay).await;
    }
    if behaviour.garbage == Some(step) {
        return Some(
            HttpResponse::Ok()
                .content_type("application/json")
                .body("<html>not json</html>"),
        );
    }
    if let Some((status_step, status)) = behaviour.status
        && status_step == step
    {
        let status = actix_web::http::StatusCode::from_u16(status).unwrap();
        return Some(HttpResponse::build(status).json(json!({})));
    }
    None
}

async fn discovery(shared: web::Data<Shared>) -> HttpResponse {
    if let Some(answer) = misbehave(&shared, Step::Discovery).await {
        return answer;
    }
    let issuer = shared.issuer.lock().unwrap().clone();
    let methods = shared.behaviour.lock().unwrap().auth_methods.clone();
    HttpResponse::Ok().json(ProviderMetadata {
        authorization_endpoint: format!("{issuer}/authorize"),
        token_endpoint: format!("{issuer}/token"),
        jwks_uri: format!("{issuer}/jwks.json"),
        userinfo_endpoint: None,
        response_types_supported: vec!["code".into()],
        subject_types_supported: vec!["public".into()],
        id_token_signing_alg_values_supported: vec!["RS256".into()],
        scopes_supported: Some(vec!["openid".into(), "offline_access".into()]),
        token_endpoint_auth_methods_supported: methods.map(|m| m.into_iter().map(str::to_owned).collect()),
        code_challenge_methods_supported: Some(vec!["S256".into()]),
        grant_types_supported: Some(vec!["authorization_code".into()]),
        issuer,
    })
}

async fn jwks(shared: web::Data<Shared>) -> HttpResponse {
    if let Some(answer) = misbehave(&shared, Step::Jwks).await {
        return answer;
    }
    let key = serde_json::to_value(shared.key.public_jwk()).unwrap();
    // A key of a type the emulator cannot use must not hide the RSA key from it.
    let foreign = json!({"kty": "unknown", "kid": "other"});
    HttpResponse::Ok().json(json!({"keys": [foreign, key]}))
}

fn oauth_error(status: u16, error: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .json(ErrorResponse::new(error, format!("test provider: {error}")))
}

async fn token(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap().to_owned());
    shared.token_calls.lock().unwrap().push(TokenCall {
        authorization: authorization.clone(),
        form: form.clone(),
    });
    if let Some(answer) = misbehave(&shared, Step::Token).await {
        return answer;
    }
    let request: TokenRequest = match serde_urlencoded::from_bytes(&body) {
        Ok(request) => request,
        Err(_) => return oauth_error(400, "invalid_request"),
    };
    let methods = shared.behaviour.lock().unwrap().auth_methods.clone();
    let (client_id, secret) = match authorization.as_deref().and_then(|v| v.strip_prefix("Basic ")) {
        Some(encoded) => {
            if methods
                .as_ref()
                .is_some_and(|m| !m.contains(&"client_secret_basic"))
            {
                return oauth_error(401, "invalid_client");
            }
            let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
            let (id, secret) = decoded.split_once(':').unwrap();
            let unescape = |s: &str| {
                serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("x={s}")).unwrap()[0]
                    .1
                    .clone()
            };
            (unescape(id), unescape(secret))
        }
        None => (
            request.client_id.clone().unwrap_or_default(),
            request.client_secret.clone().unwrap_or_default(),
        ),
    };
    if client_id != CLIENT_ID || secret != CLIENT_SECRET {
        return oauth_error(401, "invalid_client");
    }
    if request.grant_type != "authorization_code" {
        return oauth_error(400, "unsupported_grant_type");
    }
    // Single use: the grant is gone whatever the outcome.
    let grant = request
        .code
        .as_deref()
        .and_then(|code| shared.grants.lock().unwrap().remove(code));
    let Some(grant) = grant else {
        return oauth_error(400, "invalid_grant");
    };
    let verifier_ok = request
        .code_verifier
        .as_deref()
        .is_some_and(|verifier| s256(verifier) == grant.code_challenge);
    if grant.expires <= Instant::now()
        || request.redirect_uri.as_deref() != Some(&grant.redirect_uri)
        || !verifier_ok
    {
        return oauth_error(400, "invalid_grant");
    }
    let behaviour = shared.behaviour.lock().unwrap().clone();
    let id_token = id_token(&shared, &grant, behaviour.id_token);
    HttpResponse::Ok().json(TokenResponse {
        access_token: format!("at-{}", uuid::Uuid::new_v4()),
        token_type: "Bearer".into(),
        expires_in: behaviour.access_token_expires_in,
        id_token: Some(id_token),
        refresh_token: Some(format!("rt-{}", uuid::Uuid::new_v4())),
        scope: Some("openid offline_access".into()),
    })
}

fn id_token(shared: &Shared, grant: &Grant, fault: IdTokenFault) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let issuer = shared.issuer.lock().unwrap().clone();
    let mut claims = json!({
        "iss": issuer,
        "sub": grant.sub,
        "aud": [CLIENT_ID, "another-audience"],
        "iat": now,
        "exp": now + 300,
        "auth_time": now,
        "email": "visitor@example.com",
        "given_name": "Vera",
        "family_name": "Visitor",
    });
    if let Some(nonce) = &grant.nonce {
        claims["nonce"] = json!(nonce);
    }
    match fault {
        IdTokenFault::None | IdTokenFault::BadSignature | IdTokenFault::UnknownKid | IdTokenFault::Hs256 => {}
        IdTokenFault::WrongIssuer => claims["iss"] = json!("https://impostor.example.com"),
        IdTokenFault::WrongAudience => claims["aud"] = json!("someone-else"),
        IdTokenFault::WrongNonce => claims["nonce"] = json!("a-different-nonce"),
        // Well beyond any clock leeway.
        IdTokenFault::Expired => claims["exp"] = json!(now - 600),
    }
    let token = shared.key.sign(&claims).unwrap();
    match fault {
        IdTokenFault::BadSignature => {
            // Claims changed after signing: the signature no longer matches.
            claims["sub"] = json!("someone-else");
            replace_part(&token, 1, &claims)
        }
        IdTokenFault::UnknownKid => {
            let header = json!({"alg": "RS256", "typ": "JWT", "kid": "no-such-key"});
            replace_part(&token, 0, &header)
        }
        IdTokenFault::Hs256 => {
            // The classic confusion: HMAC keyed with the provider's public key.
            let public = serde_json::to_vec(&shared.key.public_jwk()).unwrap();
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            header.kid = Some(shared.key.kid().to_owned());
            jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(&public)).unwrap()
        }
        _ => token,
    }
}

fn replace_part(token: &str, index: usize, value: &Value) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[index] = URL_SAFE_NO_PAD.encode(value.to_string());
    parts.join(".")
}
