//! Transient and final failures against the real emulator: what is retried, what is not, and
//! which typed error comes out.

mod common;

use std::time::{Duration, Instant};

use common::*;
use domain::genesys::GUESTS_PATH;
use genesys_client::{GenesysApi, GenesysError, Operation, RetrySettings};
use mock_genesys::FaultSpec;
use serde_json::json;

fn guest_fault(times: u32) -> FaultSpec {
    FaultSpec {
        path: GUESTS_PATH.to_owned(),
        times: Some(times),
        ..FaultSpec::default()
    }
}

fn with_status(status: u16, times: u32) -> FaultSpec {
    FaultSpec {
        status: Some(status),
        ..guest_fault(times)
    }
}

fn with_connection(connection: &str, times: u32) -> FaultSpec {
    FaultSpec {
        connection: Some(serde_json::from_value(json!(connection)).unwrap()),
        ..guest_fault(times)
    }
}

#[actix_rt::test]
async fn a_transient_503_is_retried_and_the_call_succeeds() {
    let mock = emulator();
    let (client, recorder) = client(config_with_retries(&mock, quick_retries()));
    mock.add_fault(with_status(503, 1));

    client
        .create_guest(&guest_request(SUPPORT_QUEUE))
        .await
        .expect("succeeds on the retry");
    assert_eq!(statuses(&guest_calls(&mock)), [503, 200]);
    assert_eq!(recorder.retries(Operation::CreateGuest), ["503"]);
}

#[actix_rt::test]
async fn a_persistent_503_gives_upstream_503_after_four_attempts_within_the_budget() {
    let mock = emulator();
    let (client, _) = client(config(&mock));
    mock.add_fault(with_status(503, 0));

    let started = Instant::now();
    let err = client
        .create_guest(&guest_request(SUPPORT_QUEUE))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            GenesysError::Upstream {
                status: 503,
                correlation_id: Some(_)
            }
        ),
        "{err:?}"
    );
    assert_eq!(statuses(&guest_calls(&mock)), [503, 503, 503, 503]);
    // Default budget is 10 s; allow for a loaded machine without waiting anywhere near 120 s.
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
}

#[actix_rt::test]
async fn a_500_is_not_retried() {
    let mock = emulator();
    let (client, _) = client(config(&mock));
    mock.add_fault(with_status(500, 0));
    let err = client
        .create_guest(&guest_request(SUPPORT_QUEUE))
        .await
        .unwrap_err();
    assert!(
        matches!(err, GenesysError::Upstream { status: 500, .. }),
        "{err:?}"
    );
    assert_eq!(guest_calls(&mock).len(), 1);
}

#[actix_rt::test]
async fn a_reset_connection_is_retried_and_the_call_succeeds() {
    let mock = emulator();
    let (client, recorder) = client(config_with_retries(&mock, quick_retries()));
    mock.add_fault(with_connection("reset", 1));

    client
        .create_guest(&guest_request(SUPPORT_QUEUE))
        .await
        .expect("succeeds on the retry");
    // The emulator journals a dropped connection with status 0.
    assert_eq!(statuses(&guest_calls(&mock)), [0, 200]);
    assert_eq!(recorder.retries(Operation::CreateGuest), ["transport"]);
}

#[actix_rt::test]
async fn connections_reset_every_time_give_a_transport_error() {
    let mock = emulator();
    let (client, recorder) = client(config_with_retries(&mock, quick_retries()));
    mock.add_fault(with_connection("reset", 0));

    let err = client
        .create_guest(&guest_request(SUPPORT_QUEUE))
        .await
        .unwrap_err();
    assert!(matches!(err, GenesysError::Transport { .. }), "{err:?}");
    assert_eq!(recorder.attempts(Operation::CreateGuest), ["transport"; 4]);
    // The emulator journals a reset just after dropping the connection, so the last entry may
    // still be on its way: count attempts on the client side, check the journal's statuses only.
    assert!(guest_calls(&mock).iter().all(|e| e.status == 0));
}

#[actix_rt::test]
async fn a_reset_after_a_503_gives_a_transport_error_with_the_503s_correlation_id() {
    let mock = emulator();
    let (client, recorder) = client(config_with_retries(&mock, quick_retries()));
    // The oldest matching fault applies first: one 503, then resets for the remaining attempts.
    mock.add_fault(with_status(503, 1));
    mock.add_fault(with_connection("reset", 0));

    let err = client
        .create_guest(&guest_request(SUPPORT_QUEUE))
        .await
        .unwrap_err();
    assert!(matches!(err, GenesysError::Transport { .. }), "{err:?}");
    assert_eq!(
        recorder.attempts(Operation::CreateGuest),
        ["503", "transport", "transport", "transport"]
    );
    // Only the 503 answered, so the observer saw exactly one id on this route: the emulator's.
    let answered = recorder.correlation_ids(Operation::CreateGuest);
    let [id_of_503] = answered.as_slice() else {
        panic!("one answered attempt expected, got {answered:?}");
    };
    assert!(
        uuid::Uuid::parse_str(id_of_503).is_ok(),
        "the emulator makes a UUID: {id_of_503}"
    );
    assert_eq!(err.correlation_id(), Some(id_of_503.as_str()), "{err:?}");
    // Not the token answer's id, which the same client also saw.
    assert!(
        !recorder
            .correlation_ids(Operation::FetchToken)
            .contains(id_of_503)
    );
}

#[actix_rt::test]
async fn a_malformed_success_body_is_a_decode_error_and_is_not_retried() {
    let mock = emulator();
    let (client, recorder) = client(config(&mock));
    mock.add_fault(with_connection("malformed", 1));

    let err = client
        .create_guest(&guest_request(SUPPORT_QUEUE))
        .await
        .unwrap_err();
    assert!(matches!(err, GenesysError::Decode { .. }), "{err:?}");
    // A 200 means Genesys did the work; sending again would not make its answer readable.
    assert_eq!(guest_calls(&mock).len(), 1);
    assert!(recorder.retries(Operation::CreateGuest).is_empty());
}

fn half_second_attempts() -> RetrySettings {
    RetrySettings {
        attempt_timeout: Duration::from_millis(500),
        ..quick_retries()
    }
}

#[actix_rt::test]
async fn an_answer_slower_than_the_attempt_timeout_is_abandoned_and_retried() {
    let mock = emulator();
    let (client, recorder) = client(config_with_retries(&mock, half_second_attempts()));
    client
        .fetch_token()
        .await
        .expect("token first, so only the guest call is slowed");
    mock.add_fault(FaultSpec {
        delay_ms: Some(2000),
        ..guest_fault(1)
    });

    let started = Instant::now();
    client
        .create_guest(&guest_request(SUPPORT_QUEUE))
        .await
        .expect("succeeds on the retry");
    assert!(started.elapsed() >= Duration::from_millis(450));
    assert_eq!(recorder.retries(Operation::CreateGuest), ["timeout"]);
    assert_eq!(recorder.attempts(Operation::CreateGuest), ["timeout", "200"]);
}

#[actix_rt::test]
async fn answers_always_slower_than_the_attempt_timeout_give_a_timeout_within_the_budget() {
    let mock = emulator();
    let (client, recorder) = client(config_with_retries(&mock, half_second_attempts()));
    mock.add_fault(FaultSpec {
        delay_ms: Some(2000),
        ..guest_fault(0)
    });

    let started = Instant::now();
    let err = client
        .create_guest(&guest_request(SUPPORT_QUEUE))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, GenesysError::Timeout { .. }), "{err:?}");
    // Four attempts of half a second each, well inside the 10 s budget.
    assert_eq!(recorder.attempts(Operation::CreateGuest), ["timeout"; 4]);
    assert!(elapsed >= Duration::from_millis(1800), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(12), "{elapsed:?}");
}

#[actix_rt::test]
async fn a_budget_shorter_than_the_attempts_ends_the_call_at_the_budget() {
    let mock = emulator();
    let (client, _) = client(config_with_retries(
        &mock,
        RetrySettings {
            budget: Duration::from_millis(1200),
            ..half_second_attempts()
        },
    ));
    client.fetch_token().await.expect("token");
    mock.add_fault(FaultSpec {
        delay_ms: Some(5000),
        ..guest_fault(0)
    });

    let started = Instant::now();
    let err = client
        .create_guest(&guest_request(SUPPORT_QUEUE))
        .await
        .unwrap_err();
    assert!(matches!(err, GenesysError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(1100));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[actix_rt::test]
async fn an_unknown_queue_is_reported_by_guest_creation_and_queue_lookup() {
    let mock = emulator();
    let (client, _) = client(config(&mock));
    let unknown = UNKNOWN_QUEUE.parse().unwrap();

    let err = client
        .create_guest(&guest_request(UNKNOWN_QUEUE))
        .await
        .unwrap_err();
    assert_eq!(
        err.clone(),
        GenesysError::UnknownQueue {
            queue_id: unknown,
            correlation_id: err.correlation_id().map(str::to_owned),
        }
    );
    assert!(err.correlation_id().is_some());

    let err = client.get_queue(&unknown).await.unwrap_err();
    assert!(
        matches!(err, GenesysError::UnknownQueue { queue_id, correlation_id: Some(_) } if queue_id == unknown),
        "{err:?}"
    );
    assert_eq!(guest_calls(&mock).len(), 1, "404 is not retried");
}

#[actix_rt::test]
async fn a_known_queue_is_looked_up() {
    let mock = emulator();
    let (client, _) = client(config(&mock));
    let queue = client
        .get_queue(&SUPPORT_QUEUE.parse().unwrap())
        .await
        .expect("queue");
    assert_eq!(queue.id.to_string(), SUPPORT_QUEUE);
    assert_eq!(queue.name, "Support");
}

#[actix_rt::test]
async fn a_400_from_genesys_is_an_invalid_request_naming_the_fields() {
    let mock = emulator();
    let (client, _) = client(config(&mock));
    mock.add_fault(FaultSpec {
        status: Some(400),
        body: Some(json!({
            "message": "The request could not be understood",
            "code": "bad.request",
            "status": 400,
            "details": [{"fieldName": "attributes.customerId", "errorMessage": "is too long"}],
            "errors": []
        })),
        ..guest_fault(0)
    });

    let err = client
        .create_guest(&guest_request(SUPPORT_QUEUE))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, GenesysError::InvalidRequest { details, correlation_id: Some(_) } if details == &["attributes.customerId: is too long"]),
        "{err:?}"
    );
    assert_eq!(guest_calls(&mock).len(), 1, "400 is not retried");
}

#[actix_rt::test]
async fn a_guest_is_created_with_a_token_and_its_routing() {
    let mock = emulator();
    let (client, _) = client(config(&mock));
    let guest = client
        .create_guest(&guest_request(SUPPORT_QUEUE))
        .await
        .expect("guest");
    assert_eq!(guest.routing.queue_id.to_string(), SUPPORT_QUEUE);
    assert_eq!(guest.routing.language, "en-us");
    assert!(!guest.guest_token.is_empty());
}

#[actix_rt::test]
async fn an_answer_larger_than_the_body_limit_is_a_decode_error_and_is_not_retried() {
    let mock = emulator();
    let (client, recorder) = client(config(&mock));
    mock.add_fault(FaultSpec {
        status: Some(200),
        body: Some(json!({ "padding": "x".repeat(genesys_client::RESPONSE_BODY_LIMIT + 1) })),
        ..guest_fault(1)
    });

    let err = client
        .create_guest(&guest_request(SUPPORT_QUEUE))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, GenesysError::Decode { message, correlation_id: Some(_) } if message.contains("larger than")),
        "{err:?}"
    );
    assert_eq!(recorder.attempts(Operation::CreateGuest), ["decode"]);
    assert_eq!(guest_calls(&mock).len(), 1);
}
