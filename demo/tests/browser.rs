//! The demo page in a real browser: headless Chromium, driven over WebDriver (fantoccini and
//! chromedriver), against the real service and the Genesys emulator, all started by this test on
//! random ports of 127.0.0.1.
//!
//! Two demo servers play two websites: the service allows the first origin and not the second.
//! The test looks at what a visitor sees, as a visitor would: a token, a refusal, an automatic
//! renewal and a rate limit, and saves a screenshot of each state to
//! `target/browser-artifacts/<state>.png`. Without `chromium` and `chromedriver` it is skipped with
//! a message naming the Debian packages. A second test, run by `cargo xtask e2e`, opens the page
//! the compose stack publishes and sees a token.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use api::{Application, Settings};
use demo::{BaseUrl, PageConfig, ServeOptions, Site};
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use mock_genesys::{MockServer, MockSettings};
use serde_json::{Value, json};

/// The emulator's guest route, the one the service's guest-token requests end up calling.
const GUEST_PATH: &str = "/api/v2/webchat/instances/guests";
/// The most any page state may take to appear.
const STATE_TIMEOUT: Duration = Duration::from_secs(20);
/// The window every screenshot has.
const WINDOW: &str = "--window-size=1200,900";

#[actix_rt::test]
async fn the_demo_page_gets_renews_and_explains_guest_tokens_in_a_real_browser() {
    let Some(browser) = Browser::installed() else {
        return skip("the_demo_page_gets_renews_and_explains_guest_tokens_in_a_real_browser");
    };
    let started = Instant::now();
    let artifacts = artifacts_dir();
    let stack = Stack::start().await;
    let driver = Chromedriver::start(&browser, &artifacts, "chromedriver.log").await;
    let client = driver.session(&browser).await;
    let page = Page {
        client: &client,
        artifacts: &artifacts,
    };

    // 1. From the allowed origin, the page gets a token as soon as it loads.
    page.open(&stack.allowed_url).await;
    let first = page
        .wait_for("token", "ok", &["Token valid", "on page load"])
        .await;
    assert_eq!(first.guest_id.len(), 36, "a guest id (UUID): {first:?}");
    assert!(
        looks_like_uuid(&first.request_id),
        "the request id is shown: {first:?}"
    );
    assert!(
        first.next_request.starts_with("automatic renewal at"),
        "{first:?}"
    );
    assert_eq!(stack.guest_calls(), 1);
    page.screenshot("token").await;

    // 2. From the other origin, the browser withholds the answer (no CORS grant) and the page
    //    says why; nothing reaches Genesys.
    page.open(&stack.refused_url).await;
    let refused = page
        .wait_for("origin-refused", "error", &["is not allowed by the service"])
        .await;
    assert!(refused.status.contains(&stack.refused_origin), "{refused:?}");
    assert_eq!(refused.guest_id, "—", "{refused:?}");
    assert_eq!(stack.guest_calls(), 1, "a refused origin never reaches Genesys");
    page.screenshot("origin-refused").await;

    // 3. Short-lived tokens: the page fetches the next one on its own before this one expires.
    stack
        .admin("PATCH", "/__admin/settings", json!({"guestTokenTtlSeconds": 8}))
        .await;
    page.open(&stack.allowed_url).await;
    let short = page.wait_for("short-lived-token", "ok", &["on page load"]).await;
    let renewed = page
        .wait_until("renewed", |state| {
            state.state == "ok"
                && state.guest_id != short.guest_id
                && state.status.contains("automatic renewal")
        })
        .await;
    assert!(
        renewed.countdown != "expired",
        "renewed before expiry: {renewed:?}"
    );
    assert_eq!(stack.guest_calls(), 3, "one call on load, one renewal");
    page.screenshot("renewed").await;

    // 4. Genesys rate-limits the guest route beyond the service's retry budget: the page says so,
    //    with the wait from Retry-After (readable only because the service exposes it).
    stack
        .admin(
            "POST",
            "/__admin/faults",
            json!({"path": GUEST_PATH, "status": 429, "retryAfter": "120", "times": 0}),
        )
        .await;
    page.open(&stack.allowed_url).await;
    let limited = page
        .wait_for(
            "rate-limited",
            "error",
            &["Too many requests", "Try again in 2 minutes"],
        )
        .await;
    assert!(looks_like_uuid(&limited.request_id), "{limited:?}");
    assert!(
        limited.next_request.starts_with("automatic retry at"),
        "{limited:?}"
    );
    page.screenshot("rate-limited").await;

    client.close().await.expect("the browser session closes");
    eprintln!(
        "browser test: 4 states in {:.1} s, screenshots in {}",
        started.elapsed().as_secs_f64(),
        artifacts.display()
    );
}

/// After `cargo xtask up`: the page the compose stack publishes gets a token in a real browser.
/// `cargo xtask e2e` runs it with `CONTRACT_DEMO_URL` set.
#[actix_rt::test]
#[ignore = "needs the compose stack: run `cargo xtask e2e`"]
async fn the_compose_stacks_demo_page_gets_a_token() {
    let url = std::env::var("CONTRACT_DEMO_URL")
        .expect("CONTRACT_DEMO_URL is not set: run this through `cargo xtask e2e`");
    let Some(browser) = Browser::installed() else {
        return skip("the_compose_stacks_demo_page_gets_a_token");
    };
    let artifacts = artifacts_dir();
    let driver = Chromedriver::start(&browser, &artifacts, "chromedriver-compose.log").await;
    let client = driver.session(&browser).await;
    let page = Page {
        client: &client,
        artifacts: &artifacts,
    };
    page.open(&url).await;
    let shown = page
        .wait_for("compose-token", "ok", &["Token valid", "on page load"])
        .await;
    assert!(looks_like_uuid(&shown.guest_id), "{shown:?}");
    page.screenshot("compose-token").await;
    client.close().await.expect("the browser session closes");
}

/// `target/browser-artifacts/`: screenshots and the chromedriver log.
fn artifacts_dir() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is target/tmp");
    let dir = target.join("browser-artifacts");
    std::fs::create_dir_all(&dir).expect("the artifacts directory can be made");
    dir
}

fn skip(test: &str) {
    eprintln!(
        "SKIPPED {test}: it needs `chromium` and `chromedriver` on PATH, from the Debian packages \
         `chromium` and `chromium-driver` (apt-get install -y chromium chromium-driver)"
    );
}

fn looks_like_uuid(text: &str) -> bool {
    text.len() == 36 && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// The emulator, the real service and two demo servers, on random ports of 127.0.0.1.
struct Stack {
    mock: MockServer,
    allowed_url: String,
    refused_url: String,
    refused_origin: String,
}

impl Stack {
    async fn start() -> Stack {
        let mock = MockServer::start(MockSettings::default()).expect("the emulator starts");
        // Both sites' ports first: the service must know the allowed origin before it starts.
        let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
        let refused = TcpListener::bind("127.0.0.1:0").unwrap();
        let allowed_origin = format!("http://127.0.0.1:{}", allowed.local_addr().unwrap().port());
        let refused_origin = format!("http://127.0.0.1:{}", refused.local_addr().unwrap().port());

        let config_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        let env: HashMap<String, String> = [
            ("APP_ENV", "test"),
            ("GENESYS_BASE_URL", mock.base_url().as_str()),
            ("FRONTEND_ORIGIN", allowed_origin.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let settings = Settings::load(&config_dir, &env).expect("test settings are valid");
        let app = Application::build(settings).await.expect("the service starts");
        let api_url = format!("http://127.0.0.1:{}", app.port());
        actix_rt::spawn(app.run_until_stopped());
        wait_until_ok(&format!("{api_url}/readyz")).await;

        let config = PageConfig {
            api_base_url: BaseUrl::parse(&api_url).unwrap(),
            genesys_base_url: BaseUrl::parse(&mock.base_url()).unwrap(),
            ..PageConfig::default()
        };
        let site_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("site");
        for listener in [allowed, refused] {
            let site = Site::new(&site_dir, config.clone()).expect("the site is complete");
            let server = demo::serve(listener, site, ServeOptions::in_process()).expect("a demo server");
            actix_rt::spawn(server);
        }
        Stack {
            mock,
            allowed_url: format!("{allowed_origin}/"),
            refused_url: format!("{refused_origin}/"),
            refused_origin,
        }
    }

    /// How many guest calls reached the emulator so far.
    fn guest_calls(&self) -> usize {
        self.mock.requests(Some(GUEST_PATH)).len()
    }

    /// Calls the emulator's admin API over HTTP, as an operator would; panics unless it succeeds.
    async fn admin(&self, method: &str, path: &str, body: Value) {
        let url = format!("{}{path}", self.mock.base_url());
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let response = http_client()
            .request(method, &url)
            .send_json(&body)
            .await
            .expect("the emulator answers");
        assert!(response.status().is_success(), "{path}: {}", response.status());
    }
}

fn http_client() -> awc::Client {
    // awc's connector needs a crypto provider even for plain HTTP; any earlier install wins.
    let _ = rustls::crypto::ring::default_provider().install_default();
    awc::Client::builder().timeout(Duration::from_secs(10)).finish()
}

/// Polls `url` until it answers 200; panics after 30 s.
async fn wait_until_ok(url: &str) {
    let client = http_client();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if client.get(url).send().await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} did not answer 200 within 30 s");
}

/// Where the browser and its WebDriver are installed.
struct Browser {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

impl Browser {
    fn installed() -> Option<Browser> {
        Some(Browser {
            chromium: on_path("chromium")?,
            chromedriver: on_path("chromedriver")?,
        })
    }
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// A running chromedriver, stopped when dropped (with its browser, which it quits on SIGTERM).
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    async fn start(browser: &Browser, artifacts: &Path, log_name: &str) -> Chromedriver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(artifacts.join(log_name)).unwrap();
        let child = Command::new(&browser.chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("chromedriver starts");
        let driver = Chromedriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        wait_until_ok(&format!("{}/status", driver.url)).await;
        driver
    }

    /// A new headless Chromium session with a fixed window.
    async fn session(&self, browser: &Browser) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": browser.chromium,
                // Root in CI needs --no-sandbox; containers have a small /dev/shm.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--no-default-browser-check", WINDOW],
            }),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("chromedriver opens a Chromium session")
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // SIGTERM first: killed outright, chromedriver would leave Chromium running.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the guest-token panel shows.
#[derive(Debug)]
struct PanelState {
    /// The status line's `data-state`: idle, pending, ok or error.
    state: String,
    status: String,
    guest_id: String,
    countdown: String,
    next_request: String,
    request_id: String,
}

/// The browser's tab, with the test's ways of looking at it.
struct Page<'a> {
    client: &'a Client,
    artifacts: &'a Path,
}

impl Page<'_> {
    async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("the page loads");
    }

    async fn panel(&self) -> Option<PanelState> {
        let script = r#"
            const text = (id) => document.getElementById(id)?.textContent ?? "";
            return {
                state: document.getElementById("guest-status")?.dataset.state ?? "",
                status: text("guest-status"),
                guestId: text("guest-id"),
                countdown: text("guest-countdown"),
                next: text("guest-next"),
                requestId: text("guest-request-id"),
            };"#;
        let value = self.client.execute(script, vec![]).await.ok()?;
        let field = |name: &str| value[name].as_str().unwrap_or_default().to_owned();
        Some(PanelState {
            state: field("state"),
            status: field("status"),
            guest_id: field("guestId"),
            countdown: field("countdown"),
            next_request: field("next"),
            request_id: field("requestId"),
        })
    }

    /// Waits until the status line is in `state` and says every one of `phrases`.
    async fn wait_for(&self, name: &str, state: &str, phrases: &[&str]) -> PanelState {
        self.wait_until(name, |panel| {
            panel.state == state && phrases.iter().all(|phrase| panel.status.contains(phrase))
        })
        .await
    }

    /// Polls the panel until `condition` holds; after [`STATE_TIMEOUT`], saves
    /// `failed-<name>.png` and panics with what the page showed.
    async fn wait_until(&self, name: &str, condition: impl Fn(&PanelState) -> bool) -> PanelState {
        let deadline = Instant::now() + STATE_TIMEOUT;
        let mut last = None;
        while Instant::now() < deadline {
            if let Some(panel) = self.panel().await {
                if condition(&panel) {
                    return panel;
                }
                last = Some(panel);
            }
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
        self.screenshot(&format!("failed-{name}")).await;
        panic!(
            "the page did not reach {name:?} within {} s; it showed {last:?}",
            STATE_TIMEOUT.as_secs()
        );
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let path = self.artifacts.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}
