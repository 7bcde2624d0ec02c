//! The emulated Genesys routes, through real HTTP on a random port.

mod support;

use std::time::{Duration, Instant};

use domain::genesys::GuestTokenClaims;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mock_genesys::{ClientConfig, MockSettings};
use serde_json::{Value, json};
use support::*;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[actix_rt::test]
async fn issues_a_bearer_token_for_basic_credentials() {
    let h = Harness::start();
    let reply = h.token_reply("local-client", "local-secret").await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 86_400);
    assert!(body["access_token"].as_str().unwrap().len() >= 32);
    assert_ne!(
        h.token().await,
        body["access_token"].as_str().unwrap(),
        "every token is new"
    );
}

#[actix_rt::test]
async fn issues_a_token_for_credentials_in_form_fields() {
    let h = Harness::start();
    let request = h
        .client
        .post(h.url("/oauth/token"))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"));
    let form = b"grant_type=client_credentials&client_id=local-client&client_secret=local-secret";
    let reply = h.send(request, Some(form)).await;
    assert_eq!(reply.status, 200);
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(h.create_guest(&token).await.status, 200);
}

#[actix_rt::test]
async fn refuses_unknown_clients_and_wrong_secrets_with_invalid_client() {
    let h = Harness::start();
    for (id, secret) in [
        ("local-client", "not-the-secret-8f3a"),
        ("nobody", "local-secret"),
    ] {
        let reply = h.token_reply(id, secret).await;
        assert_eq!(reply.status, 401);
        assert_eq!(reply.json()["error"], "invalid_client");
        assert!(!String::from_utf8_lossy(&reply.body).contains(secret));
    }
    let request = h
        .client
        .post(h.url("/oauth/token"))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"));
    let reply = h.send(request, Some(b"grant_type=client_credentials")).await;
    assert_eq!(reply.status, 401, "no credentials at all");
    assert_eq!(reply.json()["error"], "invalid_client");
}

#[actix_rt::test]
async fn refuses_a_missing_or_other_grant_type_or_a_body_that_is_not_a_form() {
    let h = Harness::start();
    let cases: [(&str, &[u8]); 4] = [
        ("application/x-www-form-urlencoded", b""),
        ("application/x-www-form-urlencoded", b"grant_type=password"),
        ("application/json", br#"{"grant_type":"client_credentials"}"#),
        (
            "application/x-www-form-urlencoded",
            b"grant_type=client_credentials&grant_type=x",
        ),
    ];
    for (content_type, body) in cases {
        let request = h
            .client
            .post(h.url("/oauth/token"))
            .insert_header(("Authorization", basic("local-client", "local-secret")))
            .insert_header(("Content-Type", content_type));
        let reply = h.send(request, Some(body)).await;
        assert_eq!(reply.status, 400, "{}", String::from_utf8_lossy(body));
        let json = reply.json();
        assert_eq!(json["error"], "unsupported_grant_type");
        assert!(json["error_description"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

#[actix_rt::test]
async fn creates_a_guest_whose_token_verifies_against_the_jwks() {
    let h = Harness::start();
    let token = h.token().await;
    let before = OffsetDateTime::now_utc().unix_timestamp();
    let reply = h.create_guest(&token).await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let body = reply.json();
    assert_eq!(
        body["routing"],
        json!({"queueId": SUPPORT_QUEUE, "language": "en-us"})
    );
    let guest_id = uuid::Uuid::parse_str(body["guestId"].as_str().unwrap()).unwrap();
    assert_eq!(guest_id.get_version_num(), 4);

    let jwks: JwkSet = serde_json::from_value(h.get("/__admin/jwks.json").await.json()).unwrap();
    let guest_token = body["guestToken"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(guest_token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the token's kid is in the JWKS");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[MockSettings::default().issuer]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
    let claims = jsonwebtoken::decode::<GuestTokenClaims>(
        guest_token,
        &DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("the guest token verifies")
    .claims;
    assert_eq!(claims.sub, guest_id.to_string());
    assert_eq!(claims.token_type, "guest");
    assert_eq!(claims.queue_id, SUPPORT_QUEUE);
    assert!(claims.iat >= before && claims.iat <= OffsetDateTime::now_utc().unix_timestamp());
    assert_eq!(claims.exp, claims.iat + 3600);
    let expires_at = OffsetDateTime::parse(body["expiresAt"].as_str().unwrap(), &Rfc3339).unwrap();
    assert_eq!(expires_at.unix_timestamp(), claims.exp);
    assert_eq!(expires_at.offset(), time::UtcOffset::UTC);
}

#[actix_rt::test]
async fn a_tampered_guest_token_does_not_verify() {
    let h = Harness::start();
    let token = h.token().await;
    let guest_token = h.create_guest(&token).await.json()["guestToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwks: JwkSet = serde_json::from_value(h.get("/__admin/jwks.json").await.json()).unwrap();
    let key = DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let (head, rest) = guest_token.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let forged_claims = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        br#"{"sub":"x","type":"guest","queueId":"q","iat":1,"exp":9999999999,"iss":"https://login.mock-genesys.local"}"#,
    );
    let forged = format!("{head}.{forged_claims}.{signature}");
    let validation = Validation::new(Algorithm::EdDSA);
    assert!(jsonwebtoken::decode::<GuestTokenClaims>(&forged, &key, &validation).is_err());
}

#[actix_rt::test]
async fn echoes_the_language_and_accepts_the_other_queue() {
    let h = Harness::start();
    let token = h.token().await;
    let body = json!({"routing": {"queueId": SALES_QUEUE, "language": "fr-ca", "wrapUpCode": "w"}});
    let reply = h.post_bearer(GUESTS, &token, &body).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json()["routing"],
        json!({"queueId": SALES_QUEUE, "language": "fr-ca"})
    );
}

#[actix_rt::test]
async fn refuses_a_missing_unknown_or_malformed_bearer_with_bad_credentials() {
    let h = Harness::start();
    let reply = h.post_json(GUESTS, &guest_body()).await;
    assert_genesys_error(&reply, 401, "bad.credentials");
    let reply = h.post_bearer(GUESTS, "not-a-token", &guest_body()).await;
    assert_genesys_error(&reply, 401, "bad.credentials");
    let token = h.token().await;
    let request = h
        .client
        .post(h.url(GUESTS))
        .insert_header(("Authorization", format!("Basic {token}")));
    let reply = h.send(request, Some(guest_body().to_string().as_bytes())).await;
    assert_genesys_error(&reply, 401, "bad.credentials");
    let reply = h
        .get_bearer(&format!("/api/v2/routing/queues/{SUPPORT_QUEUE}"), "nope")
        .await;
    assert_genesys_error(&reply, 401, "bad.credentials");
}

#[actix_rt::test]
async fn refuses_a_client_without_the_guest_scope_with_missing_permissions() {
    let h = Harness::start();
    let token = h.token_of("no-scope-client", "no-scope-secret").await;
    let reply = h.create_guest(&token).await;
    let body = assert_genesys_error(&reply, 403, "missing.permissions");
    assert!(body["message"].as_str().unwrap().contains("webchat:guest:create"));
}

#[actix_rt::test]
async fn names_every_offending_field_in_details() {
    let h = Harness::start();
    let token = h.token().await;
    let cases = [
        (json!({}), vec!["routing"]),
        (json!({"routing": {}}), vec!["routing.queueId"]),
        (
            json!({"routing": {"queueId": "not-a-uuid"}}),
            vec!["routing.queueId"],
        ),
        (
            json!({"routing": {"queueId": SUPPORT_QUEUE, "language": 5}, "attributes": {"n": 1}}),
            vec!["routing.language", "attributes.n"],
        ),
        (
            json!({"routing": {"queueId": SUPPORT_QUEUE}, "attributes": {"k": "v".repeat(1025)}}),
            vec!["attributes.k"],
        ),
        (
            json!({"routing": {"queueId": SUPPORT_QUEUE}, "attributes": {"k".repeat(65): "v"}}),
            vec![format!("attributes.{}", "k".repeat(65)).leak() as &str],
        ),
    ];
    for (body, fields) in cases {
        let reply = h.post_bearer(GUESTS, &token, &body).await;
        let error = assert_genesys_error(&reply, 400, "bad.request");
        let named: Vec<&str> = error["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["fieldName"].as_str().unwrap())
            .collect();
        assert_eq!(named, fields, "{body}");
        assert!(
            error["details"][0]["errorMessage"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let too_many: serde_json::Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    let reply = h
        .post_bearer(
            GUESTS,
            &token,
            &json!({"routing": {"queueId": SUPPORT_QUEUE}, "attributes": too_many}),
        )
        .await;
    let error = assert_genesys_error(&reply, 400, "bad.request");
    assert_eq!(error["details"][0]["fieldName"], "attributes");

    let request = h
        .client
        .post(h.url(GUESTS))
        .insert_header(("Authorization", format!("Bearer {token}")));
    let reply = h.send(request, Some(b"{not json")).await;
    let error = assert_genesys_error(&reply, 400, "bad.request");
    assert_eq!(error["details"][0]["fieldName"], "body");
}

#[actix_rt::test]
async fn answers_not_found_for_a_queue_that_is_not_configured() {
    let h = Harness::start();
    let token = h.token().await;
    let unknown = "11111111-2222-4333-8444-555555555555";
    let reply = h
        .post_bearer(GUESTS, &token, &json!({"routing": {"queueId": unknown}}))
        .await;
    let body = assert_genesys_error(&reply, 404, "not.found");
    assert_eq!(body["message"], format!("Queue {unknown} not found"));
}

#[actix_rt::test]
async fn looks_up_configured_queues_and_refuses_others() {
    let h = Harness::start();
    let token = h.token().await;
    let reply = h
        .get_bearer(&format!("/api/v2/routing/queues/{SUPPORT_QUEUE}"), &token)
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({"id": SUPPORT_QUEUE, "name": "Support", "selfUri": format!("/api/v2/routing/queues/{SUPPORT_QUEUE}")})
    );
    let reply = h
        .get_bearer(&format!("/api/v2/routing/queues/{SALES_QUEUE}"), &token)
        .await;
    assert_eq!(reply.json()["name"], "Sales");
    for missing in ["11111111-2222-4333-8444-555555555555", "not-a-uuid"] {
        let reply = h
            .get_bearer(&format!("/api/v2/routing/queues/{missing}"), &token)
            .await;
        let body = assert_genesys_error(&reply, 404, "not.found");
        assert_eq!(body["message"], format!("Queue {missing} not found"));
    }
}

#[actix_rt::test]
async fn unknown_routes_answer_not_found_in_the_genesys_shape() {
    let h = Harness::start();
    for path in ["/api/v2/nothing", "/", "/oauth/token/extra"] {
        assert_genesys_error(&h.get(path).await, 404, "not.found");
    }
    assert_genesys_error(&h.get("/oauth/token").await, 404, "not.found");
    assert_genesys_error(&h.get("/__admin/nothing").await, 404, "not.found");
}

#[actix_rt::test]
async fn echoes_the_callers_correlation_id_or_creates_one_on_every_answer() {
    let h = Harness::start();
    let request = h
        .client
        .post(h.url(GUESTS))
        .insert_header(("inin-correlation-id", "caller-chosen-id-1"));
    let reply = h.send(request, Some(b"{}")).await;
    let body = assert_genesys_error(&reply, 401, "bad.credentials");
    assert_eq!(body["contextId"], "caller-chosen-id-1");

    let first = h.token_reply("local-client", "local-secret").await;
    let second = h.token_reply("local-client", "local-secret").await;
    let ids: Vec<&str> = [&first, &second]
        .iter()
        .map(|r| r.header("inin-correlation-id").unwrap())
        .collect();
    assert_ne!(ids[0], ids[1]);
    for id in &ids {
        uuid::Uuid::parse_str(id).expect("a new correlation id is a UUID");
    }
    let request = h
        .client
        .get(h.url("/__admin/health"))
        .insert_header(("inin-correlation-id", "admin-call"));
    assert_eq!(
        h.send(request, None).await.header("inin-correlation-id"),
        Some("admin-call")
    );
}

#[actix_rt::test]
async fn api_routes_carry_rate_limit_headers_and_oauth_does_not() {
    let h = Harness::start();
    let token_reply = h.token_reply("local-client", "local-secret").await;
    assert!(token_reply.header("inin-ratelimit-allowed").is_none());
    let token = token_reply.json()["access_token"].as_str().unwrap().to_owned();
    for expected_count in 1..=3 {
        let reply = h.create_guest(&token).await;
        assert_eq!(reply.header("inin-ratelimit-allowed"), Some("300"));
        assert_eq!(
            reply.header("inin-ratelimit-count"),
            Some(expected_count.to_string().as_str())
        );
        let reset: u64 = reply.header("inin-ratelimit-reset").unwrap().parse().unwrap();
        assert!((1..=60).contains(&reset), "{reset}");
    }
    let reply = h
        .get_bearer(&format!("/api/v2/routing/queues/{SUPPORT_QUEUE}"), &token)
        .await;
    assert_eq!(
        reply.header("inin-ratelimit-count"),
        Some("4"),
        "queue lookups count too"
    );
    assert!(
        h.get("/__admin/health")
            .await
            .header("inin-ratelimit-allowed")
            .is_none()
    );
}

#[actix_rt::test]
async fn limits_each_client_per_window_and_admits_again_after_the_reset() {
    let h = Harness::start();
    let patch = h
        .patch_json(
            "/__admin/settings",
            // Wide enough that the four requests below surely share one window on a busy machine.
            &json!({"rateLimit": {"requests": 3, "windowSeconds": 5}}),
        )
        .await;
    assert_eq!(patch.status, 200);
    let token = h.token().await;
    let other = h.token_of("no-scope-client", "no-scope-secret").await;
    for _ in 0..3 {
        assert_eq!(h.create_guest(&token).await.status, 200);
    }
    let limited = h.create_guest(&token).await;
    let body = assert_genesys_error(&limited, 429, "too.many.requests.retry.after");
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=5).contains(&retry_after), "{retry_after}");
    assert_eq!(
        body["message"],
        format!("Rate limit exceeded the maximum. Retry the request in [{retry_after}] seconds")
    );
    assert_eq!(limited.header("inin-ratelimit-allowed"), Some("3"));
    assert_eq!(limited.header("inin-ratelimit-count"), Some("3"));
    assert_eq!(
        h.create_guest(&other).await.status,
        403,
        "another client has its own window"
    );

    actix_rt::time::sleep(Duration::from_secs(retry_after) + Duration::from_millis(200)).await;
    let admitted = h.create_guest(&token).await;
    assert_eq!(
        admitted.status, 200,
        "waiting Retry-After seconds lands in a new window"
    );
    assert_eq!(admitted.header("inin-ratelimit-count"), Some("1"));
}

#[actix_rt::test]
async fn a_rate_limit_of_null_switches_limiting_off() {
    let h = Harness::start();
    let reply = h
        .patch_json(
            "/__admin/settings",
            &json!({"rateLimit": {"requests": 1, "windowSeconds": 60}}),
        )
        .await;
    assert_eq!(reply.status, 200);
    let token = h.token().await;
    assert_eq!(h.create_guest(&token).await.status, 200);
    assert_eq!(h.create_guest(&token).await.status, 429);
    let reply = h
        .patch_json("/__admin/settings", &json!({"rateLimit": null}))
        .await;
    assert_eq!(reply.json()["rateLimit"], Value::Null);
    for _ in 0..5 {
        let reply = h.create_guest(&token).await;
        assert_eq!(reply.status, 200);
        assert!(reply.header("inin-ratelimit-count").is_none());
    }
}

#[actix_rt::test]
async fn an_expired_access_token_gets_bad_credentials() {
    let h = Harness::start();
    // Two seconds leave the first use a wide margin on a busy machine.
    h.patch_json("/__admin/settings", &json!({"tokenTtlSeconds": 2}))
        .await;
    let reply = h.token_reply("local-client", "local-secret").await;
    assert_eq!(reply.json()["expires_in"], 2);
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(h.create_guest(&token).await.status, 200);
    actix_rt::time::sleep(Duration::from_millis(3000)).await;
    assert_genesys_error(&h.create_guest(&token).await, 401, "bad.credentials");
}

#[actix_rt::test]
async fn guest_tokens_use_the_configured_ttl() {
    let h = Harness::start();
    h.patch_json("/__admin/settings", &json!({"guestTokenTtlSeconds": 60}))
        .await;
    let token = h.token().await;
    let body = h.create_guest(&token).await.json();
    let expires_at = OffsetDateTime::parse(body["expiresAt"].as_str().unwrap(), &Rfc3339).unwrap();
    let left = expires_at - OffsetDateTime::now_utc();
    assert!(
        left <= time::Duration::seconds(60) && left > time::Duration::seconds(30),
        "{left}"
    );
}

#[actix_rt::test]
async fn latency_delays_every_genesys_route_but_not_the_admin_api() {
    let h = Harness::start();
    let reply = h
        .patch_json("/__admin/settings", &json!({"latencyMs": 400}))
        .await;
    assert_eq!(reply.json()["latencyMs"], 400);
    let started = Instant::now();
    let token = h.token().await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    let started = Instant::now();
    h.create_guest(&token).await;
    assert!(started.elapsed() >= Duration::from_millis(400));

    h.patch_json(
        "/__admin/settings",
        &json!({"latencyMs": {"min": 250, "max": 300}}),
    )
    .await;
    let started = Instant::now();
    h.create_guest(&token).await;
    assert!(started.elapsed() >= Duration::from_millis(250));

    // The longest latency outlasts the client's timeout, so only an undelayed answer can win.
    h.patch_json("/__admin/settings", &json!({"latencyMs": 60_000}))
        .await;
    let queue_path = format!("/api/v2/routing/queues/{SUPPORT_QUEUE}");
    let delayed = Box::pin(h.get_bearer(&queue_path, &token));
    let admin = Box::pin(h.get("/__admin/settings"));
    match futures_util::future::select(delayed, admin).await {
        futures_util::future::Either::Right((reply, _)) => assert_eq!(reply.json()["latencyMs"], 60_000),
        futures_util::future::Either::Left((reply, _)) => {
            panic!("the Genesys route answered first: {reply:?}")
        }
    }
}

#[actix_rt::test]
async fn start_up_clients_and_queues_come_from_the_settings() {
    let settings = MockSettings {
        clients: vec![ClientConfig::new("svc", "pw", &["webchat:guest:create"])],
        queues: vec![mock_genesys::QueueConfig::new(SALES_QUEUE, "Only")],
        ..MockSettings::default()
    };
    let h = Harness::with(settings);
    assert_eq!(h.token_reply("local-client", "local-secret").await.status, 401);
    let token = h.token_of("svc", "pw").await;
    assert_genesys_error(&h.create_guest(&token).await, 404, "not.found");
    let reply = h
        .get_bearer(&format!("/api/v2/routing/queues/{SALES_QUEUE}"), &token)
        .await;
    assert_eq!(reply.json()["name"], "Only");
}

#[actix_rt::test]
async fn an_oversized_body_gets_a_genesys_413_with_the_correlation_id_and_is_journaled() {
    let h = Harness::start();
    let token = h.token().await;
    let request = h
        .client
        .post(h.url(GUESTS))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("inin-correlation-id", "too-big-1"));
    let reply = h.send(request, Some(&vec![b' '; (1 << 20) + 1])).await;
    let body = assert_genesys_error(&reply, 413, "bad.request");
    assert_eq!(body["contextId"], "too-big-1");
    let journal = h.journal(Some(GUESTS)).await;
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0]["status"], 413);
}

#[actix_rt::test]
async fn answers_the_framework_writes_carry_the_correlation_id_too() {
    let h = Harness::start();
    let request = h
        .client
        .put(h.url("/__admin/requests"))
        .insert_header(("inin-correlation-id", "wrong-method-1"));
    let reply = h.send(request, None).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("inin-correlation-id"), Some("wrong-method-1"));
}
