//! The `/__admin` API and fault injection, through real HTTP on a random port.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use mock_genesys::{FaultSpec, MockSettings, SettingsPatch};
use serde_json::{Value, json};
use support::*;

#[actix_rt::test]
async fn health_answers_ok() {
    let h = Harness::start();
    let reply = h.get("/__admin/health").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), json!({"status": "ok"}));
}

#[actix_rt::test]
async fn the_issue_example_fault_answers_429_twice_then_normally() {
    let h = Harness::start();
    let token = h.token().await;
    h.add_fault(
        json!({"path": "/api/v2/webchat/instances/guests", "status": 429, "retryAfter": "2", "times": 2}),
    )
    .await;
    for _ in 0..2 {
        let reply = h.create_guest(&token).await;
        assert_eq!(reply.status, 429);
        assert_eq!(reply.header("retry-after"), Some("2"));
        assert_genesys_error(&reply, 429, "too.many.requests.retry.after");
        assert_eq!(
            reply.json()["message"],
            "Rate limit exceeded the maximum. Retry the request in [2] seconds"
        );
    }
    let reply = h.create_guest(&token).await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert!(reply.json()["guestToken"].is_string());
}

#[actix_rt::test]
async fn a_status_fault_answers_a_genesys_error_body_and_is_journaled() {
    let h = Harness::start();
    let token = h.token().await;
    h.add_fault(json!({"path": GUESTS, "status": 503})).await;
    let reply = h.create_guest(&token).await;
    assert_genesys_error(&reply, 503, "service.unavailable");
    assert!(reply.header("retry-after").is_none());
    let journal = h.journal(Some(GUESTS)).await;
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0]["status"], 503);
    assert_eq!(h.create_guest(&token).await.status, 200, "times defaults to 1");
}

#[actix_rt::test]
async fn a_fault_can_answer_a_custom_body() {
    let h = Harness::start();
    let custom = json!({"anything": ["the", "test", "wants"]});
    h.add_fault(json!({"path": "/oauth/token", "status": 500, "body": custom}))
        .await;
    let reply = h.token_reply("local-client", "local-secret").await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json(), custom);
}

#[actix_rt::test]
async fn a_fault_delays_its_answer_by_delay_ms() {
    let h = Harness::start();
    let token = h.token().await;
    h.add_fault(json!({"path": GUESTS, "status": 502, "delayMs": 500}))
        .await;
    let started = Instant::now();
    let reply = h.create_guest(&token).await;
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_genesys_error(&reply, 502, "internal.server.error");
}

#[actix_rt::test]
async fn a_delay_only_fault_delays_the_normal_answer() {
    let h = Harness::start();
    let token = h.token().await;
    h.add_fault(json!({"path": GUESTS, "delayMs": 500})).await;
    let started = Instant::now();
    let reply = h.create_guest(&token).await;
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(reply.status, 200);
    assert!(reply.json()["guestId"].is_string());
}

#[actix_rt::test]
async fn a_delayed_request_does_not_hold_up_other_requests() {
    let h = Harness::start();
    let token = h.token().await;
    // Longer than the client's timeout: the delayed answer cannot arrive while the test runs.
    h.add_fault(json!({"path": GUESTS, "delayMs": 300_000})).await;
    let delayed = Box::pin(h.create_guest(&token));
    let other = Box::pin(async {
        let reply = h
            .get_bearer(&format!("/api/v2/routing/queues/{SUPPORT_QUEUE}"), &token)
            .await;
        (reply.status, h.get("/__admin/health").await.status)
    });
    match futures_util::future::select(delayed, other).await {
        futures_util::future::Either::Right(((queue, health), _)) => {
            assert_eq!((queue.as_u16(), health.as_u16()), (200, 200));
        }
        futures_util::future::Either::Left((reply, _)) => {
            panic!("the delayed request answered first: {reply:?}")
        }
    }
}

#[actix_rt::test]
async fn concurrent_requests_consume_a_counted_fault_exactly_times_times() {
    let h = Harness::start();
    let token = h.token().await;
    // The delay keeps every request in flight at once, so the uses are counted on arrival.
    h.add_fault(json!({"path": GUESTS, "status": 500, "times": 5, "delayMs": 200}))
        .await;
    let replies = futures_util::future::join_all((0..20).map(|_| h.create_guest(&token))).await;
    let faulted = replies.iter().filter(|r| r.status == 500).count();
    let normal = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!((faulted, normal), (5, 15));
    assert_eq!(h.get("/__admin/faults").await.json(), json!({"faults": []}));
    let journal = h.journal(Some(GUESTS)).await;
    assert_eq!(journal.iter().filter(|e| e["status"] == 500).count(), 5);
}

#[actix_rt::test]
async fn a_reset_fault_drops_the_connection_without_any_response() {
    let h = Harness::start();
    h.add_fault(json!({"path": GUESTS, "connection": "reset", "times": 2}))
        .await;

    let mut stream = TcpStream::connect(("127.0.0.1", h.server.port())).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        stream,
        "POST {GUESTS} HTTP/1.1\r\nHost: mock\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
    )
    .unwrap();
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    assert!(
        !String::from_utf8_lossy(&received).contains("HTTP/"),
        "no status line: {}",
        String::from_utf8_lossy(&received)
    );

    let token = h.token().await;
    let sent = h
        .client
        .post(h.url(GUESTS))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send_json(&guest_body())
        .await;
    assert!(
        sent.is_err(),
        "an HTTP client sees a failed request, not an answer"
    );
    let journal = h.journal(Some(GUESTS)).await;
    assert_eq!(journal.len(), 2);
    assert!(journal.iter().all(|e| e["status"] == 0));
    assert_eq!(h.create_guest(&token).await.status, 200);
}

#[actix_rt::test]
async fn a_malformed_fault_answers_200_json_that_does_not_parse() {
    let h = Harness::start();
    let token = h.token().await;
    h.add_fault(json!({"path": GUESTS, "connection": "malformed"}))
        .await;
    let reply = h.create_guest(&token).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert!(!reply.body.is_empty());
    assert!(serde_json::from_slice::<Value>(&reply.body).is_err());
}

#[actix_rt::test]
async fn times_zero_lasts_until_the_fault_is_deleted() {
    let h = Harness::start();
    let token = h.token().await;
    let id = h
        .add_fault(json!({"path": GUESTS, "status": 500, "times": 0}))
        .await;
    for _ in 0..5 {
        assert_eq!(h.create_guest(&token).await.status, 500);
    }
    let listed = h.get("/__admin/faults").await.json();
    assert_eq!(listed["faults"][0]["id"], id.as_str());
    assert_eq!(listed["faults"][0]["remaining"], Value::Null);
    assert_eq!(h.delete(&format!("/__admin/faults/{id}")).await.status, 204);
    assert_eq!(h.create_guest(&token).await.status, 200);
    assert_genesys_error(
        &h.delete(&format!("/__admin/faults/{id}")).await,
        404,
        "not.found",
    );
}

#[actix_rt::test]
async fn faults_count_down_and_list_what_remains() {
    let h = Harness::start();
    let token = h.token().await;
    h.add_fault(json!({"path": GUESTS, "status": 500, "times": 3}))
        .await;
    assert_eq!(h.create_guest(&token).await.status, 500);
    let listed = h.get("/__admin/faults").await.json();
    assert_eq!(listed["faults"][0]["remaining"], 2);
    assert_eq!(listed["faults"][0]["path"], GUESTS);
    assert_eq!(h.create_guest(&token).await.status, 500);
    assert_eq!(h.create_guest(&token).await.status, 500);
    assert_eq!(h.create_guest(&token).await.status, 200);
    assert_eq!(h.get("/__admin/faults").await.json(), json!({"faults": []}));
}

#[actix_rt::test]
async fn a_method_filter_leaves_other_methods_alone() {
    let h = Harness::start();
    let token = h.token().await;
    let queue_path = format!("/api/v2/routing/queues/{SUPPORT_QUEUE}");
    h.add_fault(json!({"path": queue_path, "method": "post", "status": 500}))
        .await;
    assert_eq!(h.get_bearer(&queue_path, &token).await.status, 200);
    let reply = h.post_bearer(&queue_path, &token, &json!({})).await;
    assert_eq!(reply.status, 500, "matches the method in any case");
}

#[actix_rt::test]
async fn a_star_fault_matches_every_genesys_path_but_not_the_admin_api() {
    let h = Harness::start();
    h.add_fault(json!({"path": "*", "status": 503, "times": 0})).await;
    assert_eq!(h.token_reply("local-client", "local-secret").await.status, 503);
    assert_eq!(h.post_json(GUESTS, &guest_body()).await.status, 503);
    assert_eq!(h.get("/api/v2/anything").await.status, 503);
    assert_eq!(h.get("/__admin/health").await.status, 200);
    assert_eq!(h.delete("/__admin/faults").await.status, 204);
    assert_eq!(h.token_reply("local-client", "local-secret").await.status, 200);
}

#[actix_rt::test]
async fn a_retry_after_alone_answers_503_with_the_header() {
    let h = Harness::start();
    h.add_fault(json!({"path": "/oauth/token", "retryAfter": 7}))
        .await;
    let reply = h.token_reply("local-client", "local-secret").await;
    assert_genesys_error(&reply, 503, "service.unavailable");
    assert_eq!(reply.header("retry-after"), Some("7"));
}

#[actix_rt::test]
async fn refuses_bad_fault_bodies_with_a_clear_message() {
    let h = Harness::start();
    let cases = [
        (json!({"status": 500}), "path"),
        (json!({"path": "/a", "stauts": 500}), "stauts"),
        (json!({"path": "relative"}), "path"),
        (json!({"path": "/__admin/health", "status": 500}), "/__admin"),
        (json!({"path": "/a", "connection": "hang"}), "hang"),
        (
            json!({"path": "/a", "connection": "reset", "status": 500}),
            "connection",
        ),
        (json!({"path": "/a", "status": 42}), "status"),
        (json!({"path": "/a", "times": -1}), "-1"),
    ];
    for (body, mentioned) in cases {
        let reply = h.post_json("/__admin/faults", &body).await;
        let error = assert_genesys_error(&reply, 400, "bad.request");
        assert!(
            error["message"].as_str().unwrap().contains(mentioned),
            "{body}: {error}"
        );
    }
    let request = h.client.post(h.url("/__admin/faults"));
    let reply = h.send(request, Some(b"not json")).await;
    assert_genesys_error(&reply, 400, "bad.request");
    assert_eq!(h.get("/__admin/faults").await.json(), json!({"faults": []}));
}

#[actix_rt::test]
async fn revoking_tokens_makes_every_issued_token_fail() {
    let h = Harness::start();
    let first = h.token().await;
    let second = h.token_of("no-scope-client", "no-scope-secret").await;
    assert_eq!(
        h.post_json("/__admin/tokens/revoke", &json!({})).await.status,
        204
    );
    assert_genesys_error(&h.create_guest(&first).await, 401, "bad.credentials");
    assert_genesys_error(&h.create_guest(&second).await, 401, "bad.credentials");
    let fresh = h.token().await;
    assert_eq!(
        h.create_guest(&fresh).await.status,
        200,
        "tokens issued afterwards work"
    );
}

#[actix_rt::test]
async fn the_journal_records_requests_oldest_first_with_credentials_redacted() {
    let h = Harness::start();
    let token = h.token().await;
    let request = h
        .client
        .post(h.url("/oauth/token"))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"));
    let form = b"grant_type=client_credentials&client_id=local-client&client_secret=local-secret";
    assert_eq!(h.send(request, Some(form)).await.status, 200);
    let request = h
        .client
        .post(h.url(GUESTS))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("X-Trace", "t-1"));
    h.send(request, Some(guest_body().to_string().as_bytes())).await;
    h.get("/__admin/health").await;

    let all = h.journal(None).await;
    let raw = serde_json::to_string(&all).unwrap();
    assert!(!raw.contains("local-secret") && !raw.contains(&token), "{raw}");
    assert!(
        !raw.contains("bG9jYWwtY2xpZW50OmxvY2FsLXNlY3JldA"),
        "no Basic credentials"
    );
    assert_eq!(all.len(), 3, "admin calls are not journaled: {raw}");
    let paths: Vec<&str> = all.iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/oauth/token", "/oauth/token", GUESTS]);
    let ids: Vec<u64> = all.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(all[0]["headers"]["authorization"], "Basic [redacted]");
    assert_eq!(all[0]["body"], "grant_type=client_credentials");
    assert_eq!(
        all[1]["body"],
        "grant_type=client_credentials&client_id=local-client&client_secret=[redacted]"
    );
    let guest = &all[2];
    assert_eq!(guest["method"], "POST");
    assert_eq!(guest["status"], 200);
    assert_eq!(guest["headers"]["authorization"], "Bearer [redacted]");
    assert_eq!(guest["headers"]["x-trace"], "t-1");
    assert_eq!(
        serde_json::from_str::<Value>(guest["body"].as_str().unwrap()).unwrap(),
        guest_body()
    );
    time::OffsetDateTime::parse(
        guest["receivedAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();

    let tokens_only = h.journal(Some("/oauth/token")).await;
    assert_eq!(tokens_only.len(), 2);
    assert_eq!(h.delete("/__admin/requests").await.status, 204);
    assert!(h.journal(None).await.is_empty());
}

#[actix_rt::test]
async fn the_journal_keeps_only_the_newest_entries() {
    let h = Harness::with(MockSettings {
        journal_limit: 5,
        ..MockSettings::default()
    });
    for i in 0..8 {
        h.get(&format!("/api/v2/probe/{i}")).await;
    }
    let paths: Vec<String> = h
        .journal(None)
        .await
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        paths,
        (3..8).map(|i| format!("/api/v2/probe/{i}")).collect::<Vec<_>>()
    );
    assert_eq!(MockSettings::default().journal_limit, 10_000);
}

#[actix_rt::test]
async fn settings_can_be_read_and_patched_at_run_time() {
    let h = Harness::start();
    let initial = h.get("/__admin/settings").await.json();
    assert_eq!(
        initial,
        json!({"tokenTtlSeconds": 86400, "guestTokenTtlSeconds": 3600,
               "rateLimit": {"requests": 300, "windowSeconds": 60}, "latencyMs": 0,
               "messagingJwtTtlSeconds": 900, "refreshTokenTtlSeconds": 86400,
               "agentReply": "echo: {text}"})
    );
    let patched = h
        .patch_json(
            "/__admin/settings",
            &json!({"tokenTtlSeconds": 120, "latencyMs": {"min": 0, "max": 5},
                    "messagingJwtTtlSeconds": 60, "refreshTokenTtlSeconds": 600,
                    "agentReply": "Agent: you said {text}"}),
        )
        .await;
    assert_eq!(patched.status, 200);
    let expected = json!({"tokenTtlSeconds": 120, "guestTokenTtlSeconds": 3600,
                          "rateLimit": {"requests": 300, "windowSeconds": 60},
                          "latencyMs": {"min": 0, "max": 5},
                          "messagingJwtTtlSeconds": 60, "refreshTokenTtlSeconds": 600,
                          "agentReply": "Agent: you said {text}"});
    assert_eq!(patched.json(), expected);
    assert_eq!(h.get("/__admin/settings").await.json(), expected);
    assert_eq!(
        h.token_reply("local-client", "local-secret").await.json()["expires_in"],
        120
    );
}

#[actix_rt::test]
async fn refuses_bad_settings_and_keeps_the_old_ones() {
    let h = Harness::start();
    let before = h.get("/__admin/settings").await.json();
    for (body, mentioned) in [
        (json!({"tokenTtlSeconds": 0}), "tokenTtlSeconds"),
        (
            json!({"rateLimit": {"requests": 0, "windowSeconds": 1}}),
            "rateLimit.requests",
        ),
        (json!({"rateLimit": {"requests": 1}}), "windowSeconds"),
        (json!({"latencyMs": {"min": 5, "max": 1}}), "latencyMs"),
        (
            json!({"latencyMs": "fast"}),
            "latency must be a number of milliseconds",
        ),
        (json!({"tokenTTL": 5}), "tokenTTL"),
        (json!({"messagingJwtTtlSeconds": 0}), "messagingJwtTtlSeconds"),
        (json!({"refreshTokenTtlSeconds": 0}), "refreshTokenTtlSeconds"),
        (json!({"agentReply": "x".repeat(4097)}), "agentReply"),
    ] {
        let reply = h.patch_json("/__admin/settings", &body).await;
        let error = assert_genesys_error(&reply, 400, "bad.request");
        assert!(
            error["message"].as_str().unwrap().contains(mentioned),
            "{body}: {error}"
        );
    }
    assert_eq!(h.get("/__admin/settings").await.json(), before);
}

#[actix_rt::test]
async fn reset_clears_everything_and_restores_the_start_up_settings() {
    let h = Harness::start();
    let token = h.token().await;
    h.patch_json(
        "/__admin/settings",
        &json!({"rateLimit": {"requests": 1, "windowSeconds": 60}, "tokenTtlSeconds": 9}),
    )
    .await;
    let limited_token = h.token().await;
    h.create_guest(&limited_token).await;
    assert_eq!(h.create_guest(&limited_token).await.status, 429);
    h.add_fault(json!({"path": "/api/v2/other", "status": 500, "times": 0}))
        .await;

    assert_eq!(h.post_json("/__admin/reset", &json!({})).await.status, 204);

    assert!(h.journal(None).await.is_empty());
    assert_eq!(h.get("/__admin/faults").await.json(), json!({"faults": []}));
    assert_eq!(h.get("/__admin/settings").await.json()["tokenTtlSeconds"], 86400);
    assert_eq!(
        h.get("/__admin/settings").await.json()["rateLimit"]["requests"],
        300
    );
    assert_genesys_error(&h.create_guest(&token).await, 401, "bad.credentials");
    let fresh = h.token().await;
    let reply = h.create_guest(&fresh).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("inin-ratelimit-count"),
        Some("1"),
        "windows start over"
    );
}

#[actix_rt::test]
async fn the_typed_accessors_share_state_with_the_admin_api() {
    let h = Harness::start();
    let id = h.server.add_fault(FaultSpec {
        path: GUESTS.to_owned(),
        status: Some(500),
        times: Some(2),
        ..FaultSpec::default()
    });
    assert_eq!(
        h.get("/__admin/faults").await.json()["faults"][0]["id"],
        id.as_str()
    );
    h.server.update_settings(SettingsPatch {
        token_ttl_seconds: Some(77),
        ..SettingsPatch::default()
    });
    assert_eq!(h.get("/__admin/settings").await.json()["tokenTtlSeconds"], 77);
    let token = h.token().await;
    assert_eq!(h.create_guest(&token).await.status, 500);
    let entries = h.server.requests(Some(GUESTS));
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].status, 500);
    assert_eq!(entries[0].headers["authorization"], "Bearer [redacted]");
    assert_eq!(h.server.jwks(), h.get("/__admin/jwks.json").await.json());
    h.server.revoke_tokens();
    assert_eq!(
        h.create_guest(&token).await.status,
        500,
        "the fault still has one use"
    );
    assert_eq!(h.create_guest(&token).await.status, 401);
    h.server.reset();
    assert!(h.journal(None).await.is_empty());
    assert_eq!(h.get("/__admin/settings").await.json()["tokenTtlSeconds"], 86400);
}

#[actix_rt::test]
async fn the_jwks_publishes_one_ed25519_key() {
    let h = Harness::start();
    let jwks = h.get("/__admin/jwks.json").await.json();
    let key = &jwks["keys"][0];
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["use"], "sig");
    assert!(key["kid"].is_string());
    assert_eq!(
        key["x"].as_str().unwrap().len(),
        43,
        "32 bytes, base64url without padding"
    );
    assert!(key.get("d").is_none(), "never the private part");
}

#[test]
fn dropping_the_server_stops_it_and_frees_the_port() {
    let server = mock_genesys::MockServer::start(MockSettings::default()).unwrap();
    let port = server.port();
    assert!(mock_genesys::healthcheck(
        "127.0.0.1",
        port,
        Duration::from_secs(5)
    ));
    drop(server);
    assert!(!mock_genesys::healthcheck(
        "127.0.0.1",
        port,
        Duration::from_secs(2)
    ));
}
