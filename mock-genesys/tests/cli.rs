//! The `mock-genesys` binary: help, settings errors, the health check and a real start-up.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

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
fn healthcheck_probes_the_admin_listener_the_settings_name() {
    let server = MockServer::start(MockSettings {
        admin_port: Some(0),
        ..MockSettings::default()
    })
    .unwrap();
    let (port, admin_port) = (
        server.port().to_string(),
        server.admin_port().unwrap().to_string(),
    );
    let status = mock()
        .arg("healthcheck")
        .env("MOCK__PORT", &port)
        .env("MOCK__ADMIN_PORT", &admin_port)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0), "from the environment");
    let status = mock()
        .arg("healthcheck")
        .env("MOCK__PORT", &port)
        .status()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "the main listener does not serve /__admin"
    );

    let dir = std::env::temp_dir().join(format!("mock-genesys-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("mock-genesys.toml");
    // A wildcard host is probed on loopback.
    std::fs::write(
        &config,
        format!("host = \"0.0.0.0\"\nport = {port}\nadmin_port = {admin_port}\n"),
    )
    .unwrap();
    let status = mock()
        .args(["healthcheck", "--config", config.to_str().unwrap()])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0), "from the file");
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
        "--admin-port",
        "--admin-host",
        "healthcheck",
        "MOCK__PORT",
        "MOCK__ADMIN_PORT",
        "MOCK__MESSAGING_JWT_TTL_SECONDS",
        "MOCK__REFRESH_TOKEN_TTL_SECONDS",
        "MOCK__IDENTITY_PROVIDER_TIMEOUT_MS",
        "MOCK__MAX_SESSIONS",
        "MOCK__MAX_WEBSOCKETS",
        "MOCK__JOURNAL_MAX_BYTES",
        "MOCK__AGENT_REPLY",
        "/v1?deploymentId=",
        "/__admin/deployments",
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
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/mock-genesys.toml");
    // Port 0: the binary picks a free port and logs it, so no other test can take it first.
    let mut child = mock()
        .args([
            "--config",
            config,
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--admin-port",
            "0",
        ])
        .env("MOCK__LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in stderr.lines() {
            let line: serde_json::Value = serde_json::from_str(&line.unwrap()).expect("JSON log lines");
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let listening = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the binary logs that it listens");
        if line["fields"]["message"] == "mock-genesys listening" {
            break line;
        }
    };
    let address: SocketAddr = listening["fields"]["address"].as_str().unwrap().parse().unwrap();
    let admin: SocketAddr = listening["fields"]["admin_address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(mock_genesys::healthcheck(
        "127.0.0.1",
        admin.port(),
        Duration::from_secs(5)
    ));
    assert!(
        !mock_genesys::healthcheck("127.0.0.1", address.port(), Duration::from_secs(5)),
        "/__admin is served only on the admin listener"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
    reader.join().unwrap();
    let messages: Vec<String> = lines
        .try_iter()
        .map(|line| line["fields"]["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        messages.iter().any(|m| m == "mock-genesys stopped"),
        "{messages:?}"
    );
}
