//! The logs never show the client secret, an access token or a guest token: the real binary at
//! trace level goes through success and every error path, and all it prints is searched.

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64_STANDARD;
use common::*;
use domain::api::GUEST_TOKEN_PATH;
use domain::genesys::GUESTS_PATH;
use mock_genesys::{ClientConfig, ConnectionFault, FaultSpec, MockSettings};
use serde_json::json;

#[actix_rt::test]
async fn no_secret_or_token_appears_in_any_log_line_at_trace_level() {
    let secret = format!("leak-check-secret-{}", uuid::Uuid::new_v4());
    let mock = emulator_with(MockSettings {
        clients: vec![ClientConfig::new(
            "leak-client",
            &secret,
            &[domain::genesys::GUEST_CREATE_SCOPE],
        )],
        ..MockSettings::default()
    });
    // The service talks to the emulator through a recorder, so the test learns its access tokens.
    let proxy = RecordingProxy::start(mock.port());
    let mut binary = Binary::start(&[
        ("APP_ENV", "test"),
        ("GENESYS_BASE_URL", &proxy.base_url),
        ("GENESYS_CLIENT_ID", "leak-client"),
        ("GENESYS_CLIENT_SECRET", &secret),
        ("APP__LOG__FORMAT", "json"),
        ("RUST_LOG", "trace"),
        ("APP__GENESYS__BUDGET_MS", "1500"),
        ("APP__GENESYS__ATTEMPT_TIMEOUT_MS", "400"),
        ("APP__RATE_LIMIT__PER_SECOND", "1"),
        ("APP__RATE_LIMIT__BURST", "40"),
    ]);
    let port = binary.wait_for_port();
    let address = format!("http://127.0.0.1:{port}");
    wait_until_ready(&address).await;
    let mut guest_tokens = Vec::new();

    // Success, twice, and once more after the access token is revoked (a refresh).
    for _ in 0..2 {
        let answer = post_guest_token(&address, &seed_body()).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        guest_tokens.push(answer.body["guestToken"].as_str().unwrap().to_owned());
    }
    mock.revoke_tokens();
    let answer = post_guest_token(&address, &seed_body()).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    guest_tokens.push(answer.body["guestToken"].as_str().unwrap().to_owned());

    // Every refusal of this service.
    post_guest_token(&address, &json!({"queueId": "x"}))
        .await
        .assert_problem(400, "invalid_request");
    post_guest_token(&address, &json!({"queueId": UNKNOWN_QUEUE}))
        .await
        .assert_problem(422, "unknown_queue");
    let foreign = http()
        .post(format!("{address}{GUEST_TOKEN_PATH}"))
        .insert_header(("content-type", "application/json"))
        .insert_header(("origin", "https://attacker.example"));
    send(foreign, Some(seed_body().to_string()))
        .await
        .assert_problem(403, "origin_not_allowed");
    let text = http().post(format!("{address}{GUEST_TOKEN_PATH}"));
    send(text, Some("queueId".to_owned()))
        .await
        .assert_problem(415, "unsupported_media_type");
    post_guest_token(
        &address,
        &json!({"queueId": SUPPORT_QUEUE, "customerId": "x".repeat(5000)}),
    )
    .await
    .assert_problem(413, "payload_too_large");
    get(&address, "/nope").await.assert_problem(404, "not_found");
    get(&address, GUEST_TOKEN_PATH)
        .await
        .assert_problem(405, "method_not_allowed");

    // Every upstream failure (each reset also revokes the access token: more refreshes to check).
    let guest_fault = |spec: FaultSpec| {
        mock.reset();
        mock.add_fault(FaultSpec {
            path: GUESTS_PATH.to_owned(),
            times: Some(0),
            ..spec
        });
    };
    for (fault, status, code) in [
        (
            FaultSpec {
                status: Some(500),
                ..FaultSpec::default()
            },
            502,
            "upstream_error",
        ),
        (
            FaultSpec {
                connection: Some(ConnectionFault::Reset),
                ..FaultSpec::default()
            },
            502,
            "upstream_error",
        ),
        (
            FaultSpec {
                connection: Some(ConnectionFault::Malformed),
                ..FaultSpec::default()
            },
            502,
            "upstream_error",
        ),
        (
            FaultSpec {
                delay_ms: Some(2000),
                ..FaultSpec::default()
            },
            504,
            "upstream_timeout",
        ),
        // Last: the client's shared backoff gate then holds every call for two minutes.
        (
            FaultSpec {
                status: Some(429),
                retry_after: Some("120".to_owned()),
                ..FaultSpec::default()
            },
            429,
            "rate_limited",
        ),
    ] {
        guest_fault(fault);
        post_guest_token(&address, &seed_body())
            .await
            .assert_problem(status, code);
    }
    mock.reset();

    // The per-client limit, until it trips.
    let mut limited = false;
    for _ in 0..60 {
        let answer = get_limited(&address).await;
        if answer.status == 429 {
            answer.assert_problem(429, "rate_limited");
            limited = true;
            break;
        }
    }
    assert!(limited, "the per-client limit trips");

    binary.terminate();
    assert_eq!(binary.wait_for_exit(Duration::from_secs(30)), Some(0));

    let access_tokens = proxy.access_tokens();
    assert!(
        access_tokens.len() >= 2,
        "a login and a refresh: {access_tokens:?}"
    );
    let output = binary.all_output();
    // The capture is real: it holds trace-level detail of the requests above.
    assert!(output.contains("request finished") && output.contains("upstream_attempts"));
    assert!(output.contains("\"level\":\"TRACE\"") || output.contains("\"level\":\"DEBUG\""));
    // It also holds the records dependencies write through the `log` crate (mio and actix-cors
    // log only that way), as JSON lines under their own target, inside the request's span.
    let lines: Vec<serde_json::Value> = output
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let from_target = |prefix: &str| {
        lines
            .iter()
            .filter(|line| line["target"].as_str().is_some_and(|t| t.starts_with(prefix)))
            .collect::<Vec<_>>()
    };
    assert!(!from_target("mio::").is_empty(), "no log-crate record of mio");
    assert!(
        from_target("actix_cors::")
            .iter()
            .any(|line| line["span"]["name"] == "request" && line["message"].is_string()),
        "no log-crate record of actix-cors inside a request span"
    );
    assert!(!output.contains(&secret), "the client secret leaked");
    // The secret travels only inside the token request's `Authorization: Basic` header.
    let basic = BASE64_STANDARD.encode(format!("leak-client:{secret}"));
    assert!(!output.contains(&basic), "the Basic credential leaked");
    for token in access_tokens.iter().chain(&guest_tokens) {
        assert!(token.len() >= 20, "a real token: {token:?}");
        assert!(!output.contains(token.as_str()), "a token leaked: {token:.8}...");
    }
}

/// A guest-token request that is refused before Genesys (an invalid body) but still counts
/// against the caller's limit.
async fn get_limited(address: &str) -> Answer {
    post_guest_token(address, &json!({})).await
}

#[actix_rt::test]
async fn successful_and_refused_requests_log_the_upstream_correlation_id() {
    let mock = emulator();
    let mut binary = Binary::start(&[
        ("APP_ENV", "test"),
        ("GENESYS_BASE_URL", &mock.base_url()),
        ("APP__LOG__FORMAT", "json"),
        ("RUST_LOG", "info"),
    ]);
    let address = format!("http://127.0.0.1:{}", binary.wait_for_port());
    wait_until_ready(&address).await;
    let answer = post_guest_token(&address, &seed_body()).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    post_guest_token(&address, &json!({"queueId": UNKNOWN_QUEUE}))
        .await
        .assert_problem(422, "unknown_queue");
    binary.terminate();
    assert_eq!(binary.wait_for_exit(Duration::from_secs(30)), Some(0));

    let finished: Vec<String> = binary
        .all_output()
        .lines()
        .filter(|line| serde_json::from_str::<serde_json::Value>(line).is_ok())
        .filter(|line| line.contains("request finished") && line.contains(GUEST_TOKEN_PATH))
        .map(str::to_owned)
        .collect();
    assert_eq!(finished.len(), 2, "two request lines: {finished:?}");
    for (line, status) in finished.iter().zip(["201", "422"]) {
        assert!(
            line.contains(&format!("\"status\":{status}")),
            "{status} in {line}"
        );
        let id = line
            .split("\"upstream_correlation_id\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no upstream_correlation_id in {line}"));
        assert!(uuid::Uuid::parse_str(id).is_ok(), "Genesys' id, a UUID: {id:?}");
    }
}
