//! The contract suite of the guest-token service, run from the host against a running stack.
//!
//! Each check takes the base URLs of the API and of the emulator's admin API, so one suite serves
//! both the containers started by `tests/containers.rs` (testcontainers, random ports) and the
//! docker-compose stack that `cargo xtask e2e` brings up (`tests/compose.rs`, published ports).
//! A check panics with a message naming what broke the contract.

use std::time::{Duration, Instant};

use awc::http::StatusCode;
use awc::http::header::HeaderMap;
use serde_json::{Value, json};

/// The browser origin the stack under test allows (`FRONTEND_ORIGIN`).
pub const ALLOWED_ORIGIN: &str = "http://localhost:8080";
/// An origin no configuration allows.
pub const DISALLOWED_ORIGIN: &str = "https://attacker.example";
/// The emulator's default queue, used by the seed request.
pub const SEED_QUEUE_ID: &str = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";

const GUEST_TOKEN_ROUTE: &str = "/api/webchat/guest-token";
/// The Genesys route that creates guests, as the emulator journals it.
pub const UPSTREAM_GUESTS_PATH: &str = "/api/v2/webchat/instances/guests";
/// The Genesys OAuth token route, as the emulator journals it.
pub const UPSTREAM_TOKEN_PATH: &str = "/oauth/token";

/// Where the stack under test answers.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Base URL of the guest-token API, e.g. `http://localhost:3000`.
    pub api: String,
    /// Base URL of the emulator (Genesys routes and `/__admin`), e.g. `http://localhost:8081`.
    pub mock: String,
}

impl Endpoints {
    /// From `CONTRACT_API_URL` and `CONTRACT_MOCK_URL` (set by `cargo xtask e2e`).
    pub fn from_env() -> Self {
        let read = |name: &str| {
            std::env::var(name)
                .unwrap_or_else(|_| panic!("{name} is not set: run this suite through `cargo xtask e2e`"))
        };
        Endpoints {
            api: read("CONTRACT_API_URL"),
            mock: read("CONTRACT_MOCK_URL"),
        }
    }
}

/// An HTTP client for the checks: no redirects, generous timeouts (the machine may be loaded).
pub fn client() -> awc::Client {
    // awc's TLS connector needs a process-wide provider; a second install is a harmless no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    awc::Client::builder()
        .disable_redirects()
        .timeout(Duration::from_secs(30))
        .finish()
}

/// A response read in full.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, parsed as JSON (`Null` when empty or not JSON).
    pub json: Value,
}

impl Reply {
    /// A header's value as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn send(request: awc::ClientRequest, body: Option<&Value>) -> Reply {
    let description = format!("{} {}", request.get_method(), request.get_uri());
    let sent = match body {
        Some(body) => request.send_json(body).await,
        None => request.send().await,
    };
    let mut response = sent.unwrap_or_else(|e| panic!("{description}: no response: {e}"));
    let bytes = response
        .body()
        .await
        .unwrap_or_else(|e| panic!("{description}: cannot read the body: {e}"));
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// The seed's example request body.
pub fn seed_request() -> Value {
    json!({"queueId": SEED_QUEUE_ID, "language": "en-us", "customerId": "cust_99887766"})
}

/// `POST /api/webchat/guest-token` with the seed body, from `origin` if given.
pub async fn request_guest_token(endpoints: &Endpoints, origin: Option<&str>) -> Reply {
    let mut request = client().post(format!("{}{GUEST_TOKEN_ROUTE}", endpoints.api));
    if let Some(origin) = origin {
        request = request.insert_header(("Origin", origin));
    }
    send(request, Some(&seed_request())).await
}

/// The emulator's journal for one exact path, oldest first.
pub async fn journal(endpoints: &Endpoints, path: &str) -> Vec<Value> {
    let reply = send(
        client().get(format!("{}/__admin/requests?path={path}", endpoints.mock)),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "GET /__admin/requests");
    reply.json["requests"]
        .as_array()
        .cloned()
        .expect("the journal lists `requests`")
}

/// The statuses the emulator answered on `path`, oldest first.
pub async fn upstream_statuses(endpoints: &Endpoints, path: &str) -> Vec<u64> {
    journal(endpoints, path)
        .await
        .iter()
        .map(|entry| entry["status"].as_u64().expect("a status"))
        .collect()
}

async fn clear_journal(endpoints: &Endpoints) {
    let reply = send(
        client().delete(format!("{}/__admin/requests", endpoints.mock)),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "DELETE /__admin/requests");
}

/// Polls the emulator's health route until it answers 200 (after a restart), or panics after `timeout`.
pub async fn wait_for_emulator(endpoints: &Endpoints, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let url = format!("{}/__admin/health", endpoints.mock);
    loop {
        let healthy = client()
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK);
        if healthy {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not answer 200 within {} s",
            timeout.as_secs()
        );
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The happy path: 201, the documented fields, `Cache-Control: no-store`, a request id, CORS for
/// the allowed origin, and the seed's queue, language and customer id passed on to Genesys.
pub async fn issues_a_guest_token(endpoints: &Endpoints) {
    let reply = request_guest_token(endpoints, Some(ALLOWED_ORIGIN)).await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "the seed request: {:?}",
        reply.json
    );
    let body = &reply.json;
    for field in ["guestId", "guestToken", "expiresAt"] {
        assert!(
            body[field].as_str().is_some_and(|v| !v.is_empty()),
            "`{field}` missing in {body}"
        );
    }
    assert_eq!(
        body["guestToken"].as_str().unwrap().split('.').count(),
        3,
        "the guest token is a JWT"
    );
    let ttl = body["ttlSeconds"]
        .as_u64()
        .expect("`ttlSeconds` is a whole number");
    assert!(
        (1..=3600).contains(&ttl),
        "ttlSeconds {ttl} within the emulator's guest-token lifetime"
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert!(
        reply.header("x-request-id").is_some_and(|id| !id.is_empty()),
        "X-Request-ID"
    );
    assert_eq!(reply.header("access-control-allow-origin"), Some(ALLOWED_ORIGIN));
    let exposed = reply
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("x-request-id") && exposed.contains("retry-after"),
        "Access-Control-Expose-Headers: {exposed:?}"
    );

    let guest_calls = journal(endpoints, UPSTREAM_GUESTS_PATH).await;
    let newest = guest_calls.last().expect("the guest was created upstream");
    assert_eq!(newest["status"], 200, "the newest upstream guest call: {newest}");
    let upstream_body: Value = newest["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or_else(|| panic!("the upstream guest call has a JSON body: {newest}"));
    let seed = seed_request();
    assert_eq!(
        upstream_body["routing"]["queueId"], seed["queueId"],
        "{upstream_body}"
    );
    assert_eq!(
        upstream_body["routing"]["language"], seed["language"],
        "{upstream_body}"
    );
    assert_eq!(
        upstream_body["attributes"]["customerId"], seed["customerId"],
        "{upstream_body}"
    );
}

async fn preflight(endpoints: &Endpoints, origin: &str) -> Reply {
    let request = client()
        .request(
            awc::http::Method::OPTIONS,
            format!("{}{GUEST_TOKEN_ROUTE}", endpoints.api),
        )
        .insert_header(("Origin", origin))
        .insert_header(("Access-Control-Request-Method", "POST"))
        .insert_header(("Access-Control-Request-Headers", "content-type"));
    send(request, None).await
}

/// A CORS preflight from the allowed origin names it, allows POST, the JSON content type and
/// `X-Request-ID`; one from any other origin gets no `Access-Control-Allow-Origin`.
pub async fn answers_preflights_only_for_the_allowed_origin(endpoints: &Endpoints) {
    let reply = preflight(endpoints, ALLOWED_ORIGIN).await;
    assert!(reply.status.is_success(), "preflight answered {}", reply.status);
    assert_eq!(reply.header("access-control-allow-origin"), Some(ALLOWED_ORIGIN));
    let methods = reply.header("access-control-allow-methods").unwrap_or_default();
    assert!(
        methods.contains("POST"),
        "Access-Control-Allow-Methods: {methods:?}"
    );
    let headers = reply
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        headers.contains("content-type") && headers.contains("x-request-id"),
        "Access-Control-Allow-Headers: {headers:?}"
    );
    assert!(
        reply.header("access-control-max-age").is_some(),
        "Access-Control-Max-Age"
    );

    let refused = preflight(endpoints, DISALLOWED_ORIGIN).await;
    assert_eq!(
        refused.header("access-control-allow-origin"),
        None,
        "preflight from {DISALLOWED_ORIGIN} answered {}",
        refused.status
    );
}

/// A POST from an origin that is not allowed: 403 `origin_not_allowed`, and Genesys never called.
pub async fn refuses_a_disallowed_origin_before_calling_genesys(endpoints: &Endpoints) {
    clear_journal(endpoints).await;
    let reply = request_guest_token(endpoints, Some(DISALLOWED_ORIGIN)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.json["code"], "origin_not_allowed",
        "problem body: {}",
        reply.json
    );
    assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    assert_eq!(
        reply.json["requestId"].as_str(),
        reply.header("x-request-id"),
        "the problem names the request's X-Request-ID"
    );
    assert_eq!(reply.header("access-control-allow-origin"), None);
    assert_eq!(
        upstream_statuses(endpoints, UPSTREAM_GUESTS_PATH).await,
        Vec::<u64>::new(),
        "nothing upstream"
    );
}

/// Genesys answers 429 with `Retry-After: 1` once: the API waits it out and still answers 201.
pub async fn waits_out_a_rate_limit_from_genesys(endpoints: &Endpoints) {
    clear_journal(endpoints).await;
    let fault =
        json!({"path": UPSTREAM_GUESTS_PATH, "method": "POST", "times": 1, "status": 429, "retryAfter": "1"});
    let reply = send(
        client().post(format!("{}/__admin/faults", endpoints.mock)),
        Some(&fault),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "POST /__admin/faults: {}",
        reply.json
    );

    let started = Instant::now();
    let reply = request_guest_token(endpoints, Some(ALLOWED_ORIGIN)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "after one 429: {}", reply.json);
    // Lower bound only: it must have waited; how much longer depends on the machine's load.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "answered before Retry-After: {:?}",
        started.elapsed()
    );
    assert_eq!(
        upstream_statuses(endpoints, UPSTREAM_GUESTS_PATH).await,
        [429, 200]
    );
}

/// Every access token revoked upstream: the API takes a new one and the call still succeeds.
pub async fn recovers_from_a_revoked_access_token(endpoints: &Endpoints) {
    clear_journal(endpoints).await;
    let reply = send(
        client().post(format!("{}/__admin/tokens/revoke", endpoints.mock)),
        None,
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::NO_CONTENT,
        "POST /__admin/tokens/revoke"
    );

    let reply = request_guest_token(endpoints, Some(ALLOWED_ORIGIN)).await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "after revocation: {}",
        reply.json
    );
    assert_eq!(
        upstream_statuses(endpoints, UPSTREAM_GUESTS_PATH).await,
        [401, 200]
    );
    assert_eq!(
        upstream_statuses(endpoints, UPSTREAM_TOKEN_PATH).await,
        [200],
        "exactly one new access token"
    );
}
