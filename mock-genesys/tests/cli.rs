//! The `mock-genesys` binary: help, settings errors, the health check and a real start-up.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mock_genesys::{MockServer, MockSettings};

const BIN: &str = env!("CARGO_BIN_EXE_mock-genesys");

fn mock() -> Command {
    let mut command = Command::new(BIN);
    // Keep the caller's MOCK__ variables and the repository's config file out of the way.
    command.env_clear().current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

/// A port nobody listens on: the kernel picks a free one, which is released at once.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn healthcheck_exits_0_against_a_running_emulator() {
    let server = MockServer::start(MockSettings::default()).unwrap();
    let status = mock()
        .args(["healthcheck", "--port", &server.port().to_string()])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn healthcheck_exits_1_when_nothing_listens() {
    let status = mock()
        .args([
            "healthcheck",
            "--host",
            "127.0.0.1",
            "--port",
            &closed_port().to_string(),
        ])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
}

#[test]
fn healthcheck_reads_the_port_from_the_environment() {
    let server = MockServer::start(MockSettings::default()).unwrap();
    let status = mock()
        .arg("healthcheck")
        .env("MOCK__PORT", server.port().to_string())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn help_documents_the_flags_and_the_environment() {
    let output = mock().arg("--help").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8(output.stdout).unwrap();
    for expected in [
        "--port",
        "--host",
        "--config",
        "--log-format",
        "healthcheck",
        "MOCK__PORT",
        "MOCK__RATE_LIMIT__REQUESTS",
        "MOCK__LATENCY_MS",
        "config/mock-genesys.toml",
    ] {
        assert!(help.contains(expected), "--help lacks {expected}:\n{help}");
    }
}

#[test]
fn an_invalid_setting_exits_2_naming_it() {
    let output = mock().env("MOCK__GUEST_TOKEN_TTL_SECONDS", "0").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("guest_token_ttl_seconds"), "{stderr}");

    let output = mock()
        .args(["--config", "/nonexistent/mock.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains("/nonexistent/mock.toml")
    );
}

#[test]
fn serves_with_the_shipped_config_and_stops_cleanly_on_sigterm() {
    let port = closed_port();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/mock-genesys.toml");
    let mut child = mock()
        .args([
            "--config",
            config,
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .env("MOCK__LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Readiness poll with a deadline: the process needs a moment to bind.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !mock_genesys::healthcheck("127.0.0.1", port, Duration::from_millis(500)) {
        assert!(Instant::now() < deadline, "the binary never became healthy");
        assert!(child.try_wait().unwrap().is_none(), "the binary exited early");
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let logs = String::from_utf8(output.stderr).unwrap();
    let messages: Vec<String> = logs
        .lines()
        .map(|line| {
            let line: serde_json::Value = serde_json::from_str(line).expect("JSON log lines");
            line["fields"]["message"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert!(messages.iter().any(|m| m.contains("listening")), "{logs}");
    assert!(messages.iter().any(|m| m == "mock-genesys stopped"), "{logs}");
}
