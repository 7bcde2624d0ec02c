//! Shared set-up of the integration tests: the real emulator and the real service on random
//! ports, in-process or as the real binary.

#![allow(dead_code)] // Each test binary uses its own subset.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

pub mod identity;
pub mod raw;

use api::settings::LogFormat;
use api::{Application, Settings, ShutdownTrigger, StartupError, telemetry};
use domain::api::GUEST_TOKEN_PATH;
use mock_genesys::{MockServer, MockSettings};
use serde_json::{Value, json};

/// The emulator's "Support" queue, the seed's example.
pub const SUPPORT_QUEUE: &str = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";
/// A well-formed queue id the emulator does not know.
pub const UNKNOWN_QUEUE: &str = "99999999-9999-4999-8999-999999999999";
/// An origin `config/test.toml` allows.
pub const ALLOWED_ORIGIN: &str = "http://localhost:8080";

/// Logs go nowhere unless `TEST_LOG` is set (then to stdout, at the configured level).
static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "debug".to_owned());
        let _ = telemetry::init(telemetry::subscriber(LogFormat::Text, &filter, std::io::stdout));
    } else {
        let _ = telemetry::init(telemetry::subscriber(LogFormat::Text, "off", std::io::sink));
    }
});

/// The workspace's `config/` directory.
pub fn config_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config"))
}

/// An emulator with the default settings on a random port.
pub fn emulator() -> MockServer {
    emulator_with(MockSettings::default())
}

/// An emulator with `settings`.
pub fn emulator_with(settings: MockSettings) -> MockServer {
    MockServer::start(settings).expect("the emulator starts")
}

/// `config/test.toml` pointed at `base_url`, with extra variables.
pub fn settings_for(base_url: &str, extra: &[(&str, &str)]) -> Settings {
    let mut env: HashMap<String, String> = [("APP_ENV", "test"), ("GENESYS_BASE_URL", base_url)]
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    env.entry("APP_ENV".to_owned())
        .or_insert_with(|| "test".to_owned());
    Settings::load(&config_dir(), &env).expect("test settings are valid")
}

/// The service running in this process.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The bound port.
    pub port: u16,
    /// Starts the same graceful shutdown SIGTERM does.
    pub shutdown: ShutdownTrigger,
    /// Resolves when the server has stopped.
    pub stopped: actix_rt::task::JoinHandle<Result<(), StartupError>>,
}

/// Builds and starts the service with `settings` on the current actix system and waits until
/// it is ready (logged in to Genesys).
pub async fn spawn_app(settings: Settings) -> TestApp {
    let app = spawn_listening_app(settings).await;
    wait_until_ready(&app.address).await;
    app
}

/// Waits until `/readyz` at `address` answers 200; panics after 30 s.
pub async fn wait_until_ready(address: &str) {
    let ready = eventually(Duration::from_secs(30), || async {
        get(address, "/readyz").await.status == 200
    })
    .await;
    assert!(ready, "{address} did not become ready");
}

/// Builds and starts the service with `settings` on the current actix system; returns as soon
/// as it listens, with the Genesys login still under way.
pub async fn spawn_listening_app(settings: Settings) -> TestApp {
    LazyLock::force(&TRACING);
    let app = Application::build(settings).await.expect("the service starts");
    let port = app.port();
    let shutdown = app.shutdown_trigger();
    let stopped = actix_rt::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        shutdown,
        stopped,
    }
}

/// An HTTP client with a timeout longer than any test's upstream budget.
pub fn http() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .disable_redirects()
        .finish()
}

/// The seed's example body.
pub fn seed_body() -> Value {
    json!({"queueId": SUPPORT_QUEUE, "language": "en-us", "customerId": "cust_99887766"})
}

/// A status, headers and JSON body.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: awc::http::header::HeaderMap,
    /// The body parsed as JSON (`Null` if it is not JSON).
    pub body: Value,
}

impl Answer {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem body with `status` and `code` whose `requestId` is the `X-Request-ID`.
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.header("content-type"), Some("application/problem+json"));
        assert_eq!(self.body["code"], code, "{}", self.body);
        assert_eq!(self.body["status"], status);
        assert_eq!(
            Some(self.body["requestId"].as_str().unwrap()),
            self.header("x-request-id")
        );
    }
}

/// Sends `request` with an optional body and reads the answer.
pub async fn send(request: awc::ClientRequest, body: Option<String>) -> Answer {
    let mut response = match body {
        Some(body) => request.send_body(body).await,
        None => request.send().await,
    }
    .expect("the service answers");
    let bytes = response.body().limit(1 << 20).await.expect("a readable body");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// `POST /api/webchat/guest-token` from the allowed origin.
pub async fn post_guest_token(address: &str, body: &Value) -> Answer {
    let request = http()
        .post(format!("{address}{GUEST_TOKEN_PATH}"))
        .insert_header(("content-type", "application/json"))
        .insert_header(("origin", ALLOWED_ORIGIN));
    send(request, Some(body.to_string())).await
}

/// `GET <path>`.
pub async fn get(address: &str, path: &str) -> Answer {
    send(http().get(format!("{address}{path}")), None).await
}

/// The service's `/metrics` exposition at `address` (`http://host:port`).
pub async fn metrics_text(address: &str) -> String {
    let mut response = http()
        .get(format!("{address}/metrics"))
        .send()
        .await
        .expect("the service answers /metrics");
    let body = response.body().limit(1 << 20).await.expect("a readable body");
    String::from_utf8_lossy(&body).into_owned()
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `condition` every 20 ms until it holds or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition().await {
            return true;
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// The real `guest-token-api` binary, running.
pub struct Binary {
    /// The process.
    pub child: Child,
    /// Its stdout and stderr lines so far (collected by reader threads).
    pub output: Arc<Mutex<Vec<String>>>,
    lines: Receiver<String>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Binary {
    /// Starts the binary in a scratch directory with only `env` (plus APP_CONFIG_DIR) set.
    pub fn start(env: &[(&str, &str)]) -> Binary {
        Self::start_with_args(&[], env)
    }

    /// Starts the binary with `args`, in a scratch directory with only `env` set (plus
    /// `APP_CONFIG_DIR` = the workspace's `config/`, unless `env` names another).
    pub fn start_with_args(args: &[&str], env: &[(&str, &str)]) -> Binary {
        let workdir = std::env::temp_dir().join(format!("guest-token-api-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&workdir).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_guest-token-api"));
        command
            .env_clear()
            .current_dir(&workdir)
            .env("APP_CONFIG_DIR", config_dir())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("the binary starts");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (sender, lines) = channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut readers = Vec::new();
        for stream in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(stderr)] {
            let output = output.clone();
            let sender = sender.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    output.lock().unwrap().push(line.clone());
                    let _ = sender.send(line);
                }
            }));
        }
        Binary {
            child,
            output,
            lines,
            readers,
        }
    }

    /// Waits for the JSON log line announcing the port and returns it.
    pub fn wait_for_port(&self) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let line = self.lines.recv_timeout(left).expect("the binary logs its port");
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["message"] == "listening"
            {
                return v["port"].as_u64().expect("a port") as u16;
            }
        }
        panic!("no port in:\n{}", self.all_output());
    }

    /// Waits for the process to exit and for its output to be read to the end; returns its code.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The pipes reach end-of-file once the process is gone: then every line is in.
                for reader in self.readers.drain(..) {
                    reader.join().expect("an output reader");
                }
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the binary did not exit in {limit:?}:\n{}", self.all_output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM, as an orchestrator would.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Everything it printed so far.
    pub fn all_output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bytes one upstream connection answered.
type ConnectionLog = Arc<Mutex<Vec<u8>>>;

/// A TCP forwarder that records what the upstream answered, so tests can learn the access
/// tokens the service received without the service ever showing them.
pub struct RecordingProxy {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    answers: Arc<Mutex<Vec<ConnectionLog>>>,
}

impl RecordingProxy {
    /// Forwards every connection to `upstream_port`.
    pub fn start(upstream_port: u16) -> RecordingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let answers = Arc::new(Mutex::new(Vec::new()));
        let recorded = answers.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                    continue;
                };
                let (mut client_in, mut upstream_out) =
                    (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut client_in, &mut upstream_out);
                    let _ = upstream_out.shutdown(std::net::Shutdown::Write);
                });
                // One buffer per connection, so answers on parallel connections never interleave.
                let connection_log = Arc::new(Mutex::new(Vec::new()));
                recorded.lock().unwrap().push(connection_log.clone());
                let (mut upstream_in, mut client_out) = (upstream, client);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    loop {
                        match upstream_in.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                connection_log.lock().unwrap().extend_from_slice(&buf[..n]);
                                if client_out.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = client_out.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        RecordingProxy { base_url, answers }
    }

    /// Every `access_token` value the upstream sent through this proxy.
    pub fn access_tokens(&self) -> Vec<String> {
        let connections = self.answers.lock().unwrap();
        let mut tokens = Vec::new();
        for connection in connections.iter() {
            let text = String::from_utf8_lossy(&connection.lock().unwrap()).into_owned();
            tokens.extend(
                text.split("\"access_token\":\"")
                    .skip(1)
                    .filter_map(|rest| rest.split('"').next())
                    .map(str::to_owned),
            );
        }
        tokens
    }
}
