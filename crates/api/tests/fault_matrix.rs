//! The fault matrix: every way Genesys fails, injected into the real emulator, against one running
//! service. For each fault the caller's status and code, an upper bound on the latency, the
//! upstream calls the emulator journaled, and recovery on the next request without a restart.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use common::*;
use domain::genesys::{GUESTS_PATH, OAUTH_TOKEN_PATH};
use mock_genesys::{ConnectionFault, FaultSpec, MockServer, SettingsPatch};
use serde_json::json;

/// A TCP forwarder in front of the emulator that can play "Genesys is down": while down it
/// resets every connection, new and open.
struct Switch {
    base_url: String,
    down: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Switch {
    fn start(upstream_port: u16) -> Switch {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let down = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (is_down, connections) = (down.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                if is_down.load(Ordering::SeqCst) {
                    let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
                    continue;
                }
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                    continue;
                };
                connections.lock().unwrap().push(client.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), upstream.try_clone().unwrap()),
                    (upstream, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Switch { base_url, down, open }
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            for connection in self.open.lock().unwrap().drain(..) {
                let _ = socket2::SockRef::from(&connection).set_linger(Some(Duration::ZERO));
                let _ = connection.shutdown(Shutdown::Both);
            }
        }
    }
}

/// How a row breaks Genesys.
enum Breakage {
    /// A fault on the guest route, made when the row runs (a Retry-After date is relative to now).
    Guest(Box<dyn Fn() -> FaultSpec>),
    /// Genesys unreachable (connections reset) for the duration of the call.
    Down,
    /// The token endpoint answers 503 while the token is due for refresh, then after it expired.
    TokenEndpointDownAtRefresh,
}

/// One row: what breaks, what the caller must see, how fast, and how many guest calls Genesys saw.
struct Row {
    name: &'static str,
    breakage: Breakage,
    status: u16,
    code: Option<&'static str>,
    within: Duration,
    guest_calls: usize,
}

fn guest_fault(times: u32, spec: FaultSpec) -> Breakage {
    guest_fault_made(times, move || spec.clone())
}

fn guest_fault_made(times: u32, spec: impl Fn() -> FaultSpec + 'static) -> Breakage {
    Breakage::Guest(Box::new(move || FaultSpec {
        path: GUESTS_PATH.to_owned(),
        times: Some(times),
        ..spec()
    }))
}

fn status(status: u16, retry_after: Option<&str>) -> FaultSpec {
    FaultSpec {
        status: Some(status),
        retry_after: retry_after.map(str::to_owned),
        ..FaultSpec::default()
    }
}

fn http_date_in(seconds: u64) -> String {
    httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(seconds))
}

fn rows() -> Vec<Row> {
    let ms = Duration::from_millis;
    let row = |name, breakage, status, code, within, guest_calls| Row {
        name,
        breakage,
        status,
        code,
        within,
        guest_calls,
    };
    vec![
        row(
            "429 x2, Retry-After 1",
            guest_fault(2, status(429, Some("1"))),
            201,
            None,
            ms(4000),
            3,
        ),
        row(
            "429 x2, no Retry-After",
            guest_fault(2, status(429, None)),
            201,
            None,
            ms(2500),
            3,
        ),
        row(
            "429, Retry-After as an HTTP-date 2 s ahead",
            guest_fault_made(1, || status(429, Some(&http_date_in(2)))),
            201,
            None,
            ms(4000),
            2,
        ),
        row(
            "429, Retry-After beyond the budget",
            guest_fault(1, status(429, Some("5"))),
            429,
            Some("rate_limited"),
            ms(1000),
            1,
        ),
        row(
            "500",
            guest_fault(0, status(500, None)),
            502,
            Some("upstream_error"),
            ms(1000),
            1,
        ),
        row(
            "500 with Retry-After",
            guest_fault(0, status(500, Some("1"))),
            502,
            Some("upstream_error"),
            ms(1000),
            1,
        ),
        row(
            "502",
            guest_fault(0, status(502, None)),
            502,
            Some("upstream_error"),
            ms(2500),
            4,
        ),
        row(
            "502 with Retry-After",
            guest_fault(0, status(502, Some("1"))),
            502,
            Some("upstream_error"),
            ms(2500),
            4,
        ),
        row(
            "503",
            guest_fault(0, status(503, None)),
            502,
            Some("upstream_error"),
            ms(2500),
            4,
        ),
        row(
            "503 with Retry-After",
            guest_fault(0, status(503, Some("1"))),
            502,
            Some("upstream_error"),
            ms(2500),
            4,
        ),
        row(
            "504",
            guest_fault(0, status(504, None)),
            502,
            Some("upstream_error"),
            ms(2500),
            4,
        ),
        row(
            "504 with Retry-After",
            guest_fault(0, status(504, Some("1"))),
            502,
            Some("upstream_error"),
            ms(2500),
            4,
        ),
        row(
            "401 mid-run",
            guest_fault(1, status(401, None)),
            201,
            None,
            ms(1500),
            2,
        ),
        row(
            "a delay past the attempt timeout",
            guest_fault(
                1,
                FaultSpec {
                    delay_ms: Some(1500),
                    ..FaultSpec::default()
                },
            ),
            201,
            None,
            ms(2500),
            2,
        ),
        row(
            "a delay past the budget",
            guest_fault(
                0,
                FaultSpec {
                    delay_ms: Some(5000),
                    ..FaultSpec::default()
                },
            ),
            504,
            Some("upstream_timeout"),
            ms(4000),
            3,
        ),
        row(
            "a connection reset",
            guest_fault(
                0,
                FaultSpec {
                    connection: Some(ConnectionFault::Reset),
                    ..FaultSpec::default()
                },
            ),
            502,
            Some("upstream_error"),
            ms(2500),
            4,
        ),
        row(
            "malformed JSON",
            guest_fault(
                1,
                FaultSpec {
                    connection: Some(ConnectionFault::Malformed),
                    ..FaultSpec::default()
                },
            ),
            502,
            Some("upstream_error"),
            ms(1000),
            1,
        ),
        row(
            "an oversized body",
            guest_fault(
                1,
                FaultSpec {
                    status: Some(200),
                    body: Some(json!({"padding": "x".repeat(300 * 1024)})),
                    ..FaultSpec::default()
                },
            ),
            502,
            Some("upstream_error"),
            ms(1000),
            1,
        ),
        row(
            "Genesys down",
            Breakage::Down,
            502,
            Some("upstream_error"),
            ms(2500),
            0,
        ),
        row(
            "the token endpoint down while a refresh is due",
            Breakage::TokenEndpointDownAtRefresh,
            201,
            None,
            ms(1500),
            1,
        ),
    ]
}

/// Clears the emulator's faults through its admin API.
async fn clear_faults(mock: &MockServer) {
    let status = http()
        .delete(format!("{}/__admin/faults", mock.base_url()))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
}

/// Guest calls the emulator journaled after the entry `since`.
fn guest_calls_since(mock: &MockServer, since: u64) -> usize {
    mock.requests(Some(GUESTS_PATH))
        .iter()
        .filter(|e| e.id > since)
        .count()
}

fn last_id(mock: &MockServer) -> u64 {
    mock.requests(None).last().map_or(0, |e| e.id)
}

#[actix_rt::test]
async fn every_upstream_fault_gets_its_answer_within_its_bound_and_the_next_request_recovers() {
    let mock = emulator_with(mock_genesys::MockSettings {
        rate_limit: None,
        ..mock_genesys::MockSettings::default()
    });
    let switch = Switch::start(mock.port());
    let settings = settings_for(
        &switch.base_url,
        &[
            ("APP__GENESYS__BUDGET_MS", "3000"),
            ("APP__GENESYS__ATTEMPT_TIMEOUT_MS", "1000"),
            ("APP__GENESYS__BACKOFF_BASE_MS", "50"),
            ("APP__GENESYS__BACKOFF_CAP_MS", "400"),
        ],
    );
    let app = spawn_app(settings).await;
    let mut report = Vec::new();
    for row in rows() {
        let since = last_id(&mock);
        match &row.breakage {
            Breakage::Guest(fault) => {
                mock.add_fault(fault());
            }
            Breakage::Down => switch.set_down(true),
            Breakage::TokenEndpointDownAtRefresh => {
                // Tokens of 4 s are due 2 s before expiry; get one, then break the token endpoint.
                mock.update_settings(SettingsPatch {
                    token_ttl_seconds: Some(4),
                    ..SettingsPatch::default()
                });
                let revoked = http()
                    .post(format!("{}/__admin/tokens/revoke", mock.base_url()))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(revoked.status(), 204);
                assert_eq!(post_guest_token(&app.address, &seed_body()).await.status, 201);
                mock.add_fault(FaultSpec {
                    path: OAUTH_TOKEN_PATH.to_owned(),
                    times: Some(0),
                    status: Some(503),
                    ..FaultSpec::default()
                });
                actix_rt::time::sleep(Duration::from_millis(2500)).await;
            }
        }
        let since = if matches!(row.breakage, Breakage::TokenEndpointDownAtRefresh) {
            last_id(&mock)
        } else {
            since
        };
        let started = Instant::now();
        let answer = post_guest_token(&app.address, &seed_body()).await;
        let took = started.elapsed();
        // An attempt the service gave up on is journaled when the emulator finishes answering it.
        eventually(Duration::from_secs(6), || async {
            guest_calls_since(&mock, since) >= row.guest_calls
        })
        .await;
        let calls = guest_calls_since(&mock, since);
        report.push(format!(
            "{}: {} {} in {took:?}, {calls} guest calls",
            row.name, answer.status, answer.body["code"]
        ));
        match row.code {
            Some(code) => answer.assert_problem(row.status, code),
            None => assert_eq!(answer.status, row.status, "{}: {}", row.name, answer.body),
        }
        if row.status == 429 || row.status == 503 {
            assert!(answer.header("retry-after").is_some(), "{}", row.name);
        }
        assert!(
            took <= row.within,
            "{}: took {took:?}, bound {:?}",
            row.name,
            row.within
        );
        assert_eq!(calls, row.guest_calls, "{}: guest calls", row.name);

        if let Breakage::TokenEndpointDownAtRefresh = row.breakage {
            // Past expiry with the endpoint still down, the caller gets an upstream error...
            actix_rt::time::sleep(Duration::from_millis(2000)).await;
            post_guest_token(&app.address, &seed_body())
                .await
                .assert_problem(502, "upstream_error");
            mock.update_settings(SettingsPatch {
                token_ttl_seconds: Some(86_400),
                ..SettingsPatch::default()
            });
        }
        // Recovery: the fault gone, the next request succeeds without a restart.
        clear_faults(&mock).await;
        switch.set_down(false);
        let recovered = eventually(Duration::from_secs(10), || async {
            post_guest_token(&app.address, &seed_body()).await.status == 201
        })
        .await;
        assert!(recovered, "{}: no recovery", row.name);
    }
    eprintln!("{}", report.join("\n"));
}
