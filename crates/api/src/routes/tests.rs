//! Handler tests against a mocked Genesys: every row of the error table, CORS and the health
//! routes, through the same middleware stack the server uses.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::test::{self, TestRequest};
use actix_web::web;
use domain::api::{GUEST_TOKEN_PATH, PROBLEM_JSON};
use domain::genesys::{CreateGuestRequest, CreateGuestResponse, GuestRoutingEcho};
use domain::{LanguageTag, QueueId};
use genesys_client::{GenesysError, MockGenesysApi, TokenState, UpstreamStatus};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::cors::cors;
use crate::metrics::Metrics;
use crate::rate_limit::ClientIpLimiter;
use crate::request_scope::REQUEST_ID_HEADER;
use crate::settings::{CorsSettings, IpNetwork, RateLimitSettings};
use crate::startup::{app, upstream_data};
use crate::state::{AppState, GuestPolicy, Lifecycle};

const QUEUE: &str = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";
const ALLOWED_ORIGIN: &str = "http://localhost:8080";

struct Harness {
    policy: GuestPolicy,
    logged_in: bool,
    draining: bool,
    /// Per second, burst and trusted proxies of the per-IP limiter, when on.
    rate_limit: Option<(f64, u32, Vec<IpNetwork>)>,
    metrics: Arc<Metrics>,
}

impl Harness {
    fn new() -> Self {
        Self {
            policy: GuestPolicy {
                allowed_origins: HashSet::from([ALLOWED_ORIGIN.to_owned()]),
                require_origin: false,
                allowed_queues: None,
                source_system: "embedded-widget".to_owned(),
                default_language: LanguageTag::default(),
                upstream: crate::settings::GuestUpstream::Tutorial,
                body_limit_bytes: 4096,
                body_timeout: Duration::from_secs(10),
                max_header_count: 64,
                max_header_bytes: 8192,
            },
            logged_in: true,
            draining: false,
            rate_limit: None,
            metrics: Arc::new(Metrics::new()),
        }
    }

    fn state(&self) -> web::Data<AppState> {
        let lifecycle = Lifecycle::new();
        if self.logged_in {
            lifecycle.mark_logged_in();
        }
        if self.draining {
            lifecycle.begin_drain();
        }
        let limiter = self
            .rate_limit
            .clone()
            .map(|(per_second, burst, trusted_proxies)| {
                Arc::new(ClientIpLimiter::new(&RateLimitSettings {
                    enabled: true,
                    per_second,
                    burst,
                    trusted_proxies,
                    max_tracked_ips: 100,
                    prune_interval: Duration::from_secs(60),
                    ipv6_prefix: 64,
                }))
            });
        web::Data::new(AppState {
            policy: Arc::new(self.policy.clone()),
            lifecycle: Arc::new(lifecycle),
            metrics: self.metrics.clone(),
            limiter,
            openapi_json: crate::openapi::document_json().into(),
            bridge: None,
        })
    }

    async fn send_all(&self, genesys: MockGenesysApi, requests: Vec<TestRequest>) -> Vec<ServiceResponse> {
        let cors_settings = CorsSettings {
            allowed_origins: self
                .policy
                .allowed_origins
                .iter()
                .map(|o| o.parse().unwrap())
                .collect(),
            require_origin: self.policy.require_origin,
            max_age: Duration::from_secs(600),
        };
        let service =
            test::init_service(app(self.state(), upstream_data(genesys), cors(&cors_settings))).await;
        let mut responses = Vec::new();
        for request in requests {
            responses.push(
                test::call_service(&service, request.to_request())
                    .await
                    .map_into_boxed_body(),
            );
        }
        responses
    }

    async fn send(&self, genesys: MockGenesysApi, request: TestRequest) -> ServiceResponse {
        self.send_all(genesys, vec![request]).await.remove(0)
    }
}

fn post_json(body: &Value) -> TestRequest {
    TestRequest::post()
        .uri(GUEST_TOKEN_PATH)
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload(body.to_string())
}

fn seed_request() -> TestRequest {
    post_json(&json!({"queueId": QUEUE, "language": "en-us", "customerId": "cust_99887766"}))
        .insert_header((header::ORIGIN, ALLOWED_ORIGIN))
}

/// A mock that must never be called: the request is refused before Genesys.
fn untouched() -> MockGenesysApi {
    let mut mock = MockGenesysApi::new();
    mock.expect_create_guest().never();
    mock.expect_fetch_token().never();
    mock
}

fn failing_with(error: GenesysError) -> MockGenesysApi {
    let mut mock = MockGenesysApi::new();
    mock.expect_create_guest()
        .times(1)
        .returning(move |_| Err(error.clone()));
    mock
}

fn created(request: &CreateGuestRequest, expires_in: Duration) -> CreateGuestResponse {
    let expires_at = (OffsetDateTime::now_utc() + expires_in)
        .replace_nanosecond(0)
        .unwrap();
    CreateGuestResponse {
        guest_id: uuid::Uuid::new_v4(),
        guest_token: "header.payload.signature".to_owned(),
        expires_at,
        routing: GuestRoutingEcho {
            queue_id: request.routing.queue_id,
            language: request
                .routing
                .language
                .as_ref()
                .map_or("en-us".to_owned(), |l| l.to_string()),
        },
    }
}

fn header_str(res: &ServiceResponse, name: impl header::AsHeaderName) -> Option<&str> {
    res.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A comma-separated header as a sorted, lowercase list (its order carries no meaning).
fn header_list(res: &ServiceResponse, name: impl header::AsHeaderName) -> Vec<String> {
    let mut items: Vec<String> = header_str(res, name)
        .unwrap_or_default()
        .split(',')
        .map(|item| item.trim().to_ascii_lowercase())
        .filter(|item| !item.is_empty())
        .collect();
    items.sort();
    items
}

async fn problem(res: ServiceResponse, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status");
    assert_eq!(header_str(&res, header::CONTENT_TYPE), Some(PROBLEM_JSON));
    let request_id = header_str(&res, REQUEST_ID_HEADER)
        .expect("X-Request-ID")
        .to_owned();
    let body: Value = serde_json::from_slice(&test::read_body(res).await).unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["requestId"], request_id.as_str(), "{body}");
    assert_eq!(body["type"], format!("urn:guest-token:problem:{code}"));
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    body
}

#[actix_web::test]
async fn issues_a_guest_token_with_ttl_from_expires_at_and_no_store() {
    let seen = Arc::new(Mutex::new(None));
    let mut mock = MockGenesysApi::new();
    let record = seen.clone();
    mock.expect_create_guest().times(1).returning(move |req| {
        *record.lock().unwrap() = Some(serde_json::to_value(req).unwrap());
        Ok(created(req, Duration::from_secs(3600)))
    });
    let harness = Harness::new();
    let res = harness
        .send(
            mock,
            seed_request().insert_header((REQUEST_ID_HEADER, "caller-id-1")),
        )
        .await;

    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(header_str(&res, header::CACHE_CONTROL), Some("no-store"));
    assert_eq!(header_str(&res, REQUEST_ID_HEADER), Some("caller-id-1"));
    assert_eq!(
        header_str(&res, header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some(ALLOWED_ORIGIN)
    );
    let body: Value = serde_json::from_slice(&test::read_body(res).await).unwrap();
    assert_eq!(body["guestToken"], "header.payload.signature");
    assert!(uuid::Uuid::try_parse(body["guestId"].as_str().unwrap()).is_ok());
    let expires_at = OffsetDateTime::parse(
        body["expiresAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let ttl = body["ttlSeconds"].as_i64().unwrap();
    let left = (expires_at - OffsetDateTime::now_utc()).whole_seconds();
    assert!(
        (left - 2..=left + 1).contains(&ttl),
        "ttl {ttl} vs {left} seconds left"
    );
    assert_eq!(
        seen.lock().unwrap().take().unwrap(),
        json!({
            "routing": {"queueId": QUEUE, "language": "en-us"},
            "attributes": {"sourceSystem": "embedded-widget", "customerId": "cust_99887766"}
        })
    );
    assert!(harness.metrics.encode().contains("guest_tokens_issued_total 1"));
}

#[actix_web::test]
async fn fills_in_the_default_language_and_anonymous_customer() {
    let seen = Arc::new(Mutex::new(None));
    let record = seen.clone();
    let mut mock = MockGenesysApi::new();
    mock.expect_create_guest().times(1).returning(move |req| {
        *record.lock().unwrap() = Some(serde_json::to_value(req).unwrap());
        Ok(created(req, Duration::from_secs(60)))
    });
    let mut harness = Harness::new();
    harness.policy.default_language = "fr-fr".parse().unwrap();
    harness.policy.source_system = "kiosk".to_owned();
    let res = harness.send(mock, post_json(&json!({"queueId": QUEUE}))).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(
        seen.lock().unwrap().take().unwrap(),
        json!({
            "routing": {"queueId": QUEUE, "language": "fr-fr"},
            "attributes": {"sourceSystem": "kiosk", "customerId": "anonymous"}
        })
    );
}

#[actix_web::test]
async fn rejects_invalid_bodies_naming_the_field_without_calling_genesys() {
    let cases: [(&str, &str); 6] = [
        ("{not json", "body"),
        ("[]", "body"),
        ("{}", "queueId"),
        (r#"{"queueId": "not-a-uuid"}"#, "queueId"),
        (
            r#"{"queueId": "a1b2c3d4-e5f6-7890-abcd-ef1234567890", "language": "en_US!"}"#,
            "language",
        ),
        (
            r#"{"queueId": "a1b2c3d4-e5f6-7890-abcd-ef1234567890", "customerId": ""}"#,
            "customerId",
        ),
    ];
    for (body, field) in cases {
        let req = TestRequest::post()
            .uri(GUEST_TOKEN_PATH)
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload(body);
        let res = Harness::new().send(untouched(), req).await;
        let problem = problem(res, 400, "invalid_request").await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{field}:")),
            "{body} -> {problem}"
        );
    }
}

#[actix_web::test]
async fn refuses_a_disallowed_origin_before_calling_genesys() {
    let req = seed_request().insert_header((header::ORIGIN, "https://evil.example"));
    let res = Harness::new().send(untouched(), req).await;
    assert!(res.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    problem(res, 403, "origin_not_allowed").await;
}

#[actix_web::test]
async fn serves_requests_without_origin_unless_an_origin_is_required() {
    let mut mock = MockGenesysApi::new();
    mock.expect_create_guest()
        .times(1)
        .returning(|req| Ok(created(req, Duration::from_secs(60))));
    let res = Harness::new()
        .send(mock, post_json(&json!({"queueId": QUEUE})))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);

    let mut strict = Harness::new();
    strict.policy.require_origin = true;
    let res = strict
        .send(untouched(), post_json(&json!({"queueId": QUEUE})))
        .await;
    let body = problem(res, 403, "origin_not_allowed").await;
    assert!(body["detail"].as_str().unwrap().contains("Origin"));
}

#[actix_web::test]
async fn refuses_a_queue_outside_the_allow_list() {
    let mut harness = Harness::new();
    let other: QueueId = "0f8e2c7a-3b1d-4c5e-9a6f-112233445566".parse().unwrap();
    harness.policy.allowed_queues = Some(HashSet::from([other]));
    let res = harness.send(untouched(), seed_request()).await;
    problem(res, 403, "queue_not_allowed").await;
}

#[actix_web::test]
async fn refuses_a_body_over_the_limit() {
    let mut harness = Harness::new();
    harness.policy.body_limit_bytes = 128;
    let big = json!({"queueId": QUEUE, "customerId": "x".repeat(200)});
    let res = harness.send(untouched(), post_json(&big)).await;
    let body = problem(res, 413, "payload_too_large").await;
    assert!(body["detail"].as_str().unwrap().contains("128"));
}

#[actix_web::test]
async fn refuses_a_body_that_is_not_declared_json() {
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/problem+json"),
        Some("application/jsonp"),
    ] {
        let mut req = TestRequest::post()
            .uri(GUEST_TOKEN_PATH)
            .set_payload(json!({"queueId": QUEUE}).to_string());
        if let Some(ct) = content_type {
            req = req.insert_header((header::CONTENT_TYPE, ct));
        }
        problem(
            Harness::new().send(untouched(), req).await,
            415,
            "unsupported_media_type",
        )
        .await;
    }
}

#[actix_web::test]
async fn accepts_json_with_a_charset() {
    let mut mock = MockGenesysApi::new();
    mock.expect_create_guest()
        .times(1)
        .returning(|req| Ok(created(req, Duration::from_secs(60))));
    let req = TestRequest::post()
        .uri(GUEST_TOKEN_PATH)
        .insert_header((header::CONTENT_TYPE, "Application/JSON; charset=utf-8"))
        .set_payload(json!({"queueId": QUEUE}).to_string());
    assert_eq!(Harness::new().send(mock, req).await.status(), StatusCode::CREATED);
}

#[actix_web::test]
async fn maps_an_unknown_queue_to_422() {
    let mock = failing_with(GenesysError::UnknownQueue {
        queue_id: QUEUE.parse().unwrap(),
        correlation_id: Some("corr-1".into()),
    });
    let body = problem(
        Harness::new().send(mock, seed_request()).await,
        422,
        "unknown_queue",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains(QUEUE));
}

#[actix_web::test]
async fn limits_each_client_ip_with_retry_after() {
    let mut harness = Harness::new();
    // One request a minute, so the bucket never refills while the test runs.
    harness.rate_limit = Some((1.0 / 60.0, 2, vec![]));
    let mut mock = MockGenesysApi::new();
    mock.expect_create_guest()
        .times(3)
        .returning(|req| Ok(created(req, Duration::from_secs(60))));
    let peer = |ip: &str| seed_request().peer_addr(format!("{ip}:5000").parse().unwrap());
    let mut responses = harness
        .send_all(
            mock,
            vec![
                peer("192.0.2.1"),
                peer("192.0.2.1"),
                peer("192.0.2.1"),
                peer("192.0.2.2"),
            ],
        )
        .await;
    assert_eq!(responses[0].status(), StatusCode::CREATED);
    assert_eq!(responses[1].status(), StatusCode::CREATED);
    assert_eq!(
        responses[3].status(),
        StatusCode::CREATED,
        "another IP has its own bucket"
    );
    let limited = responses.remove(2);
    let retry_after: u64 = header_str(&limited, header::RETRY_AFTER)
        .unwrap()
        .parse()
        .unwrap();
    assert!((50..=60).contains(&retry_after), "Retry-After {retry_after}");
    problem(limited, 429, "rate_limited").await;
    assert!(harness.metrics.encode().contains("rate_limited_requests_total 1"));
}

#[actix_web::test]
async fn keys_the_limit_on_the_last_forwarded_for_line_a_trusted_proxy_appended() {
    let mut harness = Harness::new();
    harness.rate_limit = Some((1.0 / 60.0, 1, vec!["10.0.0.0/8".parse().unwrap()]));
    let mut mock = MockGenesysApi::new();
    mock.expect_create_guest()
        .times(1)
        .returning(|req| Ok(created(req, Duration::from_secs(60))));
    // The caller forges a first line each time; the proxy appends the address it saw as its own.
    let via_proxy = |forged: &str| {
        seed_request()
            .peer_addr("10.0.0.1:5000".parse().unwrap())
            .append_header(("x-forwarded-for", forged))
            .append_header(("x-forwarded-for", "198.51.100.7"))
    };
    let mut responses = harness
        .send_all(mock, vec![via_proxy("192.0.2.50"), via_proxy("192.0.2.51")])
        .await;
    assert_eq!(responses[0].status(), StatusCode::CREATED);
    problem(responses.remove(1), 429, "rate_limited").await;
}

#[actix_web::test]
async fn maps_genesys_rate_limit_beyond_the_budget_to_429_with_retry_after() {
    let mock = failing_with(GenesysError::RateLimited {
        retry_after: Duration::from_millis(120_400),
        correlation_id: None,
    });
    let res = Harness::new().send(mock, seed_request()).await;
    assert_eq!(header_str(&res, header::RETRY_AFTER), Some("121"));
    problem(res, 429, "rate_limited").await;
}

#[actix_web::test]
async fn maps_rejected_credentials_to_502_upstream_auth_failed() {
    let mock = failing_with(GenesysError::UpstreamAuth {
        status: 401,
        reason: "invalid_client".into(),
        correlation_id: None,
    });
    let body = problem(
        Harness::new().send(mock, seed_request()).await,
        502,
        "upstream_auth_failed",
    )
    .await;
    assert!(!body["detail"].as_str().unwrap().contains("invalid_client"));
}

#[actix_web::test]
async fn maps_upstream_failures_to_502_upstream_error() {
    for error in [
        GenesysError::Upstream {
            status: 503,
            correlation_id: Some("c".into()),
        },
        GenesysError::Transport {
            message: "connection reset".into(),
            correlation_id: Some("c".into()),
        },
        GenesysError::Decode {
            message: "expected value".into(),
            correlation_id: None,
        },
        GenesysError::InvalidRequest {
            details: vec!["routing.queueId: bad".into()],
            correlation_id: None,
        },
    ] {
        let res = Harness::new().send(failing_with(error), seed_request()).await;
        let body = problem(res, 502, "upstream_error").await;
        for leak in ["reset", "expected value", "routing", "503"] {
            assert!(!body["detail"].as_str().unwrap().contains(leak), "{body}");
        }
    }
}

#[actix_web::test]
async fn maps_an_exhausted_budget_to_504() {
    let mock = failing_with(GenesysError::Timeout { correlation_id: None });
    problem(
        Harness::new().send(mock, seed_request()).await,
        504,
        "upstream_timeout",
    )
    .await;
}

#[actix_web::test]
async fn answers_not_ready_before_the_first_token_and_keeps_serving_while_draining() {
    let mut starting = Harness::new();
    starting.logged_in = false;
    let res = starting.send(untouched(), seed_request()).await;
    assert_eq!(header_str(&res, header::RETRY_AFTER), Some("5"));
    problem(res, 503, "not_ready").await;

    let mut draining = Harness::new();
    draining.draining = true;
    let mut genesys = MockGenesysApi::new();
    genesys
        .expect_create_guest()
        .times(1)
        .returning(|request| Ok(created(request, Duration::from_secs(60))));
    let res = draining.send(genesys, seed_request()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(
        res.response().head().connection_type(),
        actix_web::http::ConnectionType::Close,
        "keep-alive clients are asked to move on"
    );
}

#[actix_web::test]
async fn unknown_paths_and_methods_get_problems_with_the_request_id() {
    let harness = Harness::new();
    let mut responses = harness
        .send_all(
            MockGenesysApi::new(),
            vec![
                TestRequest::get().uri("/nope"),
                TestRequest::get().uri(GUEST_TOKEN_PATH),
                TestRequest::post().uri("/livez"),
            ],
        )
        .await;
    problem(responses.remove(0), 404, "not_found").await;
    let wrong_method = responses.remove(0);
    assert_eq!(header_str(&wrong_method, header::ALLOW), Some("POST"));
    problem(wrong_method, 405, "method_not_allowed").await;
    let wrong_method = responses.remove(0);
    assert_eq!(header_str(&wrong_method, header::ALLOW), Some("GET"));
    problem(wrong_method, 405, "method_not_allowed").await;
}

#[actix_web::test]
async fn replaces_an_unusable_request_id() {
    let harness = Harness::new();
    let req = TestRequest::get()
        .uri("/livez")
        .insert_header((REQUEST_ID_HEADER, HeaderValue::from_static("bad id with spaces")));
    let res = harness.send(MockGenesysApi::new(), req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(uuid::Uuid::try_parse(header_str(&res, REQUEST_ID_HEADER).unwrap()).is_ok());
}

#[actix_web::test]
async fn answers_a_preflight_from_an_allowed_origin() {
    let req = TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri(GUEST_TOKEN_PATH)
        .insert_header((header::ORIGIN, ALLOWED_ORIGIN))
        .insert_header((header::ACCESS_CONTROL_REQUEST_METHOD, "POST"))
        .insert_header((
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "content-type, x-request-id",
        ));
    let res = Harness::new().send(untouched(), req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        header_str(&res, header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some(ALLOWED_ORIGIN)
    );
    assert_eq!(
        header_str(&res, header::ACCESS_CONTROL_ALLOW_METHODS),
        Some("POST")
    );
    assert_eq!(
        header_list(&res, header::ACCESS_CONTROL_ALLOW_HEADERS),
        ["authorization", "content-type", "x-request-id"]
    );
    assert_eq!(header_str(&res, header::ACCESS_CONTROL_MAX_AGE), Some("600"));
    assert!(header_str(&res, header::VARY).is_some_and(|v| v.contains("Origin")));
    assert!(res.headers().contains_key(REQUEST_ID_HEADER));
}

#[actix_web::test]
async fn answers_a_plain_options_request_with_405() {
    let req = TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri(GUEST_TOKEN_PATH);
    let res = Harness::new().send(untouched(), req).await;
    assert!(res.headers().get(header::ACCESS_CONTROL_ALLOW_METHODS).is_none());
    problem(res, 405, "method_not_allowed").await;
}

#[actix_web::test]
async fn refuses_a_preflight_from_another_origin_without_allow_origin() {
    let req = TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri(GUEST_TOKEN_PATH)
        .insert_header((header::ORIGIN, "https://evil.example"))
        .insert_header((header::ACCESS_CONTROL_REQUEST_METHOD, "POST"));
    let res = Harness::new().send(untouched(), req).await;
    assert!(res.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    problem(res, 403, "origin_not_allowed").await;
}

#[actix_web::test]
async fn exposes_request_id_and_retry_after_to_allowed_origins() {
    let mut harness = Harness::new();
    harness.logged_in = false;
    let res = harness.send(untouched(), seed_request()).await;
    assert_eq!(
        header_list(&res, header::ACCESS_CONTROL_EXPOSE_HEADERS),
        ["retry-after", "x-request-id"]
    );
    assert!(header_str(&res, header::VARY).is_some_and(|v| v.contains("Origin")));
    assert_eq!(
        header_str(&res, header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some(ALLOWED_ORIGIN)
    );
    problem(res, 503, "not_ready").await;
}

/// A client whose status shows `token` (and nothing may be sent).
fn reporting(token: TokenState) -> MockGenesysApi {
    let mut mock = untouched();
    mock.expect_status().return_const(UpstreamStatus {
        token,
        gate_open: true,
        ..UpstreamStatus::default()
    });
    mock
}

#[actix_web::test]
async fn readiness_reads_login_token_and_drain_without_calling_genesys() {
    let held = TokenState {
        held: true,
        age: Some(Duration::from_secs(7)),
        expires_in: Some(Duration::from_secs(86_000)),
        refresh_in: Some(Duration::from_secs(77_000)),
        last_request: Some((Duration::from_secs(7), "ok")),
        paused_for: None,
    };
    let res = Harness::new()
        .send(reporting(held), TestRequest::get().uri("/readyz"))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["status"], "ready");
    assert_eq!(body["token"]["ageSeconds"], 7);
    assert_eq!(body["token"]["lastRefresh"], "ok");

    // A token that lapsed while Genesys was unreachable is not fetched by the probe.
    let lapsed = TokenState {
        last_request: Some((Duration::from_secs(3), "transport")),
        paused_for: Some(Duration::from_secs(2)),
        ..TokenState::default()
    };
    let res = Harness::new()
        .send(reporting(lapsed), TestRequest::get().uri("/readyz"))
        .await;
    let body = problem(res, 503, "not_ready").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("failed (transport) 3 s ago"),
        "{body}"
    );

    let mut starting = Harness::new();
    starting.logged_in = false;
    problem(
        starting
            .send(untouched(), TestRequest::get().uri("/readyz"))
            .await,
        503,
        "not_ready",
    )
    .await;

    let mut stopping = Harness::new();
    stopping.draining = true;
    problem(
        stopping
            .send(untouched(), TestRequest::get().uri("/readyz"))
            .await,
        503,
        "not_ready",
    )
    .await;

    let res = stopping.send(untouched(), TestRequest::get().uri("/livez")).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "liveness never depends on readiness"
    );
}

#[actix_web::test]
async fn metrics_use_route_patterns_not_raw_paths() {
    let harness = Harness::new();
    harness
        .send_all(
            MockGenesysApi::new(),
            vec![
                TestRequest::get().uri("/livez"),
                TestRequest::get().uri("/random/path/123"),
            ],
        )
        .await;
    let res = harness
        .send(
            reporting(TokenState::default()),
            TestRequest::get().uri("/metrics"),
        )
        .await;
    assert!(
        header_str(&res, header::CONTENT_TYPE)
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(text.contains(r#"route="/livez",status="200""#), "{text}");
    assert!(text.contains(r#"route="unmatched",status="404""#), "{text}");
    assert!(!text.contains("/random/path/123"), "{text}");
}

#[actix_web::test]
async fn metrics_report_the_budget_the_gate_the_token_and_tracked_clients() {
    let mut harness = Harness::new();
    harness.rate_limit = Some((1.0, 5, Vec::new()));
    let mut genesys = MockGenesysApi::new();
    genesys
        .expect_create_guest()
        .times(1)
        .returning(|request| Ok(created(request, Duration::from_secs(60))));
    genesys.expect_status().return_const(UpstreamStatus {
        token: TokenState {
            held: true,
            ..TokenState::default()
        },
        budget_left: 4,
        window_remaining: Some(250),
        in_flight: 2,
        gate_open: false,
    });
    let mut responses = harness
        .send_all(genesys, vec![seed_request(), TestRequest::get().uri("/metrics")])
        .await;
    let res = responses.remove(1);
    let text = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    for line in [
        "genesys_budget_left 4",
        "genesys_window_remaining 250",
        "genesys_gate_open 0",
        "genesys_requests_in_flight 2",
        "genesys_token_held 1",
        "rate_limit_tracked_clients 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
}

#[actix_web::test]
async fn serves_the_openapi_document() {
    let res = Harness::new()
        .send(MockGenesysApi::new(), TestRequest::get().uri("/openapi.json"))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = test::read_body(res).await;
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert!(doc["paths"].get(GUEST_TOKEN_PATH).is_some());
}
