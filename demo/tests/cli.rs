//! The real `demo-server` binary: start-up, refusals of bad settings, the health check and a
//! graceful stop on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_demo-server");

fn demo_server(args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    // Only what the test gives: no DEMO_* from the developer's shell.
    command
        .env_clear()
        .env("RUST_LOG", "info")
        .args(args)
        .stdin(Stdio::null());
    command
}

fn run(args: &[&str]) -> Output {
    demo_server(args).output().expect("demo-server runs")
}

/// `GET <path>` on 127.0.0.1:<port>: the status code and the whole answer.
fn get(port: u16, path: &str) -> (u16, String) {
    exchange(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    )
}

/// `POST <path>` of a JSON `body` on 127.0.0.1:<port>: the status code and the whole answer.
fn post_json(port: u16, path: &str, body: &str) -> (u16, String) {
    exchange(
        port,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn exchange(port: u16, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("demo-server accepts");
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().expect("a status line");
    (status, answer)
}

/// A running `demo-server`, killed if a test fails before it stops.
struct Running {
    child: Child,
    port: u16,
    /// Its log lines on stdout, from the one after the address on.
    lines: Receiver<String>,
}

impl Running {
    /// Waits (at most 10 s) for a log line that `matches`.
    fn logs(&self, matches: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if matches(&line) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server on a free port and learns the port from its log.
fn start(args: &[&str]) -> Running {
    let child = demo_server(&[&["--port", "0"], args].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("demo-server starts");
    let (sender, lines) = channel();
    let mut running = Running {
        child,
        port: 0,
        lines,
    };
    let stdout = running.child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let line = running
            .lines
            .recv_timeout(left)
            .expect("demo-server logs its address");
        if let Some(url) = line.split("url=http://127.0.0.1:").nth(1) {
            running.port = url.split_whitespace().next().unwrap().parse().unwrap();
            return running;
        }
    }
    panic!("no address logged");
}

/// Sends SIGTERM and returns the exit code; panics if it takes longer than `limit`.
fn terminate(running: &mut Running, limit: Duration) -> Option<i32> {
    let kill = Command::new("kill")
        .args(["-TERM", &running.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = running.child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("demo-server did not exit within {limit:?} of SIGTERM");
}

#[test]
fn serves_the_page_and_its_settings_then_stops_cleanly_on_sigterm() {
    let mut server = start(&["--api-base-url", "https://chat.example.com/guest/"]);
    let port = server.port;

    let (status, page) = get(port, "/");
    assert_eq!(status, 200);
    assert!(
        page.contains("content-security-policy: default-src 'none'"),
        "{page}"
    );
    assert!(
        page.contains("connect-src 'self' https://chat.example.com "),
        "{page}"
    );
    let (status, config) = get(port, "/config.json");
    assert_eq!(status, 200);
    assert!(
        config.contains(r#""apiBaseUrl":"https://chat.example.com/guest""#),
        "{config}"
    );
    assert!(config.contains(r#""signInAvailable":false"#), "{config}");
    let (status, refused) = post_json(
        port,
        "/stand-in-login",
        r#"{"name":"Ada","email":"ada@example.com"}"#,
    );
    assert_eq!(status, 503, "{refused}");
    assert!(refused.contains("sign_in_unavailable"), "{refused}");

    let healthcheck = run(&["healthcheck", "--port", &port.to_string()]);
    assert!(healthcheck.status.success(), "{healthcheck:?}");

    assert_eq!(terminate(&mut server, Duration::from_secs(10)), Some(0));
}

#[test]
fn the_healthcheck_fails_when_nothing_listens() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = run(&["healthcheck", "--port", &port.to_string(), "--timeout-ms", "500"]);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn a_site_directory_without_the_page_exits_2_naming_it() {
    let output = run(&["--port", "0", "--site-dir", "/nonexistent/site"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/nonexistent/site") && stderr.contains("index.html"),
        "{stderr}"
    );
}

#[test]
fn a_base_url_that_could_break_the_policy_exits_2() {
    let output = run(&["--port", "0", "--api-base-url", "http://a.example; script-src *"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--api-base-url"), "{stderr}");
}

/// The committed development key the local API configuration trusts.
const DEV_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../config/dev-keys/site-session-hs256.key"
);

#[test]
fn with_a_key_file_the_stand_in_login_signs_visitors_in_and_says_it_is_for_local_use() {
    let server = start(&[
        "--site-session-key-file",
        DEV_KEY,
        "--site-session-ttl-seconds",
        "120",
    ]);
    let (status, config) = get(server.port, "/config.json");
    assert_eq!(status, 200);
    assert!(config.contains(r#""signInAvailable":true"#), "{config}");
    let (status, session) = post_json(
        server.port,
        "/stand-in-login",
        r#"{"name":"Ada Lovelace","email":"ada@example.com"}"#,
    );
    assert_eq!(status, 200, "{session}");
    assert!(session.contains(r#""subject":"ada@example.com""#), "{session}");
    assert!(session.contains(r#""sessionToken":"ey"#), "{session}");
    assert!(server.logs(|line| line.contains("stand-in login is ON") && line.contains("local use only")));
}

#[test]
fn a_site_session_key_that_cannot_be_used_exits_2_naming_the_file() {
    for (key_file, why) in [
        ("/nonexistent/site.key", "cannot read"),
        ("/dev/null", "at least 32"),
    ] {
        let output = run(&["--port", "0", "--site-session-key-file", key_file]);
        assert_eq!(output.status.code(), Some(2), "{key_file}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(key_file) && stderr.contains(why), "{stderr}");
    }
}
