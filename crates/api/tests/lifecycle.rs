//! Start-up, readiness and shutdown: in-process and as the real binary.

mod common;

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use api::StartupError;
use common::*;
use domain::genesys::{GUESTS_PATH, OAUTH_TOKEN_PATH};
use genesys_client::GenesysError;
use mock_genesys::{FaultSpec, MockServer, MockSettings};

/// A "Genesys" that accepts TCP connections and never answers, holding every socket open.
struct SilentUpstream {
    base_url: String,
    accepted: Arc<AtomicUsize>,
}

impl SilentUpstream {
    fn start() -> SilentUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for socket in listener.incoming().map_while(Result::ok) {
                held.push(socket);
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        SilentUpstream { base_url, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

#[actix_rt::test]
async fn answers_livez_at_once_while_the_login_hangs_on_a_silent_genesys() {
    let genesys = SilentUpstream::start();
    // A login against this upstream takes the whole 10 s budget.
    let settings = settings_for(&genesys.base_url, &[("APP__GENESYS__BUDGET_MS", "10000")]);
    let started = Instant::now();
    let app = spawn_listening_app(settings).await;

    TcpStream::connect(("127.0.0.1", app.port)).expect("the port accepts connections");
    assert_eq!(get(&app.address, "/livez").await.status, 200);
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(5),
        "alive after {elapsed:?}, not after the login budget"
    );
    let login_under_way = eventually(Duration::from_secs(5), || async { genesys.accepted() > 0 }).await;
    assert!(login_under_way, "the login connected to Genesys");
    get(&app.address, "/readyz")
        .await
        .assert_problem(503, "not_ready");
    post_guest_token(&app.address, &seed_body())
        .await
        .assert_problem(503, "not_ready");
}

#[actix_rt::test]
async fn stops_with_the_credentials_error_when_genesys_rejects_them_after_listening() {
    let mock = emulator();
    let settings = settings_for(
        &mock.base_url(),
        &[("GENESYS_CLIENT_SECRET", "definitely-wrong-secret")],
    );
    let app = spawn_listening_app(settings).await;
    let outcome = actix_rt::time::timeout(Duration::from_secs(30), app.stopped)
        .await
        .expect("the server stops on its own")
        .expect("the server task completes");
    let error = outcome.expect_err("rejected credentials are an error");
    assert!(
        matches!(
            error,
            StartupError::Credentials(GenesysError::UpstreamAuth { .. })
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("GENESYS_CLIENT_ID") && message.contains("GENESYS_CLIENT_SECRET"),
        "{message}"
    );
    assert!(!message.contains("definitely-wrong-secret"), "{message}");
}

#[test]
fn exits_1_at_once_naming_the_port_when_it_is_taken() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    // Before binding, a login against this upstream would wait out the whole 10 s budget.
    let genesys = SilentUpstream::start();
    let started = Instant::now();
    let mut binary = Binary::start(&[
        ("APP_ENV", "test"),
        ("GENESYS_BASE_URL", &genesys.base_url),
        ("APP__GENESYS__BUDGET_MS", "10000"),
        ("PORT", &port),
    ]);
    assert_eq!(binary.wait_for_exit(Duration::from_secs(60)), Some(1));
    let elapsed = started.elapsed();
    let output = binary.all_output();
    assert!(
        elapsed < Duration::from_secs(5),
        "exited after {elapsed:?}:\n{output}"
    );
    assert!(output.contains(&format!("127.0.0.1:{port}")), "{output}");
}

#[actix_rt::test]
async fn is_not_ready_until_genesys_appears_then_serves() {
    // Nothing listens on this port until the emulator starts there.
    let port = free_port();
    let base_url = format!("http://127.0.0.1:{port}");
    let app = spawn_listening_app(settings_for(&base_url, &[])).await;

    get(&app.address, "/readyz")
        .await
        .assert_problem(503, "not_ready");
    let refused = post_guest_token(&app.address, &seed_body()).await;
    refused.assert_problem(503, "not_ready");
    assert!(refused.header("retry-after").is_some());
    assert_eq!(get(&app.address, "/livez").await.status, 200, "alive all along");

    let mock = MockServer::start(MockSettings {
        port,
        ..MockSettings::default()
    })
    .expect("the emulator starts on the reserved port");
    let ready = eventually(Duration::from_secs(30), || async {
        get(&app.address, "/readyz").await.status == 200
    })
    .await;
    assert!(ready, "the background login succeeds once Genesys is reachable");
    assert_eq!(post_guest_token(&app.address, &seed_body()).await.status, 201);
    assert!(!mock.requests(Some(OAUTH_TOKEN_PATH)).is_empty());
}

#[actix_rt::test]
async fn is_not_ready_while_the_token_endpoint_fails_then_recovers() {
    let mock = emulator();
    mock.add_fault(FaultSpec {
        path: OAUTH_TOKEN_PATH.to_owned(),
        times: Some(0),
        status: Some(503),
        ..FaultSpec::default()
    });
    let app = spawn_listening_app(settings_for(&mock.base_url(), &[])).await;
    get(&app.address, "/readyz")
        .await
        .assert_problem(503, "not_ready");
    post_guest_token(&app.address, &seed_body())
        .await
        .assert_problem(503, "not_ready");
    assert!(mock.requests(Some(GUESTS_PATH)).is_empty());

    mock.reset();
    let ready = eventually(Duration::from_secs(30), || async {
        get(&app.address, "/readyz").await.status == 200
    })
    .await;
    assert!(ready);
}

#[actix_rt::test]
async fn turns_unready_at_once_and_keeps_serving_guests_while_draining() {
    let mock = emulator();
    // A long drain delay keeps the listener open while the test looks.
    let settings = settings_for(&mock.base_url(), &[("APP__SERVER__DRAIN_DELAY_MS", "60000")]);
    let app = spawn_app(settings).await;
    assert_eq!(get(&app.address, "/readyz").await.status, 200);

    app.shutdown.trigger();
    let unready = get(&app.address, "/readyz").await;
    unready.assert_problem(503, "not_ready");
    assert!(unready.body["detail"].as_str().unwrap().contains("shutting down"));
    let served = post_guest_token(&app.address, &seed_body()).await;
    assert_eq!(served.status, 201, "{}", served.body);
    assert_eq!(
        served.header("connection"),
        Some("close"),
        "clients are asked to reconnect elsewhere"
    );
    assert_eq!(get(&app.address, "/livez").await.status, 200);
    assert_eq!(mock.requests(Some(GUESTS_PATH)).len(), 1);
}

#[actix_rt::test]
async fn readiness_reads_state_and_sends_no_token_request_while_genesys_is_unreachable() {
    let mock = emulator();
    // Tokens of 2 s: the one from the start-up login lapses while the token endpoint fails.
    mock.update_settings(mock_genesys::SettingsPatch {
        token_ttl_seconds: Some(2),
        ..mock_genesys::SettingsPatch::default()
    });
    let app = spawn_app(settings_for(&mock.base_url(), &[])).await;
    mock.add_fault(FaultSpec {
        path: OAUTH_TOKEN_PATH.to_owned(),
        times: Some(0),
        status: Some(503),
        ..FaultSpec::default()
    });
    let lapsed = eventually(Duration::from_secs(30), || async {
        get(&app.address, "/readyz").await.status == 503
    })
    .await;
    assert!(lapsed, "the lapsed token makes the service unready");

    // The background keeper asks at most once per cool-down (5 s), each time with at most
    // `max_attempts` (4) attempts; the probe itself asks nothing.
    let token_requests = || mock.requests(Some(OAUTH_TOKEN_PATH)).len();
    let before = token_requests();
    let mut latencies = Vec::new();
    for _ in 0..40 {
        let started = Instant::now();
        let answer = get(&app.address, "/readyz").await;
        latencies.push(started.elapsed());
        answer.assert_problem(503, "not_ready");
        assert!(
            answer.body["detail"]
                .as_str()
                .unwrap()
                .contains("last token request failed"),
            "{}",
            answer.body
        );
    }
    let probes_took = latencies.iter().sum::<Duration>();
    let sent = token_requests() - before;
    assert!(
        sent <= 4 * (1 + probes_took.as_secs() as usize / 5),
        "{sent} token requests during 40 probes ({probes_took:?})"
    );
    latencies.sort();
    assert!(
        latencies[20] < Duration::from_millis(100),
        "median {:?}",
        latencies[20]
    );
    assert!(
        latencies[39] < Duration::from_secs(1),
        "slowest {:?}",
        latencies[39]
    );
}

#[actix_rt::test]
async fn the_token_keeper_recovers_an_idle_lapse_in_the_background() {
    let mock = emulator();
    mock.update_settings(mock_genesys::SettingsPatch {
        token_ttl_seconds: Some(2),
        ..mock_genesys::SettingsPatch::default()
    });
    let app = spawn_app(settings_for(&mock.base_url(), &[])).await;
    // Nobody calls the service, yet the token is renewed before it lapses, again and again.
    let renewed = eventually(Duration::from_secs(30), || async {
        mock.requests(Some(OAUTH_TOKEN_PATH)).len() >= 4
    })
    .await;
    assert!(renewed, "the keeper refreshes an idle service's token");
    assert_eq!(get(&app.address, "/readyz").await.status, 200);
}

#[test]
fn exits_1_naming_the_credentials_when_genesys_rejects_them() {
    let mock = emulator();
    let mut binary = Binary::start(&[
        ("APP_ENV", "test"),
        ("GENESYS_BASE_URL", &mock.base_url()),
        ("GENESYS_CLIENT_ID", "local-client"),
        ("GENESYS_CLIENT_SECRET", "definitely-wrong-secret"),
        ("APP__LOG__FORMAT", "json"),
    ]);
    assert_eq!(binary.wait_for_exit(Duration::from_secs(60)), Some(1));
    let output = binary.all_output();
    assert!(
        output.contains("\"listening\""),
        "it listened before the login: {output}"
    );
    assert!(output.contains("GENESYS_CLIENT_ID"), "{output}");
    assert!(output.contains("GENESYS_CLIENT_SECRET"), "{output}");
    assert!(!output.contains("definitely-wrong-secret"), "{output}");
}

#[test]
fn exits_2_naming_each_invalid_setting() {
    let mut binary = Binary::start(&[
        ("APP_ENV", "test"),
        ("FRONTEND_ORIGIN", "*"),
        ("APP__RATE_LIMIT__BURST", "0"),
        ("GENESYS_CLIENT_SECRET", "a-secret-that-must-not-print"),
        ("APP__GENESYS__CLIENT_ID", " "),
    ]);
    assert_eq!(binary.wait_for_exit(Duration::from_secs(60)), Some(2));
    let output = binary.all_output();
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), 3, "{output}");
    assert!(
        lines.iter().any(|l| l.contains("cors.allowed_origins")),
        "{output}"
    );
    assert!(lines.iter().any(|l| l.contains("rate_limit.burst")), "{output}");
    assert!(lines.iter().any(|l| l.contains("GENESYS_CLIENT_ID")), "{output}");
    assert!(!output.contains("a-secret-that-must-not-print"));
}

#[test]
fn rejects_an_unknown_app_env_with_exit_2() {
    let mut binary = Binary::start(&[("APP_ENV", "staging")]);
    assert_eq!(binary.wait_for_exit(Duration::from_secs(60)), Some(2));
    assert!(binary.all_output().contains("APP_ENV"));
}

#[actix_rt::test]
async fn finishes_every_accepted_request_on_sigterm_and_exits_0() {
    const IN_FLIGHT: usize = 6;
    let mock = emulator();
    let mut binary = Binary::start(&[
        ("APP_ENV", "test"),
        ("GENESYS_BASE_URL", &mock.base_url()),
        ("APP__LOG__FORMAT", "json"),
        ("APP__LOG__LEVEL", "info"),
    ]);
    let port = binary.wait_for_port();
    let address = format!("http://127.0.0.1:{port}");
    wait_until_ready(&address).await;
    // Every guest creation now takes 1.5 s upstream, so the requests below are in flight together.
    mock.add_fault(FaultSpec {
        path: GUESTS_PATH.to_owned(),
        times: Some(0),
        delay_ms: Some(1500),
        ..FaultSpec::default()
    });
    let requests: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let address = address.clone();
            actix_rt::spawn(async move { post_guest_token(&address, &seed_body()).await })
        })
        .collect();
    wait_until_in_flight(&address, IN_FLIGHT).await;

    binary.terminate();
    for request in requests {
        let answer = request.await.unwrap();
        assert_eq!(answer.status, 201, "{}", answer.body);
    }
    assert_eq!(
        binary.wait_for_exit(Duration::from_secs(30)),
        Some(0),
        "{}",
        binary.all_output()
    );
    assert!(binary.all_output().contains("SIGTERM"));
    assert_eq!(mock.requests(Some(GUESTS_PATH)).len(), IN_FLIGHT);
}

/// Waits until the service at `address` counts `n` requests in flight (plus the metrics request).
async fn wait_until_in_flight(address: &str, n: usize) {
    let needle = format!("http_server_active_requests {}", n + 1);
    let all_in_flight = eventually(Duration::from_secs(30), || async {
        metrics_text(address).await.contains(&needle)
    })
    .await;
    assert!(all_in_flight, "{n} requests in flight");
}

#[actix_rt::test]
async fn drains_under_load_without_refusing_or_losing_a_request_and_exits_0() {
    const LOOPERS: usize = 6;
    const SLOW: usize = 4;
    // Limits would answer 429 to this load; this test is about the drain alone.
    let mock = emulator_with(MockSettings {
        rate_limit: None,
        ..MockSettings::default()
    });
    let mut binary = Binary::start(&[
        ("APP_ENV", "test"),
        ("GENESYS_BASE_URL", &mock.base_url()),
        ("APP__RATE_LIMIT__ENABLED", "false"),
        ("APP__SERVER__DRAIN_DELAY_MS", "2500"),
        ("APP__LOG__FORMAT", "json"),
        ("APP__LOG__LEVEL", "info"),
    ]);
    let port = binary.wait_for_port();
    let address = format!("http://127.0.0.1:{port}");
    wait_until_ready(&address).await;

    // Load: clients send guest-token requests back to back until the "load balancer" (this test)
    // takes the service out of rotation, 1.5 s into the 2.5 s drain.
    let stop_sending = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loopers: Vec<_> = (0..LOOPERS)
        .map(|_| {
            let address = address.clone();
            let stop = stop_sending.clone();
            actix_rt::spawn(async move {
                let mut statuses = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    statuses.push(post_guest_token(&address, &seed_body()).await.status);
                }
                statuses
            })
        })
        .collect();
    eventually(Duration::from_secs(30), || async {
        mock.requests(Some(GUESTS_PATH)).len() >= 20
    })
    .await;

    binary.terminate();
    let draining = eventually(Duration::from_secs(10), || async {
        binary.all_output().contains("draining")
    })
    .await;
    assert!(draining, "{}", binary.all_output());
    // From the first moment of the drain, readiness is 503 and stays so.
    for _ in 0..10 {
        get(&address, "/readyz").await.assert_problem(503, "not_ready");
    }
    actix_rt::time::sleep(Duration::from_millis(1500)).await;
    stop_sending.store(true, std::sync::atomic::Ordering::SeqCst);
    // Requests still in flight when the listener closes: 1.5 s upstream each.
    mock.add_fault(FaultSpec {
        path: GUESTS_PATH.to_owned(),
        times: Some(0),
        delay_ms: Some(1500),
        ..FaultSpec::default()
    });
    let slow: Vec<_> = (0..SLOW)
        .map(|_| {
            let address = address.clone();
            actix_rt::spawn(async move { post_guest_token(&address, &seed_body()).await })
        })
        .collect();

    let mut served = 0;
    for looper in loopers {
        for status in looper.await.unwrap() {
            assert_eq!(status, 201, "no request is refused during the drain");
            served += 1;
        }
    }
    for request in slow {
        let answer = request.await.unwrap();
        assert_eq!(answer.status, 201, "in flight at the close: {}", answer.body);
    }
    assert_eq!(
        binary.wait_for_exit(Duration::from_secs(30)),
        Some(0),
        "{}",
        binary.all_output()
    );
    assert_eq!(
        mock.requests(Some(GUESTS_PATH)).len(),
        served + SLOW,
        "every request that reached the service was answered"
    );
}

#[actix_rt::test]
async fn a_second_signal_stops_at_once() {
    let mock = emulator();
    let mut binary = Binary::start(&[
        ("APP_ENV", "test"),
        ("GENESYS_BASE_URL", &mock.base_url()),
        ("APP__SERVER__DRAIN_DELAY_MS", "60000"),
        ("APP__LOG__FORMAT", "json"),
        ("APP__LOG__LEVEL", "info"),
    ]);
    let port = binary.wait_for_port();
    let address = format!("http://127.0.0.1:{port}");
    wait_until_ready(&address).await;
    binary.terminate();
    let draining = eventually(Duration::from_secs(10), || async {
        binary.all_output().contains("draining")
    })
    .await;
    assert!(draining, "{}", binary.all_output());
    let second = Instant::now();
    binary.terminate();
    assert_eq!(binary.wait_for_exit(Duration::from_secs(30)), Some(0));
    assert!(
        second.elapsed() < Duration::from_secs(10),
        "stopped {:?} after the second signal, not after the 60 s drain",
        second.elapsed()
    );
    assert!(binary.all_output().contains("stopping at once"));
}
