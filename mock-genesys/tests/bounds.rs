//! The emulator under hostile traffic: every table has a bound, and what is over it is refused
//! cheaply and clearly. Real HTTP and WebSockets on random loopback ports.

mod support;

use std::time::Duration;

use awc::ws::{CloseCode, Message};
use futures_util::SinkExt;
use mock_genesys::{JOURNAL_BODY_MAX_BYTES, MAX_FAULTS, MockServer, MockSettings};
use serde_json::json;
use support::web::*;
use support::*;

const MIB: usize = 1 << 20;

#[actix_rt::test]
async fn a_flood_of_one_mebibyte_bodies_keeps_the_journal_within_its_byte_bound() {
    let journal_max_bytes = 2 * MIB;
    let h = Harness::with(MockSettings {
        journal_max_bytes,
        ..MockSettings::default()
    });
    // Just under the 1 MiB body limit, so every request is read and journaled.
    let body = vec![b'x'; MIB - 1];
    let mut most = 0;
    for i in 0..300 {
        let request = h
            .client
            .post(h.url(&format!("/api/v2/flood/{i}")))
            .insert_header(("Content-Type", "application/octet-stream"));
        assert_eq!(h.send(request, Some(&body)).await.status, 404);
        most = most.max(h.server.journal_bytes());
        assert!(most <= journal_max_bytes, "{most} bytes after {i} requests");
    }
    let entries = h.server.requests(None);
    // Each entry is charged its cut body (16 KiB) plus headers and a fixed overhead.
    assert!(
        entries.len() >= journal_max_bytes / (JOURNAL_BODY_MAX_BYTES + 1024),
        "{}",
        entries.len()
    );
    assert!(entries.len() < 300, "older entries went first");
    assert_eq!(
        entries.last().unwrap().path,
        "/api/v2/flood/299",
        "the newest stay"
    );
    for entry in &entries {
        assert!(entry.body_truncated);
        assert_eq!(entry.body_length, MIB - 1);
        assert_eq!(entry.body.len(), JOURNAL_BODY_MAX_BYTES);
    }
    let listed = h.get("/__admin/requests").await.json();
    assert_eq!(listed["requests"][0]["bodyTruncated"], true);
    assert_eq!(listed["requests"][0]["bodyLength"], MIB - 1);
}

#[actix_rt::test]
async fn the_default_journal_bound_holds_a_flood_of_large_bodies_in_under_32_mebibytes() {
    let h = Harness::start();
    let body = vec![b'y'; MIB - 1];
    for i in 0..40 {
        let request = h.client.post(h.url(&format!("/api/v2/flood/{i}")));
        h.send(request, Some(&body)).await;
    }
    let bytes = h.server.journal_bytes();
    assert!(bytes <= 32 * MIB, "{bytes}");
    // 40 bodies of 1 MiB would be 40 MiB; cut to 16 KiB each they are well under 1 MiB.
    assert!(bytes < MIB, "{bytes}");
    assert_eq!(h.server.requests(None).len(), 40);
}

#[actix_rt::test]
async fn the_fault_list_refuses_more_than_its_bound_with_a_clear_message() {
    let h = Harness::start();
    for i in 0..MAX_FAULTS {
        let reply = h
            .post_json(
                "/__admin/faults",
                &json!({"path": format!("/api/v2/f/{i}"), "status": 500}),
            )
            .await;
        assert_eq!(reply.status, 201, "fault {i}");
    }
    let full = h
        .post_json(
            "/__admin/faults",
            &json!({"path": "/api/v2/one-more", "status": 500}),
        )
        .await;
    let error = assert_genesys_error(&full, 400, "bad.request");
    assert!(error["message"].as_str().unwrap().contains("full"), "{error}");
    assert_eq!(
        h.get("/__admin/faults").await.json()["faults"]
            .as_array()
            .unwrap()
            .len(),
        MAX_FAULTS
    );
    // Using a fault up frees its place.
    assert_eq!(h.get("/api/v2/f/0").await.status, 500);
    let reply = h
        .post_json(
            "/__admin/faults",
            &json!({"path": "/api/v2/one-more", "status": 500}),
        )
        .await;
    assert_eq!(reply.status, 201);
}

#[actix_rt::test]
async fn a_full_session_store_refuses_new_exchanges_until_a_session_ends() {
    let bench = Bench::with(MockSettings {
        max_sessions: 2,
        ..MockSettings::default()
    })
    .await;
    let (first, _) = bench.sign_in("a").await;
    bench.sign_in("b").await;
    let reply = bench.exchange(&Bench::exchange_body(&bench.code("c"))).await;
    let error = assert_genesys_error(&reply, 503, "session.store.full");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("session store is full"),
        "{error}"
    );
    assert_eq!(bench.revoke(&first).await.status, 204);
    bench.sign_in("c").await;
    assert_eq!(bench.h.server.session_count(), 2);
}

#[actix_rt::test]
async fn the_websocket_bound_refuses_the_upgrade_until_a_socket_closes() {
    let bench = Bench::with(MockSettings {
        max_websockets: 1,
        ..MockSettings::default()
    })
    .await;
    let mut first = bench.socket().await;
    until("the first socket is counted", || {
        bench.h.server.open_websockets() == 1
    })
    .await;
    assert_eq!(bench.connect(DEPLOYMENT, Some(SHOP)).await.err(), Some(503));
    let refused = bench.h.journal(Some("/v1")).await;
    assert_eq!(refused.last().unwrap()["status"], 503);
    first.send(Message::Close(None)).await.unwrap();
    drop(first);
    until("the first socket is released", || {
        bench.h.server.open_websockets() == 0
    })
    .await;
    let mut second = bench.socket().await;
    assert_eq!(ask(&mut second, configure_anonymous("t")).await["code"], 200);
}

#[actix_rt::test]
async fn a_message_over_the_size_bound_closes_the_socket() {
    let bench = Bench::with(MockSettings {
        websocket_max_message_bytes: 1024,
        ..MockSettings::default()
    })
    .await;
    let mut socket = bench.socket().await;
    let big = text_message("t", &"z".repeat(2048));
    send(&mut socket, &big).await;
    let reason = closed(&mut socket).await.expect("a close reason");
    assert_eq!(reason.code, CloseCode::Size);
    until("the socket is released", || bench.h.server.open_websockets() == 0).await;
}

#[actix_rt::test]
async fn an_idle_socket_is_closed_after_the_idle_timeout() {
    let bench = Bench::with(MockSettings {
        websocket_idle_timeout_seconds: 1,
        ..MockSettings::default()
    })
    .await;
    let mut socket = bench.socket().await;
    // Pings go unanswered here, so nothing is heard from this client.
    let reason = closed(&mut socket).await.expect("a close reason");
    assert_eq!(reason.code, CloseCode::Away);
    assert!(reason.description.unwrap().contains("idle"));
}

#[actix_rt::test]
async fn a_socket_that_answers_pings_outlives_the_idle_timeout() {
    let bench = Bench::with(MockSettings {
        websocket_idle_timeout_seconds: 1,
        ..MockSettings::default()
    })
    .await;
    let mut socket = bench.socket().await;
    ask(&mut socket, configure_anonymous("t")).await;
    let started = std::time::Instant::now();
    // `receive` answers the server's pings while it waits for the reply.
    while started.elapsed() < Duration::from_millis(2500) {
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        let reply = ask(&mut socket, text_message("t", "still here")).await;
        assert_eq!(reply["body"]["text"], "echo: still here");
    }
}

#[actix_rt::test]
async fn the_admin_api_on_its_own_listener_is_served_only_there() {
    let h = Harness::with(MockSettings {
        admin_port: Some(0),
        ..MockSettings::default()
    });
    let admin_url = h.server.admin_url();
    assert_ne!(admin_url, h.server.base_url());
    let on_main = h.get("/__admin/health").await;
    assert_genesys_error(&on_main, 404, "not.found");
    let health = h
        .send(h.client.get(format!("{admin_url}/__admin/health")), None)
        .await;
    assert_eq!(health.status, 200);
    let token_on_admin = h
        .send(
            h.client.post(format!("{admin_url}/oauth/token")),
            Some(b"grant_type=client_credentials"),
        )
        .await;
    assert_genesys_error(&token_on_admin, 404, "not.found");
    assert_eq!(h.token_reply("local-client", "local-secret").await.status, 200);
    let journal = h
        .send(h.client.get(format!("{admin_url}/__admin/requests")), None)
        .await
        .json();
    let paths: Vec<&str> = journal["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["/oauth/token"],
        "refusals on the wrong listener are not journaled"
    );
    assert!(mock_genesys::healthcheck(
        "127.0.0.1",
        h.server.admin_port().unwrap(),
        Duration::from_secs(5)
    ));
    assert!(!mock_genesys::healthcheck(
        "127.0.0.1",
        h.server.port(),
        Duration::from_secs(5)
    ));
}

#[test]
fn an_admin_port_equal_to_the_port_is_refused() {
    let settings = MockSettings {
        port: 9999,
        admin_port: Some(9999),
        ..MockSettings::default()
    };
    let error = MockServer::start(settings).unwrap_err();
    assert!(error.to_string().contains("admin_port"), "{error}");
}
