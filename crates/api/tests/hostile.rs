//! Hostile traffic against the real binary on loopback: slow clients, one address flooding, a
//! load over Genesys' allowance, and a whole IPv6 network. Each test is bounded in time.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::raw::{pipeline, post_text, read_answer, send_from};
use common::*;
use domain::api::GUEST_TOKEN_PATH;
use domain::genesys::GUESTS_PATH;
use mock_genesys::{MockServer, MockSettings, RateLimit};
use serde_json::json;
use time::OffsetDateTime;

/// The binary against `mock`, with `env` on top of `config/test.toml`, logging warnings only (a
/// line per request would cost more than the requests); returns it and its port.
fn start_service(mock: &MockServer, env: &[(&str, &str)]) -> (Binary, u16) {
    let port = free_port();
    let port_text = port.to_string();
    let base_url = mock.base_url();
    let mut all = vec![
        ("APP_ENV", "test"),
        ("APP__LOG__LEVEL", "warn"),
        ("GENESYS_BASE_URL", base_url.as_str()),
        ("PORT", port_text.as_str()),
    ];
    all.extend_from_slice(env);
    (Binary::start(&all), port)
}

/// Waits until the binary on `port` listens and is ready; panics after 60 s.
async fn ready(port: u16) {
    let url = format!("http://127.0.0.1:{port}/readyz");
    let ready = eventually(Duration::from_secs(60), || async {
        http().get(&url).send().await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(ready, "the service on {port} did not become ready");
}

fn seed_request(extra_headers: &str) -> String {
    post_text(GUEST_TOKEN_PATH, &seed_body().to_string(), extra_headers)
}

const FROM_ALLOWED_ORIGIN: &str = "Origin: http://localhost:8080\r\n";

/// Sends a request head announcing 100 body bytes, then one byte every 500 ms, until the service
/// closes the connection (or 8 s pass); returns when it closed and what it answered.
async fn trickle_a_body(port: u16) -> (Duration, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = actix_rt::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = format!(
        "POST {GUEST_TOKEN_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The body's deadline runs from here: the head is sent.
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let mut tick = actix_rt::time::interval(Duration::from_millis(500));
    while started.elapsed() < Duration::from_secs(8) {
        tokio::select! {
            _ = tick.tick() => {
                let _ = stream.write_all(b" ").await;
            }
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            },
        }
    }
    (started.elapsed(), String::from_utf8_lossy(&answer).into_owned())
}

#[actix_rt::test]
async fn slow_bodies_are_cut_off_at_the_deadline_while_normal_clients_are_served() {
    const SLOW_CLIENTS: usize = 500;
    const BODY_DEADLINE: Duration = Duration::from_secs(2);
    let mock = emulator_with(MockSettings {
        rate_limit: None,
        ..MockSettings::default()
    });
    let (_service, port) = start_service(
        &mock,
        &[
            ("APP__RATE_LIMIT__ENABLED", "false"),
            ("APP__SERVER__BODY_TIMEOUT_MS", "2000"),
        ],
    );
    ready(port).await;

    let slow: Vec<_> = (0..SLOW_CLIENTS)
        .map(|_| actix_rt::spawn(trickle_a_body(port)))
        .collect();

    // Meanwhile a normal client keeps getting guest tokens.
    let normal = std::thread::spawn(move || {
        let started = Instant::now();
        let mut statuses = Vec::new();
        while started.elapsed() < Duration::from_secs(3) {
            statuses.push(send_from(
                IpAddr::from([127, 0, 0, 1]),
                port,
                &seed_request(FROM_ALLOWED_ORIGIN),
            ));
            std::thread::sleep(Duration::from_millis(100));
        }
        statuses
    });

    let mut outcomes = Vec::new();
    for client in slow {
        outcomes.push(client.await.unwrap());
    }
    let mut closing: Vec<Duration> = outcomes.iter().map(|(after, _)| *after).collect();
    closing.sort();
    eprintln!(
        "slow clients closed after: min {:?}, median {:?}, max {:?}",
        closing[0],
        closing[SLOW_CLIENTS / 2],
        closing[SLOW_CLIENTS - 1]
    );
    for (closed_after, answer) in &outcomes {
        // The server's clock starts when it reads the head, which on a loaded machine can be
        // a while after the client sent it; a client never cut off would trickle on for 8 s.
        assert!(
            *closed_after <= BODY_DEADLINE + Duration::from_secs(3),
            "a slow client was still connected after {closed_after:?}"
        );
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("request_timeout"), "{answer}");
    }
    let statuses = actix_rt::task::spawn_blocking(move || normal.join().unwrap())
        .await
        .unwrap();
    assert!(statuses.len() >= 10, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == Some(201)), "{statuses:?}");
}

/// Sends `request` on a fresh connection and reads the whole answer until the server closes it.
fn answer_until_closed(port: u16, request: &str) -> String {
    let mut stream = common::raw::connect_from(IpAddr::from([127, 0, 0, 1]), port);
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[actix_rt::test]
async fn header_floods_are_refused_431_before_genesys_and_the_connection_closes() {
    let mock = emulator();
    let (_service, port) = start_service(&mock, &[]);
    ready(port).await;
    // Host, Content-Type, Content-Length and Origin come with every request: 60 more make 64.
    let headers = |n: usize| -> String { (0..n).map(|i| format!("X-Filler-{i}: {i}\r\n")).collect() };
    let at_the_limit = seed_request(&format!("{FROM_ALLOWED_ORIGIN}{}", headers(60)));
    let status = send_from(IpAddr::from([127, 0, 0, 2]), port, &at_the_limit);
    assert_eq!(status, Some(201), "64 headers are served");

    let too_many = seed_request(&format!("{FROM_ALLOWED_ORIGIN}{}", headers(61)));
    let too_long = seed_request(&format!(
        "{FROM_ALLOWED_ORIGIN}X-Filler: {}\r\n",
        "a".repeat(8200)
    ));
    for (what, request) in [("65 headers", too_many), ("8 KiB of one header", too_long)] {
        let answer = answer_until_closed(port, &request);
        assert!(answer.starts_with("HTTP/1.1 431"), "{what}: {answer}");
        assert!(
            answer.contains("\"code\":\"headers_too_large\""),
            "{what}: {answer}"
        );
        assert!(
            answer.contains("at most 64 request headers, at most 8192 bytes"),
            "{what}: {answer}"
        );
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{what}: {answer}"
        );
    }
    assert_eq!(
        mock.requests(Some(GUESTS_PATH)).len(),
        1,
        "only the first went upstream"
    );
}

/// A `POST` of `chunks` with `Transfer-Encoding: chunked`: no length is declared up front.
fn chunked_request(chunks: &[String]) -> String {
    let body: String = chunks
        .iter()
        .map(|chunk| format!("{:x}\r\n{chunk}\r\n", chunk.len()))
        .collect();
    format!(
        "POST {GUEST_TOKEN_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n{FROM_ALLOWED_ORIGIN}\r\n{body}0\r\n\r\n"
    )
}

#[actix_rt::test]
async fn a_body_in_many_chunks_is_joined_up_to_the_limit_and_one_byte_over_is_refused_413() {
    let mock = emulator();
    let (_service, port) = start_service(&mock, &[]);
    ready(port).await;
    let seed = seed_body().to_string();
    let pieces: Vec<String> = seed
        .as_bytes()
        .chunks(7)
        .map(|piece| String::from_utf8(piece.to_vec()).unwrap())
        .collect();
    assert!(pieces.len() > 3);
    let status = send_from(IpAddr::from([127, 0, 0, 3]), port, &chunked_request(&pieces));
    assert_eq!(status, Some(201), "the chunks make the seed request");

    // A body of `total` bytes in chunks of at most 1,000, none over the 4,096-byte limit alone: an
    // unknown field pads the seed request (unknown fields are ignored).
    let padded = |total: usize| -> Vec<String> {
        let head = format!("{{\"queueId\":\"{SUPPORT_QUEUE}\",\"pad\":\"");
        let padding = total - head.len() - 2;
        let body = format!("{head}{}\"}}", "x".repeat(padding));
        assert_eq!(body.len(), total);
        body.as_bytes()
            .chunks(1000)
            .map(|piece| String::from_utf8(piece.to_vec()).unwrap())
            .collect()
    };
    let status = send_from(
        IpAddr::from([127, 0, 0, 3]),
        port,
        &chunked_request(&padded(4096)),
    );
    assert_eq!(status, Some(201), "exactly the limit is served");

    let mut stream = common::raw::connect_from(IpAddr::from([127, 0, 0, 3]), port);
    stream
        .write_all(chunked_request(&padded(4097)).as_bytes())
        .unwrap();
    let (status, answer) = read_answer(&mut BufReader::new(stream)).expect("an answer");
    assert_eq!(status, 413, "one byte over: {answer}");
    assert!(answer.contains("\"code\":\"payload_too_large\""), "{answer}");
    assert_eq!(
        mock.requests(Some(GUESTS_PATH)).len(),
        2,
        "only the joined requests went upstream"
    );
}

#[actix_rt::test]
async fn one_address_flooding_cannot_take_the_allowance_from_twenty_others() {
    // Genesys allows 60 calls a minute; the service spends half of it in a burst of 30 at most.
    let mock = emulator_with(MockSettings {
        rate_limit: Some(RateLimit {
            requests: 60,
            window_seconds: 60,
        }),
        ..MockSettings::default()
    });
    let (_service, port) = start_service(
        &mock,
        &[
            ("APP__GENESYS__REQUESTS_PER_MINUTE", "60"),
            ("APP__GENESYS__BUDGET_SHARE", "0.5"),
            ("APP__GENESYS__BUDGET_BURST", "30"),
            ("APP__GENESYS__MAX_CLIENT_SHARE", "0.1"),
            // A generous per-IP limit: the client share caps it to 3 a minute.
            ("APP__RATE_LIMIT__PER_SECOND", "5"),
            ("APP__RATE_LIMIT__BURST", "20"),
        ],
    );
    ready(port).await;

    let flooding = Arc::new(AtomicBool::new(true));
    let flood_on = flooding.clone();
    let flooder = std::thread::spawn(move || {
        let flooder = IpAddr::from([127, 0, 0, 2]);
        let mut statuses = Vec::new();
        while flood_on.load(Ordering::SeqCst) {
            statuses.push(send_from(flooder, port, &seed_request(FROM_ALLOWED_ORIGIN)));
            std::thread::sleep(Duration::from_millis(20));
        }
        statuses
    });
    let others = std::thread::spawn(move || {
        (10..30u8)
            .map(|last| {
                std::thread::sleep(Duration::from_millis(250));
                send_from(
                    IpAddr::from([127, 0, 0, last]),
                    port,
                    &seed_request(FROM_ALLOWED_ORIGIN),
                )
            })
            .collect::<Vec<_>>()
    });
    let others = actix_rt::task::spawn_blocking(move || others.join().unwrap())
        .await
        .unwrap();
    // Keep flooding a little past the last visitor, then stop.
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    flooding.store(false, Ordering::SeqCst);
    let flood = actix_rt::task::spawn_blocking(move || flooder.join().unwrap())
        .await
        .unwrap();

    assert!(
        others.iter().all(|s| *s == Some(201)),
        "the twenty visitors: {others:?}"
    );
    let flood_served = flood.iter().filter(|s| **s == Some(201)).count();
    assert!(flood.len() >= 150, "the flood sent {} requests", flood.len());
    assert!(flood_served <= 4, "the flooder got {flood_served} guests");
    let refusals = mock
        .requests(Some(GUESTS_PATH))
        .iter()
        .filter(|r| r.status == 429)
        .count();
    assert!(refusals <= 1, "Genesys answered {refusals} 429s");
}

#[actix_rt::test]
async fn three_times_the_allowance_costs_at_most_one_429_per_window() {
    const WINDOW: Duration = Duration::from_secs(6);
    // Genesys allows 30 calls per 6 s window (300 a minute).
    let mock = emulator_with(MockSettings {
        rate_limit: Some(RateLimit {
            requests: 30,
            window_seconds: 6,
        }),
        ..MockSettings::default()
    });
    let (_service, port) = start_service(
        &mock,
        &[
            // 27 a window sustained with a burst of 3: no 6 s window can hold more than 30.
            ("APP__GENESYS__REQUESTS_PER_MINUTE", "300"),
            ("APP__GENESYS__BUDGET_SHARE", "0.9"),
            ("APP__GENESYS__BUDGET_BURST", "3"),
            ("APP__RATE_LIMIT__ENABLED", "false"),
        ],
    );
    ready(port).await;

    // 15 requests a second for two windows: three times the allowance.
    let senders: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut answers = Vec::new();
                while started.elapsed() < 2 * WINDOW {
                    answers.push(send_from(IpAddr::from([127, 0, 0, 1]), port, &seed_request("")));
                    std::thread::sleep(Duration::from_millis(200));
                }
                answers
            })
        })
        .collect();
    let answers: Vec<Option<u16>> =
        actix_rt::task::spawn_blocking(move || senders.into_iter().flat_map(|t| t.join().unwrap()).collect())
            .await
            .unwrap();
    assert!(answers.len() >= 150, "{} requests offered", answers.len());
    let issued = answers.iter().filter(|s| **s == Some(201)).count();
    let refused = answers.iter().filter(|s| **s == Some(429)).count();
    assert_eq!(
        issued + refused,
        answers.len(),
        "only 201 or a fast 429: {answers:?}"
    );

    let journal = mock.requests(Some(GUESTS_PATH));
    let first = journal.first().expect("guests were created").received_at;
    let mut per_window = std::collections::BTreeMap::<i64, usize>::new();
    for entry in journal.iter().filter(|e| e.status == 429) {
        let window = (entry.received_at - first).whole_milliseconds() as i64 / WINDOW.as_millis() as i64;
        *per_window.entry(window).or_default() += 1;
    }
    assert!(
        per_window.values().all(|n| *n <= 1),
        "429s from Genesys per window: {per_window:?}"
    );
    let upstream_calls = journal.len();
    assert!(
        upstream_calls as f64 <= issued as f64 * 1.01 + 1.0,
        "{upstream_calls} upstream calls for {issued} tokens"
    );
    assert!(
        issued >= 50,
        "the allowance was used: {issued} tokens in two windows"
    );
    let _ = OffsetDateTime::now_utc();
}

/// `n` requests, each forwarded for the address `address(i)` from an untrusted origin, so the
/// service counts them in the limiter and refuses them before Genesys.
fn forwarded(n: usize, address: impl Fn(usize) -> String) -> impl Iterator<Item = String> {
    (0..n).map(move |i| {
        seed_request(&format!(
            "Origin: https://elsewhere.example\r\nX-Forwarded-For: {}\r\n",
            address(i)
        ))
    })
}

/// The value of a gauge in the service's metrics.
async fn gauge(port: u16, name: &str) -> i64 {
    metrics_text(&format!("http://127.0.0.1:{port}"))
        .await
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name}"))
}

#[actix_rt::test]
async fn a_whole_ipv6_network_costs_one_bucket_and_a_full_table_still_serves_newcomers() {
    let mock = emulator();
    let (_service, port) = start_service(
        &mock,
        &[
            ("APP__RATE_LIMIT__TRUSTED_PROXIES", "127.0.0.1"),
            ("APP__RATE_LIMIT__PER_SECOND", "0.001"),
            ("APP__RATE_LIMIT__BURST", "1"),
            ("APP__RATE_LIMIT__MAX_TRACKED_IPS", "100"),
        ],
    );
    ready(port).await;

    // 100 000 addresses of one /64, over four pipelined connections.
    let batches: Vec<_> = (0..4u64)
        .map(|batch| {
            std::thread::spawn(move || {
                pipeline(
                    port,
                    forwarded(25_000, move |i| {
                        format!("2001:db8:1:2:{:x}:{:x}::{:x}", batch, i >> 16, i & 0xffff)
                    }),
                )
            })
        })
        .collect();
    let statuses: Vec<u16> =
        actix_rt::task::spawn_blocking(move || batches.into_iter().flat_map(|t| t.join().unwrap()).collect())
            .await
            .unwrap();
    assert_eq!(statuses.len(), 100_000);
    assert_eq!(
        statuses.iter().filter(|s| **s == 403).count(),
        1,
        "one burst for the /64"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 99_999);
    assert_eq!(gauge(port, "rate_limit_tracked_clients").await, 1);

    // 150 networks more than fill the table of 100 ...
    let filled = actix_rt::task::spawn_blocking(move || {
        pipeline(port, forwarded(150, |i| format!("2001:db8:100:{i:x}::1")))
    })
    .await
    .unwrap();
    assert!(
        filled.iter().all(|s| *s == 403),
        "each network's first request passes the limiter"
    );
    assert_eq!(gauge(port, "rate_limit_tracked_clients").await, 100);
    // ... and a newcomer's first request is still served.
    let newcomer = http()
        .post(format!("http://127.0.0.1:{port}{GUEST_TOKEN_PATH}"))
        .insert_header(("content-type", "application/json"))
        .insert_header(("origin", ALLOWED_ORIGIN))
        .insert_header(("x-forwarded-for", "2001:db8:ffff:1::1"));
    let answer = send(newcomer, Some(json!({"queueId": SUPPORT_QUEUE}).to_string())).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
}
