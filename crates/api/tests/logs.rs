//! The logs never show a secret, a code or a token: the real binary at trace level goes through
//! success and every error path (the tutorial's route, then the identity bridge's), and all it
//! prints is searched.

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD as BASE64_STANDARD, URL_SAFE_NO_PAD};
use common::identity::*;
use common::*;
use domain::api::GUEST_TOKEN_PATH;
use domain::genesys::GUESTS_PATH;
use domain::webmessaging::OAUTH_EXCHANGE_PATH;
use mock_genesys::{ClientConfig, ConnectionFault, DEFAULT_DEPLOYMENT_ID, FaultSpec, MockSettings};
use serde_json::{Value, json};

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

/// The query of an authorization request for `challenge`.
fn authorize_query(challenge: &str) -> String {
    serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile email offline_access"),
        ("state", "leak-check"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ])
    .unwrap()
}

/// A token-endpoint form post, the client authenticating in the body.
async fn token_request(address: &str, form: &[(&str, &str)]) -> Answer {
    let request = http()
        .post(format!("{address}/oidc/token"))
        .insert_header(("content-type", "application/x-www-form-urlencoded"));
    send(request, Some(serde_urlencoded::to_string(form).unwrap())).await
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("a string: {value}"))
        .to_owned()
}

#[actix_rt::test]
async fn no_site_session_code_verifier_secret_or_token_of_the_identity_bridge_appears_in_any_log_line() {
    let mock = emulator();
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let client_secret = format!("leak-check-oidc-secret-{}", uuid::Uuid::new_v4());
    mock.put_deployment(deployment_for(
        &issuer,
        "Active",
        &[ALLOWED_ORIGIN],
        CLIENT_ID,
        &client_secret,
    ));
    let port_text = port.to_string();
    let websocket = format!("ws://127.0.0.1:{}/v1", mock.port());
    let mut binary = Binary::start(&[
        ("APP_ENV", "test"),
        ("GENESYS_BASE_URL", &mock.base_url()),
        ("PORT", &port_text),
        ("APP__OIDC__ISSUER", &issuer),
        ("APP__OIDC__CLIENT_SECRET", &client_secret),
        ("APP__GUEST__UPSTREAM", "web-messaging"),
        ("APP__WEB_MESSAGING__WEBSOCKET_URL", &websocket),
        ("APP__LOG__FORMAT", "json"),
        ("RUST_LOG", "trace"),
    ]);
    let address = format!("http://127.0.0.1:{}", binary.wait_for_port());
    wait_until_ready(&address).await;
    // Everything the run sees that must never be printed.
    let mut secrets: Vec<String> = Vec::new();
    let signed_in = session(json!({}));
    secrets.push(signed_in.clone());
    let post_as = |path: &'static str, session: String, body: Value| {
        let request = http()
            .post(format!("{address}{path}"))
            .insert_header(("content-type", "application/json"))
            .insert_header(("origin", ALLOWED_ORIGIN))
            .insert_header(("authorization", format!("Bearer {session}")));
        async move { send(request, Some(body.to_string())).await }
    };

    // The Messenger's path: a code, exchanged by Genesys at this provider, then exchanged again.
    let minted = post_as("/api/webmessaging/auth-code", signed_in.clone(), json!({})).await;
    assert_eq!(minted.status, 200, "{}", minted.body);
    secrets.extend([text(&minted.body["authCode"]), text(&minted.body["codeVerifier"])]);
    let oauth = json!({
        "code": minted.body["authCode"], "redirectUri": minted.body["redirectUri"],
        "nonce": minted.body["nonce"], "codeVerifier": minted.body["codeVerifier"],
    });
    let exchange = || {
        let request = http()
            .post(format!("{}{OAUTH_EXCHANGE_PATH}", mock.base_url()))
            .insert_header(("content-type", "application/json"))
            .insert_header(("origin", ALLOWED_ORIGIN));
        let body = json!({"deploymentId": DEFAULT_DEPLOYMENT_ID, "oauth": oauth}).to_string();
        async move { send(request, Some(body)).await }
    };
    let exchanged = exchange().await;
    assert_eq!(exchanged.status, 200, "{}", exchanged.body);
    secrets.extend([
        text(&exchanged.body["jwt"]),
        text(&exchanged.body["refreshToken"]),
    ]);
    assert!(exchange().await.status >= 400, "a code is redeemed once");

    // The custom widget's path: a guest token in web-messaging mode, and refused sessions.
    let guest = post_as(GUEST_TOKEN_PATH, signed_in.clone(), seed_body()).await;
    assert_eq!(guest.status, 201, "{}", guest.body);
    secrets.extend([text(&guest.body["guestToken"]), text(&guest.body["refreshToken"])]);
    let forged = session_with(json!({}), b"not-the-site-secret-but-long-enough-for-hs256");
    let expired = session(json!({"iat": unix_now() - 600, "exp": unix_now() - 300}));
    for refused in [forged, expired] {
        post_as(GUEST_TOKEN_PATH, refused.clone(), seed_body())
            .await
            .assert_problem(401, "site_session_invalid");
        secrets.push(refused);
    }

    // A relying party at the token endpoint: redemption, userinfo, refresh, a spent refresh token
    // (which revokes the sign-in, with a warning), a wrong secret.
    let minted = post_as("/api/webmessaging/auth-code", signed_in.clone(), json!({})).await;
    let (code, verifier) = (text(&minted.body["authCode"]), text(&minted.body["codeVerifier"]));
    secrets.extend([code.clone(), verifier.clone()]);
    let redirect_uri = text(&minted.body["redirectUri"]);
    let wrong = token_request(
        &address,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", &verifier),
            ("client_id", CLIENT_ID),
            ("client_secret", "leak-check-wrong-secret-0123456789"),
        ],
    )
    .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    secrets.push("leak-check-wrong-secret-0123456789".to_owned());
    let tokens = token_request(
        &address,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", &verifier),
            ("client_id", CLIENT_ID),
            ("client_secret", &client_secret),
        ],
    )
    .await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let first_refresh = text(&tokens.body["refresh_token"]);
    secrets.extend([
        text(&tokens.body["access_token"]),
        text(&tokens.body["id_token"]),
        first_refresh.clone(),
    ]);
    let userinfo = http().get(format!("{address}/oidc/userinfo")).insert_header((
        "authorization",
        format!("Bearer {}", text(&tokens.body["access_token"])),
    ));
    assert_eq!(send(userinfo, None).await.status, 200);
    let refresh = |token: String| {
        let address = address.clone();
        let secret = client_secret.clone();
        async move {
            token_request(
                &address,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                    ("client_id", CLIENT_ID),
                    ("client_secret", &secret),
                ],
            )
            .await
        }
    };
    let refreshed = refresh(first_refresh.clone()).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    secrets.extend([
        text(&refreshed.body["access_token"]),
        text(&refreshed.body["refresh_token"]),
    ]);
    assert_eq!(refresh(first_refresh).await.status, 400, "a spent refresh token");

    // The redirect flow: the code travels in the Location header.
    let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        b"leak-check-code-verifier-of-forty-three-characters-or-more",
    ));
    let authorize = http()
        .get(format!(
            "{address}/oidc/authorize?{}",
            authorize_query(&challenge)
        ))
        .insert_header(("authorization", format!("Bearer {signed_in}")));
    let redirected = send(authorize, None).await;
    assert_eq!(redirected.status, 302);
    let location = redirected.header("location").unwrap();
    let code = location
        .split("code=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .unwrap_or_else(|| panic!("a code in {location}"));
    secrets.push(code.to_owned());

    binary.terminate();
    assert_eq!(binary.wait_for_exit(Duration::from_secs(30)), Some(0));
    let output = binary.all_output();
    // The capture is real: trace-level lines of the bridge's own events are in it.
    assert!(output.contains("\"level\":\"TRACE\"") || output.contains("\"level\":\"DEBUG\""));
    assert!(
        output.contains("token request refused"),
        "the refused grants are logged"
    );
    assert!(
        output.contains("its sign-in is revoked"),
        "the replayed refresh token is logged"
    );
    assert!(output.contains("/oidc/token"), "Genesys' redemption is logged");

    assert!(
        !output.contains(&client_secret),
        "the provider's client secret leaked"
    );
    let basic = BASE64_STANDARD.encode(format!("{CLIENT_ID}:{client_secret}"));
    assert!(!output.contains(&basic), "the Basic credential leaked");
    let site_key = String::from_utf8(site_secret()).unwrap();
    assert!(!output.contains(&site_key), "the site-session key leaked");
    let signing_key = std::fs::read_to_string(config_dir().join("dev-keys/oidc-signing.pem")).unwrap();
    for line in signing_key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!output.contains(line), "the ID-token signing key leaked");
    }
    for secret in &secrets {
        assert!(secret.len() >= 20, "a real value: {secret:.8}...");
        assert!(!output.contains(secret.as_str()), "leaked: {secret:.12}...");
        // A JWT's signature alone is as good as the token for a replay check.
        if let Some(signature) = secret.rsplit('.').next().filter(|s| s.len() >= 20) {
            assert!(
                !output.contains(signature),
                "a JWT signature leaked: {secret:.12}..."
            );
        }
    }
}
