//! Configuration mistakes as an operator meets them: the real binary refuses each with exit code
//! 2 and a line naming the setting, and the health check finds the port the service listens on.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use common::*;

/// A copy of the workspace's `config/` whose `test.toml` is `test_toml`.
fn config_dir_with(test_toml: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("api-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["default.toml", "local.toml", "production.toml"] {
        std::fs::copy(config_dir().join(file), dir.join(file)).unwrap();
    }
    std::fs::write(dir.join("test.toml"), test_toml).unwrap();
    dir
}

/// The lines of a run that must exit with 2.
fn refused(env: &[(&str, &str)]) -> Vec<String> {
    let mut binary = Binary::start(env);
    let code = binary.wait_for_exit(Duration::from_secs(60));
    let output = binary.all_output();
    assert_eq!(code, Some(2), "{output}");
    output.lines().map(str::to_owned).collect()
}

const PRODUCTION_CREDENTIALS: [(&str, &str); 3] = [
    ("APP_ENV", "production"),
    ("GENESYS_CLIENT_ID", "prod-id"),
    ("GENESYS_CLIENT_SECRET", "prod-secret-never-printed"),
];

#[test]
fn production_without_allowed_origins_exits_2_naming_frontend_origin() {
    let mut env = PRODUCTION_CREDENTIALS.to_vec();
    env.push(("GENESYS_REGION", "mypurecloud.ie"));
    let lines = refused(&env);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("cors.allowed_origins (FRONTEND_ORIGIN)"),
        "{lines:?}"
    );
}

#[test]
fn production_with_plain_http_to_a_genesys_host_exits_2_without_printing_the_secret() {
    let mut env = PRODUCTION_CREDENTIALS.to_vec();
    env.push(("GENESYS_BASE_URL", "http://api.mypurecloud.com"));
    env.push(("FRONTEND_ORIGIN", "https://www.example.com"));
    let lines = refused(&env);
    assert_eq!(lines.len(), 2, "base and derived login URL: {lines:?}");
    assert!(lines.iter().all(|l| l.contains("plain http://")), "{lines:?}");
    assert!(!lines.join("\n").contains("prod-secret-never-printed"));
}

#[test]
fn a_login_url_beside_a_region_exits_2_instead_of_being_dropped() {
    let lines = refused(&[
        ("APP_ENV", "test"),
        ("GENESYS_REGION", "mypurecloud.ie"),
        ("GENESYS_LOGIN_URL", "https://login.example.com"),
    ]);
    assert_eq!(
        lines,
        [
            "configuration error: GENESYS_REGION and GENESYS_LOGIN_URL: set one of them (a region sets both URLs)"
        ]
    );
}

#[test]
fn check_config_accepts_an_app_variable_region_over_the_local_base_url() {
    let mut binary = Binary::start_with_args(
        &["check-config"],
        &[("APP_ENV", "local"), ("APP__GENESYS__REGION", "mypurecloud.ie")],
    );
    assert_eq!(
        binary.wait_for_exit(Duration::from_secs(60)),
        Some(0),
        "{}",
        binary.all_output()
    );
}

/// Answers `status_line` to one HTTP request on a free port; returns the port.
fn answer_once(status_line: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut connection, _)) = listener.accept() {
            let mut request = [0u8; 1024];
            let _ = connection.read(&mut request);
            let _ = connection.write_all(format!("{status_line}\r\ncontent-length: 0\r\n\r\n").as_bytes());
        }
    });
    port
}

#[test]
fn the_healthcheck_probes_the_port_set_in_a_config_file() {
    let port = answer_once("HTTP/1.1 200 OK");
    let dir = config_dir_with(&format!("[server]\nport = {port}\n"));
    let mut binary = Binary::start_with_args(
        &["healthcheck"],
        &[("APP_ENV", "test"), ("APP_CONFIG_DIR", dir.to_str().unwrap())],
    );
    assert_eq!(
        binary.wait_for_exit(Duration::from_secs(30)),
        Some(0),
        "{}",
        binary.all_output()
    );
    std::fs::remove_dir_all(dir).unwrap();
}
