//! The access token against the real emulator: single-flight across workers, refresh before
//! expiry, recovery after revocation, and no retry storm on bad credentials.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use domain::genesys::OAUTH_TOKEN_PATH;
use genesys_client::{GenesysApi, GenesysClient, GenesysError, Operation, RetrySettings};
use mock_genesys::{FaultSpec, MockSettings};

#[test]
fn two_hundred_calls_on_four_workers_with_a_cold_cache_make_exactly_one_token_request() {
    let mock = emulator();
    let (shared, recorder) = shared(config(&mock));
    const WORKERS: usize = 4;
    const CALLS_PER_WORKER: usize = 50;
    let start_together = Arc::new(Barrier::new(WORKERS));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let shared = shared.clone();
            let start_together = start_together.clone();
            // Each OS thread is one actix worker with its own System and its own awc client.
            thread::spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let client = GenesysClient::new(shared);
                    let request = guest_request(SUPPORT_QUEUE);
                    start_together.wait();
                    let calls = (0..CALLS_PER_WORKER).map(|_| client.create_guest(&request));
                    futures_util::future::join_all(calls).await
                })
            })
        })
        .collect();
    let results: Vec<_> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("worker thread"))
        .collect();

    let failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failures.is_empty(), "failed calls: {failures:?}");
    assert_eq!(results.len(), WORKERS * CALLS_PER_WORKER);
    assert_eq!(token_calls(&mock).len(), 1, "exactly one token request");
    assert_eq!(recorder.token_refreshes(), ["ok"]);
    let guests = guest_calls(&mock);
    assert_eq!(guests.len(), 200);
    assert!(guests.iter().all(|e| e.status == 200));
    assert!(shared.has_token());
}

#[actix_rt::test]
async fn a_three_second_token_is_refreshed_before_it_expires_one_request_per_refresh() {
    let mock = emulator_with(MockSettings {
        token_ttl_seconds: 3,
        rate_limit: None,
        ..MockSettings::default()
    });
    let (client, recorder) = client(config(&mock));
    let request = guest_request(SUPPORT_QUEUE);
    let run_for = Duration::from_secs(10);
    let started = Instant::now();
    // Two callers keep the route busy for ten seconds, paced so the journal stays small.
    let caller = || async {
        let mut made = 0u32;
        while started.elapsed() < run_for {
            client.create_guest(&request).await.expect("every call succeeds");
            made += 1;
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
        made
    };
    let (a, b) = futures_util::future::join(caller(), caller()).await;
    assert!(a + b > 100, "calls were kept up: {}", a + b);

    let all = journal(&mock, None);
    assert!(
        all.iter().all(|e| e.status != 401),
        "a token was used after it expired"
    );
    assert!(recorder.retries(Operation::CreateGuest).is_empty());
    let tokens = token_calls(&mock);
    // Refreshed halfway through each 3 s lifetime: about 7 requests in 10 s.
    assert!(
        (3..=10).contains(&tokens.len()),
        "token requests: {}",
        tokens.len()
    );
    assert!(tokens.iter().all(|e| e.status == 200));
    for pair in tokens.windows(2) {
        let gap = pair[1].received_at - pair[0].received_at;
        assert!(
            gap >= time::Duration::milliseconds(500),
            "two token requests for one refresh, {gap} apart"
        );
        // Refreshed ahead of expiry (due after 1.5 s), not once the 3 s have run out.
        assert!(
            gap < time::Duration::milliseconds(2800),
            "the token was not refreshed before it expired: {gap} between requests"
        );
    }
}

#[actix_rt::test]
async fn a_call_inside_the_refresh_window_does_not_wait_for_a_slow_login_host() {
    let mock = emulator_with(MockSettings {
        token_ttl_seconds: 4,
        rate_limit: None,
        ..MockSettings::default()
    });
    let (client, recorder) = client(config(&mock));
    let request = guest_request(SUPPORT_QUEUE);
    let before_login = Instant::now();
    client.create_guest(&request).await.expect("warm-up call");
    let logged_in = Instant::now();
    mock.add_fault(FaultSpec {
        path: OAUTH_TOKEN_PATH.to_owned(),
        delay_ms: Some(3_000),
        ..FaultSpec::default()
    });

    // A 4 s token is due for refresh 2 s after it was requested; it stays valid until 4 s.
    actix_rt::time::sleep_until((logged_in + Duration::from_millis(2_300)).into()).await;
    let started = Instant::now();
    client
        .create_guest(&request)
        .await
        .expect("the call inside the refresh window succeeds");
    let took = started.elapsed();
    assert!(
        before_login.elapsed() < Duration::from_secs(4),
        "the call was meant to use the still-valid token"
    );
    assert!(
        took < Duration::from_secs(2),
        "the call waited for the 3 s token request: {took:?}"
    );
    assert_eq!(statuses(&guest_calls(&mock)), [200, 200]);

    // The refresh it started goes on in the background and lands once the delay is over.
    assert!(
        recorder
            .wait_for_token_refreshes(2, Duration::from_secs(20))
            .await,
        "the background refresh finished: {:?}",
        recorder.token_refreshes()
    );
    assert_eq!(recorder.token_refreshes(), ["ok", "ok"]);
    assert_eq!(statuses(&token_calls(&mock)), [200, 200]);
    // That call started it: its token request arrived together with the call, not later.
    let refresh_arrived = token_calls(&mock)[1].received_at;
    let call_arrived = guest_calls(&mock)[1].received_at;
    assert!(
        (refresh_arrived - call_arrived).abs() < time::Duration::seconds(1),
        "the refresh arrived at {refresh_arrived}, the call at {call_arrived}"
    );
}

#[actix_rt::test]
async fn while_the_login_host_fails_calls_keep_the_valid_token_and_refreshes_pause() {
    let mock = emulator_with(MockSettings {
        token_ttl_seconds: 8,
        rate_limit: None,
        ..MockSettings::default()
    });
    let retries = quick_retries();
    let max_attempts = retries.max_attempts as usize;
    let (client, recorder) = client(config_with_retries(&mock, retries));
    let request = guest_request(SUPPORT_QUEUE);
    let before_login = Instant::now();
    client.create_guest(&request).await.expect("warm-up call");
    let logged_in = Instant::now();
    let fault = mock.add_fault(FaultSpec {
        path: OAUTH_TOKEN_PATH.to_owned(),
        status: Some(503),
        times: Some(0),
        ..FaultSpec::default()
    });

    // An 8 s token is due for refresh 4 s after it was requested; call until 6.5 s, well before it expires.
    actix_rt::time::sleep_until((logged_in + Duration::from_millis(4_300)).into()).await;
    let stop = before_login + Duration::from_millis(6_500);
    let mut calls = 0usize;
    loop {
        client
            .create_guest(&request)
            .await
            .expect("calls succeed with the still-valid token");
        calls += 1;
        if Instant::now() >= stop {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        recorder
            .wait_for_token_refreshes(2, Duration::from_secs(20))
            .await,
        "a background refresh was tried: {:?}",
        recorder.token_refreshes()
    );
    assert_eq!(recorder.token_refreshes()[..2], ["ok", "upstream"]);
    let failed = token_calls(&mock).iter().filter(|e| e.status == 503).count();
    // One refresh (its own retries included) for all the calls: the cool-down outlasts this phase.
    assert!(
        (1..=max_attempts).contains(&failed),
        "{failed} failed token requests for {calls} calls"
    );
    assert_eq!(
        statuses(&token_calls(&mock))[0],
        200,
        "only the warm-up token succeeded, so every call used it"
    );
    assert!(guest_calls(&mock).iter().all(|e| e.status == 200));

    remove_fault(&mock, &fault).await;
    let removed_at = token_calls(&mock).last().map_or(0, |e| e.id);
    // Later calls get a new token (when the cool-down ends or the old token expires).
    let give_up = Instant::now() + Duration::from_secs(20);
    while !token_calls(&mock)
        .iter()
        .any(|e| e.id > removed_at && e.status == 200)
    {
        assert!(
            Instant::now() < give_up,
            "no new token after the fault was removed"
        );
        client
            .create_guest(&request)
            .await
            .expect("calls keep succeeding");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(recorder.token_refreshes().last().map(String::as_str), Some("ok"));
    client
        .create_guest(&request)
        .await
        .expect("a call with the new token");
}

#[actix_rt::test]
async fn after_revocation_the_next_call_fetches_one_new_token_and_retries_once() {
    let mock = emulator();
    let (client, recorder) = client(config(&mock));
    let request = guest_request(SUPPORT_QUEUE);
    client.create_guest(&request).await.expect("warm-up call");
    let seen = journal(&mock, None).last().map(|e| e.id).unwrap_or(0);

    mock.revoke_tokens();
    client
        .create_guest(&request)
        .await
        .expect("recovers with a new token");

    let after: Vec<_> = journal(&mock, None).into_iter().filter(|e| e.id > seen).collect();
    let paths: Vec<(&str, u16)> = after.iter().map(|e| (e.path.as_str(), e.status)).collect();
    assert_eq!(
        paths,
        [
            (domain::genesys::GUESTS_PATH, 401),
            (domain::genesys::OAUTH_TOKEN_PATH, 200),
            (domain::genesys::GUESTS_PATH, 200),
        ]
    );
    assert_eq!(recorder.retries(Operation::CreateGuest), ["401"]);
}

#[actix_rt::test]
async fn fifty_calls_refused_with_the_revoked_token_share_one_new_token() {
    let mock = emulator();
    let (client, _) = client(config(&mock));
    let request = guest_request(SUPPORT_QUEUE);
    client.create_guest(&request).await.expect("warm-up call");
    mock.revoke_tokens();

    let calls = (0..50).map(|_| client.create_guest(&request));
    let results = futures_util::future::join_all(calls).await;

    let failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failures.is_empty(), "{failures:?}");
    // A late 401 for the old token must not throw away the new one and fetch again.
    assert_eq!(
        token_calls(&mock).len(),
        2,
        "the warm-up token and one replacement"
    );
    let guests = guest_calls(&mock);
    assert_eq!(guests.iter().filter(|e| e.status == 200).count(), 51);
}

#[actix_rt::test]
async fn a_wrong_client_secret_fails_as_upstream_auth_after_one_token_request() {
    let mock = emulator();
    let (client, recorder) = client(config_for(
        &mock,
        "local-client",
        "not-the-secret",
        RetrySettings::default(),
    ));
    let err = client
        .create_guest(&guest_request(SUPPORT_QUEUE))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, GenesysError::UpstreamAuth { status: 401, reason, .. } if reason == "invalid_client"),
        "{err:?}"
    );
    assert_eq!(token_calls(&mock).len(), 1, "no retry storm on bad credentials");
    assert!(guest_calls(&mock).is_empty());
    assert_eq!(recorder.token_refreshes(), ["upstream_auth"]);
    assert!(!client.status().token.held);
    assert!(!err.to_string().contains("not-the-secret"));
}

#[actix_rt::test]
async fn a_client_without_the_guest_scope_fails_as_upstream_auth_without_refreshing() {
    let mock = emulator();
    let (client, _) = client(config_for(
        &mock,
        "no-scope-client",
        "no-scope-secret",
        RetrySettings::default(),
    ));
    let err = client
        .create_guest(&guest_request(SUPPORT_QUEUE))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, GenesysError::UpstreamAuth { status: 403, reason, correlation_id: Some(_) } if reason == "missing.permissions"),
        "{err:?}"
    );
    assert_eq!(token_calls(&mock).len(), 1);
    assert_eq!(statuses(&guest_calls(&mock)), [403]);
}

#[actix_rt::test]
async fn fetch_token_gets_a_token_with_basic_auth_and_the_client_credentials_form() {
    let mock = emulator();
    let (client, recorder) = client(config(&mock));
    assert!(!client.status().token.held);
    let status = client.fetch_token().await.expect("token");
    assert_eq!(status.expires_in, Duration::from_secs(86_400));
    assert!(client.status().token.held);
    assert_eq!(recorder.token_refreshes(), ["ok"]);

    let tokens = token_calls(&mock);
    assert_eq!(tokens.len(), 1);
    let entry = &tokens[0];
    assert_eq!(entry.method, "POST");
    assert!(entry.headers["authorization"].starts_with("Basic "));
    assert!(
        entry.headers["content-type"].starts_with("application/x-www-form-urlencoded"),
        "{:?}",
        entry.headers
    );
    assert_eq!(entry.body, "grant_type=client_credentials");
    // Genesys generates the correlation id; we only read it back.
    assert!(!entry.headers.contains_key("inin-correlation-id"));

    client
        .create_guest(&guest_request(SUPPORT_QUEUE))
        .await
        .expect("guest");
    let guest = &guest_calls(&mock)[0];
    assert!(guest.headers["authorization"].starts_with("Bearer "));
    assert_eq!(token_calls(&mock).len(), 1, "the fetched token is reused");
}

#[actix_rt::test]
async fn a_token_lifetime_too_large_for_the_clock_is_still_cached_and_used() {
    let mock = emulator();
    mock.add_fault(mock_genesys::FaultSpec {
        path: domain::genesys::OAUTH_TOKEN_PATH.to_owned(),
        status: Some(200),
        body: Some(serde_json::json!({
            "access_token": "a-token-that-never-expires",
            "token_type": "bearer",
            "expires_in": u64::MAX,
        })),
        ..mock_genesys::FaultSpec::default()
    });
    let (client, _) = client(config(&mock));

    let status = client.fetch_token().await.expect("a token");
    assert_eq!(status.expires_in, genesys_client::LONGEST_TOKEN_LIFETIME);
    assert!(client.status().token.held);
}
