//! 429 handling against the real emulator: Retry-After is waited out within the budget, refused
//! beyond it, and shared by concurrent callers so they do not each collect a 429.

mod common;

use std::time::{Duration, Instant};

use common::*;
use domain::genesys::GUESTS_PATH;
use genesys_client::{
    AllowanceSettings, GenesysApi, GenesysClient, GenesysError, LONGEST_RETRY_AFTER, Operation,
};
use mock_genesys::FaultSpec;

fn rate_limit_fault(retry_after: &str, times: u32) -> FaultSpec {
    FaultSpec {
        path: GUESTS_PATH.to_owned(),
        times: Some(times),
        status: Some(429),
        retry_after: Some(retry_after.to_owned()),
        ..FaultSpec::default()
    }
}

#[actix_rt::test]
async fn two_429s_with_retry_after_one_second_are_waited_out_and_the_third_call_succeeds() {
    let mock = emulator();
    let (client, recorder) = client(config(&mock));
    mock.add_fault(rate_limit_fault("1", 2));

    let started = Instant::now();
    client
        .create_guest(&guest_request(SUPPORT_QUEUE))
        .await
        .expect("succeeds after two waits");
    let elapsed = started.elapsed();

    assert!(elapsed >= Duration::from_millis(1800), "waited only {elapsed:?}");
    assert_eq!(statuses(&guest_calls(&mock)), [429, 429, 200]);
    assert_eq!(recorder.retries(Operation::CreateGuest), ["429", "429"]);
}

#[actix_rt::test]
async fn a_retry_after_longer_than_the_budget_fails_at_once_as_rate_limited() {
    let mock = emulator();
    let (client, _) = client(config(&mock));
    mock.add_fault(rate_limit_fault("120", 1));

    let started = Instant::now();
    let err = client
        .create_guest(&guest_request(SUPPORT_QUEUE))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();

    assert!(
        matches!(&err, GenesysError::RateLimited { retry_after, correlation_id: Some(_) } if *retry_after == Duration::from_secs(120)),
        "{err:?}"
    );
    // Generous bound: the point is that the caller is not held for the 120 s, nor the 10 s budget.
    assert!(
        elapsed < Duration::from_secs(5),
        "held the caller for {elapsed:?}"
    );
    assert_eq!(guest_calls(&mock).len(), 1);
}

#[actix_rt::test]
async fn later_callers_fail_fast_while_a_long_retry_after_is_in_force_without_calling_genesys() {
    let mock = emulator();
    let (client, _) = client(config(&mock));
    mock.add_fault(rate_limit_fault("120", 1));
    let request = guest_request(SUPPORT_QUEUE);
    client.create_guest(&request).await.unwrap_err();

    let err = client.create_guest(&request).await.unwrap_err();
    assert!(
        matches!(&err, GenesysError::RateLimited { retry_after, .. } if *retry_after > Duration::from_secs(100)),
        "{err:?}"
    );
    assert_eq!(
        guest_calls(&mock).len(),
        1,
        "the gate kept the second call at home"
    );
    // Other routes are not held back by the guest route's limit.
    client
        .get_queue(&SUPPORT_QUEUE.parse().unwrap())
        .await
        .expect("queue lookups still go through");
}

#[actix_rt::test]
async fn callers_arriving_during_a_retry_after_wait_it_out_instead_of_collecting_429s() {
    let mock = emulator();
    let (client, recorder) = client(config(&mock));
    let request = guest_request(SUPPORT_QUEUE);
    mock.add_fault(rate_limit_fault("1", 1));

    let first = client.create_guest(&request);
    let others = async {
        // Launch the other 49 once the first call has its 429 and the gate is closed.
        recorder.retried.notified().await;
        let calls = (0..49).map(|_| client.create_guest(&request));
        futures_util::future::join_all(calls).await
    };
    let (first, others) = futures_util::future::join(first, others).await;

    first.expect("the first call succeeds after its wait");
    let failures: Vec<_> = others.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failures.is_empty(), "{failures:?}");
    let guests = guest_calls(&mock);
    let limited: Vec<_> = guests.iter().filter(|e| e.status == 429).collect();
    assert_eq!(limited.len(), 1, "exactly one 429, no burst");
    assert_eq!(guests.iter().filter(|e| e.status == 200).count(), 50);
    // No guest call reached Genesys while its Retry-After was in force.
    let opened = limited[0].received_at + time::Duration::milliseconds(900);
    let early: Vec<_> = guests
        .iter()
        .filter(|e| e.status == 200 && e.received_at < opened)
        .collect();
    assert!(early.is_empty(), "{} calls sent during the wait", early.len());
}

#[actix_rt::test]
async fn a_retry_after_too_large_for_the_clock_fails_fast_as_rate_limited() {
    let mock = emulator();
    let (client, _) = client(config(&mock));
    mock.add_fault(rate_limit_fault("99999999999999999999999", 1));

    let err = client
        .create_guest(&guest_request(SUPPORT_QUEUE))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, GenesysError::RateLimited { retry_after, correlation_id: Some(_) } if *retry_after == LONGEST_RETRY_AFTER),
        "{err:?}"
    );
    assert_eq!(guest_calls(&mock).len(), 1);
    // The gate holds the route shut for everyone rather than failing open.
    let again = client
        .create_guest(&guest_request(SUPPORT_QUEUE))
        .await
        .unwrap_err();
    assert!(matches!(again, GenesysError::RateLimited { .. }), "{again:?}");
    assert_eq!(guest_calls(&mock).len(), 1);
}

/// A client whose allowance is `settings` (and the default retries).
fn client_with_allowance(mock: &mock_genesys::MockServer, settings: AllowanceSettings) -> GenesysClient {
    let mut config = config(mock);
    config.allowance = settings;
    client(config).0
}

#[actix_rt::test]
async fn the_budget_refuses_at_once_what_its_share_has_no_room_for() {
    let mock = emulator();
    // 60 a minute in bursts of 3: the fourth call at once finds no room.
    let client = client_with_allowance(
        &mock,
        AllowanceSettings {
            requests_per_minute: 60,
            share: 1.0,
            burst: 3,
        },
    );
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        outcomes.push(client.create_guest(&guest_request(SUPPORT_QUEUE)).await);
    }
    assert!(outcomes[..3].iter().all(Result::is_ok), "{outcomes:?}");
    for refused in &outcomes[3..] {
        assert!(
            matches!(refused, Err(GenesysError::RateLimited { retry_after, .. }) if *retry_after <= Duration::from_secs(1)),
            "{refused:?}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refusals are immediate"
    );
    assert_eq!(guest_calls(&mock).len(), 3, "nothing refused reached Genesys");
    assert_eq!(client.status().budget_left, 0);
}

#[actix_rt::test]
async fn stops_before_genesys_reported_window_is_spent_when_another_client_shares_it() {
    let mock = emulator_with(mock_genesys::MockSettings {
        rate_limit: Some(mock_genesys::RateLimit {
            requests: 10,
            window_seconds: 60,
        }),
        ..mock_genesys::MockSettings::default()
    });
    // Another process of the same OAuth client already spent 6 of the 10.
    let other = client(config(&mock)).0;
    for _ in 0..6 {
        other.create_guest(&guest_request(SUPPORT_QUEUE)).await.unwrap();
    }
    // This process' own budget would allow far more; Genesys' window says 4 are left.
    let this = client(config(&mock)).0;
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let this = &this;
            async move {
                let mut outcomes = Vec::new();
                for _ in 0..5 {
                    outcomes.push(this.create_guest(&guest_request(SUPPORT_QUEUE)).await.is_ok());
                }
                outcomes
            }
        })
        .collect();
    let outcomes: Vec<bool> = futures_util::future::join_all(callers)
        .await
        .into_iter()
        .flatten()
        .collect();
    let statuses = statuses(&guest_calls(&mock));
    let rejected = statuses.iter().filter(|s| **s == 429).count();
    assert!(rejected <= 1, "Genesys answered {rejected} 429s: {statuses:?}");
    assert!(
        outcomes.iter().filter(|ok| **ok).count() >= 3,
        "what was left of the window was used: {outcomes:?}"
    );
    assert!(this.status().window_remaining.is_some_and(|left| left <= 1));
}

/// A third-party host (a site's JWKS) whose answers carry rate-limit headers of its own.
fn document_host_reporting_a_spent_window() -> (actix_web::dev::ServerHandle, String) {
    let server = actix_web::HttpServer::new(|| {
        actix_web::App::new().route(
            "/jwks.json",
            actix_web::web::get().to(|| async {
                actix_web::HttpResponse::Ok()
                    .insert_header(("inin-ratelimit-allowed", "1"))
                    .insert_header(("inin-ratelimit-count", "1"))
                    .insert_header(("inin-ratelimit-reset", "3600"))
                    .json(serde_json::json!({"keys": []}))
            }),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let url = format!("http://{}/jwks.json", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    (handle, url)
}

#[actix_rt::test]
async fn another_hosts_rate_limit_headers_leave_the_genesys_window_alone() {
    let mock = emulator();
    let (host, url) = document_host_reporting_a_spent_window();
    let (client, _) = client(config(&mock));
    client.fetch_document(&url).await.unwrap();
    assert_eq!(
        client.status().window_remaining,
        None,
        "no Genesys window reported yet"
    );
    client.create_guest(&guest_request(SUPPORT_QUEUE)).await.unwrap();
    client
        .get_deployment(mock_genesys::DEFAULT_DEPLOYMENT_ID)
        .await
        .unwrap();
    host.stop(true).await;
}
