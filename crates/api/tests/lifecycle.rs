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
async fn turns_unready_and_refuses_new_guests_while_shutting_down() {
    let mock = emulator();
    // A long drain delay keeps the listener open while the test looks.
    let settings = settings_for(&mock.base_url(), &[("APP__SERVER__DRAIN_DELAY_MS", "60000")]);
    let app = spawn_app(settings).await;
    assert_eq!(get(&app.address, "/readyz").await.status, 200);

    app.shutdown.trigger();
    get(&app.address, "/readyz")
        .await
        .assert_problem(503, "not_ready");
    let refused = post_guest_token(&app.address, &seed_body()).await;
    refused.assert_problem(503, "not_ready");
    assert!(refused.body["detail"].as_str().unwrap().contains("shutting down"));
    assert_eq!(get(&app.address, "/livez").await.status, 200);
    assert!(mock.requests(Some(GUESTS_PATH)).is_empty());
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
    // In flight: the service counts them (plus the metrics request asking).
    let needle = format!("http_server_active_requests {}", IN_FLIGHT + 1);
    let all_in_flight = eventually(Duration::from_secs(30), || async {
        let text = http()
            .get(format!("{address}/metrics"))
            .send()
            .await
            .unwrap()
            .body()
            .await
            .unwrap();
        String::from_utf8_lossy(&text).contains(&needle)
    })
    .await;
    assert!(all_in_flight, "{IN_FLIGHT} requests in flight");

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
