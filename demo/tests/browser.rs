//! The demo page in a real browser: headless Chromium, driven over WebDriver (fantoccini and
//! chromedriver), against the real service and the Genesys emulator, all started by this test on
//! random ports of 127.0.0.1.
//!
//! Two demo servers play two websites: the service allows the first origin and not the second.
//! Two instances of the service run as compose runs them: `api` (the tutorial's guest token, the
//! web-messaging auth code, and the OpenID Connect provider Genesys redeems codes at) and
//! `api-messaging` (`guest.upstream = "web-messaging"`), sharing the signing key, so a code minted by
//! one is redeemed at the other. The test looks at what a visitor sees, as a visitor would: a
//! token, a refusal, an automatic renewal and a rate limit; then the stand-in login, a chat with
//! the agent in both modes, the revoked session refused, an invalid sign-in, a visitor not signed
//! in and a deployment switched off. It saves a screenshot of each state to
//! `target/browser-artifacts/<state>.png`. Without `chromium` and `chromedriver` it is skipped with
//! a message naming the Debian packages. A second test, run by `cargo xtask e2e`, opens the page
//! the compose stack publishes, sees a token and chats in both modes.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use api::{Application, Settings};
use demo::stand_in_login::{DEFAULT_AUDIENCE, DEFAULT_ISSUER};
use demo::{BaseUrl, PageConfig, ServeOptions, Site, StandInLogin, WebSocketUrl};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use mock_genesys::{DEFAULT_DEPLOYMENT_ID, MockServer, MockSettings, RequestDirection};
use serde_json::{Value, json};

/// The emulator's guest route, the one the service's guest-token requests end up calling.
const GUEST_PATH: &str = "/api/v2/webchat/instances/guests";
/// Genesys' revocation of a web-messaging session.
const REVOKE_PATH: &str = "/api/v2/webdeployments/token/revoke";
/// The committed development key of the stand-in login, which `config/test.toml` trusts.
const SITE_SESSION_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../config/dev-keys/site-session-hs256.key"
);
/// The OpenID Connect client the emulator's deployment holds (`config/test.toml`'s; public test values).
const OIDC_CLIENT_ID: &str = "genesys-local";
const OIDC_CLIENT_SECRET: &str = "genesys-local-secret";
/// Who the stand-in login signs in.
const VISITOR_NAME: &str = "Ada Lovelace";
const VISITOR_EMAIL: &str = "ada@example.com";
/// The most any page state may take to appear.
const STATE_TIMEOUT: Duration = Duration::from_secs(20);
/// The window of the in-process test's screenshots.
const WINDOW: &str = "--window-size=1200,900";
/// A window that holds the whole page (both flows) at its widest layout.
const WHOLE_PAGE_WINDOW: &str = "--window-size=1200,1500";

#[actix_rt::test]
async fn the_demo_page_gets_renews_and_explains_guest_tokens_in_a_real_browser() {
    let Some(browser) = Browser::installed() else {
        return skip("the_demo_page_gets_renews_and_explains_guest_tokens_in_a_real_browser");
    };
    let started = Instant::now();
    let artifacts = artifacts_dir();
    let stack = Stack::start().await;
    let driver = Chromedriver::start(&browser, &artifacts, "chromedriver.log").await;
    let client = driver.session(&browser, WINDOW).await;
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

    // 5. The stand-in login signs the visitor in; the page shows the site session by its first
    //    characters only.
    page.open(&stack.allowed_url).await;
    page.sign_in().await;
    let signed_in = page
        .wait_for_chat("signed-in", |chat| chat.login_state == "signed-in")
        .await;
    assert!(
        signed_in
            .login
            .contains("Signed in as Ada Lovelace <ada@example.com>"),
        "{signed_in:?}"
    );
    page.assert_no_secret_in_full("signed-in").await;
    page.screenshot("signed-in").await;

    // 6. Messenger mode: the service's code, exchanged by Genesys (which redeems it at the
    //    service), then an authenticated session on the WebSocket and the agent's reply.
    page.click("chat-mode-messenger").await;
    page.click("chat-start").await;
    let connected = page
        .wait_for_chat("messenger-connected", |chat| chat.connected_as(VISITOR_EMAIL))
        .await;
    assert!(
        connected.steps.iter().any(|s| s.contains("one-time code")),
        "{connected:?}"
    );
    assert_eq!(
        stack.redemptions(),
        [200],
        "Genesys redeemed the code at the service"
    );
    page.say("hello from the Messenger").await;
    page.wait_for_chat("messenger-chat", |chat| {
        chat.agent
            .iter()
            .any(|text| text == "echo: hello from the Messenger")
    })
    .await;
    page.assert_no_secret_in_full("messenger-chat").await;
    page.screenshot("messenger-chat").await;

    // 7. Custom-widget mode: `api-messaging` runs the exchange itself; the code it minted is
    //    redeemed at `api`, the issuer, because both hold the same signing key.
    page.click("chat-mode-custom").await;
    page.click("chat-start").await;
    let custom = page
        .wait_for_chat("custom-widget-connected", |chat| chat.connected_as(VISITOR_EMAIL))
        .await;
    assert!(
        custom
            .steps
            .iter()
            .any(|s| s.contains(&format!("for guest {VISITOR_EMAIL}"))),
        "{custom:?}"
    );
    assert_eq!(stack.redemptions(), [200, 200]);
    page.say("hello from a custom widget").await;
    page.wait_for_chat("custom-widget-chat", |chat| {
        chat.agent
            .iter()
            .any(|text| text == "echo: hello from a custom widget")
    })
    .await;
    page.assert_no_secret_in_full("custom-widget-chat").await;
    page.screenshot("custom-widget-chat").await;

    // 8. Revoked: Genesys ends the session, and configuring it again with the same JWT is refused.
    page.click("chat-revoke").await;
    let revoked = page
        .wait_for_chat("revoked", |chat| {
            chat.state == "error"
                && chat
                    .status
                    .contains("Session revoked: Genesys refused to configure it again")
        })
        .await;
    assert!(
        revoked.status.contains("Session authentication failed"),
        "{revoked:?}"
    );
    assert!(
        revoked.send_disabled,
        "no chatting on a revoked session: {revoked:?}"
    );
    let revocations: Vec<u16> = stack
        .mock
        .requests(Some(REVOKE_PATH))
        .iter()
        .filter(|e| e.method == "DELETE")
        .map(|e| e.status)
        .collect();
    assert_eq!(revocations, [204], "one revocation, after its CORS preflight");
    page.screenshot("revoked").await;

    // 9. A site session whose signature does not verify is refused, and the page says so.
    page.tamper_with_the_site_session().await;
    page.open(&stack.allowed_url).await;
    page.click("chat-mode-messenger").await;
    page.click("chat-start").await;
    page.wait_for_chat("session-invalid", |chat| {
        chat.state == "error"
            && chat
                .status
                .contains("Your sign-in has expired or is no longer valid")
            && chat.status.contains("signature")
    })
    .await;
    page.screenshot("session-invalid").await;

    // 10. Signed out: the session is forgotten, and the service will not issue a code.
    page.click("login-sign-out").await;
    let signed_out = page
        .wait_for_chat("signed-out", |chat| chat.login_state == "signed-out")
        .await;
    assert!(!signed_out.session_stored, "{signed_out:?}");
    page.click("chat-start").await;
    page.wait_for_chat("not-signed-in", |chat| {
        chat.state == "error" && chat.status.contains("You are not signed in")
    })
    .await;
    assert_eq!(
        stack.redemptions().len(),
        2,
        "nothing issued to a visitor not signed in"
    );
    page.screenshot("not-signed-in").await;

    // 11. The deployment is switched off in Genesys: Genesys' exchange refuses at once; the
    //     service refuses once its cached reading of the deployment is renewed.
    page.sign_in().await;
    page.wait_for_chat("signed-in-again", |chat| chat.login_state == "signed-in")
        .await;
    stack
        .admin(
            "PUT",
            &format!("/__admin/deployments/{DEFAULT_DEPLOYMENT_ID}"),
            stack.deployment("Inactive"),
        )
        .await;
    page.click("chat-start").await;
    page.wait_for_chat("deployment-inactive-messenger", |chat| {
        chat.state == "error" && chat.status.contains("Chat is switched off")
    })
    .await;
    page.screenshot("deployment-inactive-messenger").await;
    stack.wait_until_messaging_api_sees_the_deployment_off().await;
    page.click("chat-mode-custom").await;
    page.click("chat-start").await;
    let inactive = page
        .wait_for_chat("deployment-inactive", |chat| {
            chat.state == "error" && chat.status.contains("Chat is switched off")
        })
        .await;
    assert!(
        inactive.status.contains("try again in 60 seconds"),
        "Retry-After: {inactive:?}"
    );
    assert_eq!(
        stack.redemptions().len(),
        2,
        "no code exchanged for an inactive deployment"
    );
    page.screenshot("deployment-inactive").await;

    client.close().await.expect("the browser session closes");
    eprintln!(
        "browser test: 12 states in {:.1} s, screenshots in {}",
        started.elapsed().as_secs_f64(),
        artifacts.display()
    );
}

/// After `cargo xtask up`: the page the compose stack publishes gets a token, and a visitor signed
/// in with the stand-in login chats with the agent in both modes, in a real browser. That proves
/// the stack's wiring: Genesys (the emulator) redeems codes at `api` by its compose name, and
/// `api-messaging` shares `api`'s signing key. `cargo xtask e2e` runs it with `CONTRACT_DEMO_URL`
/// set. Its last screenshot, `compose-chat.png`, shows the whole page after a chat.
#[actix_rt::test]
#[ignore = "needs the compose stack: run `cargo xtask e2e`"]
async fn the_compose_stacks_demo_page_gets_a_token_and_chats_in_both_modes() {
    let url = std::env::var("CONTRACT_DEMO_URL")
        .expect("CONTRACT_DEMO_URL is not set: run this through `cargo xtask e2e`");
    let Some(browser) = Browser::installed() else {
        return skip("the_compose_stacks_demo_page_gets_a_token_and_chats_in_both_modes");
    };
    let artifacts = artifacts_dir();
    let driver = Chromedriver::start(&browser, &artifacts, "chromedriver-compose.log").await;
    // Tall enough for the whole page, so the last screenshot shows both flows.
    let client = driver.session(&browser, WHOLE_PAGE_WINDOW).await;
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

    page.sign_in().await;
    page.wait_for_chat("compose-signed-in", |chat| chat.login_state == "signed-in")
        .await;
    for (mode, text) in [
        ("chat-mode-messenger", "hello from the Messenger"),
        ("chat-mode-custom", "hello from a custom widget"),
    ] {
        page.click(mode).await;
        page.click("chat-start").await;
        page.wait_for_chat(&format!("compose-{mode}-connected"), |chat| {
            chat.connected_as(VISITOR_EMAIL)
        })
        .await;
        page.say(text).await;
        let reply = format!("echo: {text}");
        page.wait_for_chat(&format!("compose-{mode}-reply"), |chat| {
            chat.agent.contains(&reply)
        })
        .await;
        page.assert_no_secret_in_full(mode).await;
    }
    page.scroll_to_top().await;
    page.screenshot("compose-chat").await;
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

/// The emulator, the real service twice (`api` and `api-messaging`) and two demo servers, on
/// random ports of 127.0.0.1.
struct Stack {
    mock: MockServer,
    allowed_url: String,
    allowed_origin: String,
    refused_url: String,
    refused_origin: String,
    /// `api`'s base URL, which is also the OpenID Connect issuer Genesys redeems codes at.
    issuer: String,
    messaging_api_url: String,
}

impl Stack {
    async fn start() -> Stack {
        let mock = MockServer::start(MockSettings::default()).expect("the emulator starts");
        // Both sites' ports first: the service must know the allowed origin before it starts.
        let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
        let refused = TcpListener::bind("127.0.0.1:0").unwrap();
        let allowed_origin = format!("http://127.0.0.1:{}", allowed.local_addr().unwrap().port());
        let refused_origin = format!("http://127.0.0.1:{}", refused.local_addr().unwrap().port());
        // The issuer is `api`'s own URL, so its port is chosen before it starts.
        let api_port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let issuer = format!("http://127.0.0.1:{api_port}");
        let websocket_url = format!("ws://127.0.0.1:{}/v1", mock.port());
        let mut stack = Stack {
            mock,
            allowed_url: format!("{allowed_origin}/"),
            allowed_origin,
            refused_url: format!("{refused_origin}/"),
            refused_origin,
            issuer,
            messaging_api_url: String::new(),
        };
        // Genesys' deployment: allows the first site, and redeems codes at `api`.
        stack
            .admin(
                "PUT",
                &format!("/__admin/deployments/{DEFAULT_DEPLOYMENT_ID}"),
                stack.deployment("Active"),
            )
            .await;

        let redirect_uri = format!("{}/", stack.allowed_origin);
        let common = [
            ("APP_ENV", "test"),
            ("GENESYS_BASE_URL", &stack.mock.base_url()),
            ("FRONTEND_ORIGIN", &stack.allowed_origin),
            ("APP__OIDC__ISSUER", &stack.issuer),
            ("APP__OIDC__REDIRECT_URIS", &redirect_uri),
            ("APP__WEB_MESSAGING__WEBSOCKET_URL", &websocket_url),
        ];
        let api_url = start_api(&common, &[("PORT", &api_port.to_string())]).await;
        assert_eq!(api_url, stack.issuer);
        // Reads the deployment every second, so the test sees it switched off without a long wait.
        stack.messaging_api_url = start_api(
            &common,
            &[
                ("APP__GUEST__UPSTREAM", "web-messaging"),
                ("APP__WEB_MESSAGING__DEPLOYMENT_CACHE_SECONDS", "1"),
            ],
        )
        .await;

        let config = PageConfig {
            api_base_url: BaseUrl::parse(&api_url).unwrap(),
            messaging_api_base_url: BaseUrl::parse(&stack.messaging_api_url).unwrap(),
            genesys_base_url: BaseUrl::parse(&stack.mock.base_url()).unwrap(),
            web_socket_url: WebSocketUrl::parse(&websocket_url).unwrap(),
            ..PageConfig::default()
        };
        let login = StandInLogin::from_key_file(
            Path::new(SITE_SESSION_KEY),
            DEFAULT_ISSUER,
            DEFAULT_AUDIENCE,
            Duration::from_secs(600),
        )
        .expect("the development key signs site sessions");
        let site_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("site");
        for listener in [allowed, refused] {
            let site = Site::new(&site_dir, config.clone())
                .expect("the site is complete")
                .with_stand_in_login(login.clone());
            let server = demo::serve(listener, site, ServeOptions::in_process()).expect("a demo server");
            actix_rt::spawn(server);
        }
        stack
    }

    /// The emulator's default deployment in `status`, as `PUT /__admin/deployments/{id}` takes it.
    fn deployment(&self, status: &str) -> Value {
        json!({
            "name": "Browser test",
            "status": status,
            "allowedDomains": [self.allowed_origin],
            "authentication": {
                "discoveryUri": format!("{}/.well-known/openid-configuration", self.issuer),
                "clientId": OIDC_CLIENT_ID,
                "clientSecret": OIDC_CLIENT_SECRET,
            },
        })
    }

    /// How many guest calls reached the emulator so far.
    fn guest_calls(&self) -> usize {
        self.mock.requests(Some(GUEST_PATH)).len()
    }

    /// The statuses of Genesys' redemptions of codes at `api`'s token endpoint, oldest first.
    fn redemptions(&self) -> Vec<u16> {
        self.mock
            .requests_by(None, Some(RequestDirection::Outbound))
            .iter()
            .filter(|e| e.path.ends_with("/oidc/token"))
            .map(|e| e.status)
            .collect()
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

    /// Waits until `api-messaging`'s readiness reports the deployment it last read as not active.
    async fn wait_until_messaging_api_sees_the_deployment_off(&self) {
        let url = format!("{}/readyz", self.messaging_api_url);
        let client = http_client();
        let deadline = Instant::now() + STATE_TIMEOUT;
        while Instant::now() < deadline {
            if client.get(&url).send().await.is_ok_and(|r| r.status() == 503) {
                return;
            }
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{url} did not turn 503 within {} s", STATE_TIMEOUT.as_secs());
    }
}

/// Starts the service with `config/test.toml` and the `common` and `own` variables, and waits
/// until it is ready; returns its base URL.
async fn start_api(common: &[(&str, &str)], own: &[(&str, &str)]) -> String {
    let config_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let env: HashMap<String, String> = common
        .iter()
        .chain(own)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let settings = Settings::load(&config_dir, &env).expect("test settings are valid");
    let app = Application::build(settings).await.expect("the service starts");
    let url = format!("http://127.0.0.1:{}", app.port());
    actix_rt::spawn(app.run_until_stopped());
    wait_until_ok(&format!("{url}/readyz")).await;
    url
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

    /// A new headless Chromium session with a fixed `window` (`--window-size=W,H`).
    async fn session(&self, browser: &Browser, window: &str) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": browser.chromium,
                // Root in CI needs --no-sandbox; containers have a small /dev/shm.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--no-default-browser-check", window],
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

/// What the signed-in chat panel shows.
#[derive(Debug)]
struct ChatState {
    /// The status line's `data-state`: idle, pending, ok or error.
    state: String,
    status: String,
    /// The login line's `data-state`: signed-out, signed-in, expired or unavailable.
    login_state: String,
    login: String,
    /// What the widget did, in order.
    steps: Vec<String>,
    /// The agent's messages in the conversation.
    agent: Vec<String>,
    send_disabled: bool,
    /// Whether the tab still keeps a site session.
    session_stored: bool,
}

impl ChatState {
    /// Connected to Genesys with an authenticated session as `subject`.
    fn connected_as(&self, subject: &str) -> bool {
        self.state == "ok"
            && self
                .status
                .contains(&format!("Connected: an authenticated chat as {subject}"))
    }
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

    /// Clicks the element with this id, as a visitor would.
    async fn click(&self, id: &str) {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("#{id} is on the page: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("#{id} can be clicked: {e}"));
    }

    /// Types `text` into the field with this id, replacing what it held.
    async fn type_into(&self, id: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("#{id} is on the page: {e}"));
        field.clear().await.expect("the field can be cleared");
        field.send_keys(text).await.expect("the field takes keys");
    }

    /// Scrolls back to the top of the page (a click scrolls its element into view).
    async fn scroll_to_top(&self) {
        self.client
            .execute("window.scrollTo(0, 0);", vec![])
            .await
            .expect("the page scrolls");
    }

    /// Fills in the stand-in login's form and submits it.
    async fn sign_in(&self) {
        self.type_into("login-name", VISITOR_NAME).await;
        self.type_into("login-email", VISITOR_EMAIL).await;
        self.click("login-submit").await;
    }

    /// Sends `text` to the agent through the chat box.
    async fn say(&self, text: &str) {
        self.type_into("chat-input", text).await;
        self.click("chat-send").await;
    }

    /// Spoils the signature of the site session the page keeps, as a forged or foreign one would be.
    async fn tamper_with_the_site_session(&self) {
        let script = r#"
            const key = "demo.siteSession";
            const session = JSON.parse(sessionStorage.getItem(key));
            const [header, claims, signature] = session.sessionToken.split(".");
            const spoilt = (signature[0] === "A" ? "B" : "A") + signature.slice(1);
            session.sessionToken = [header, claims, spoilt].join(".");
            sessionStorage.setItem(key, JSON.stringify(session));"#;
        self.client
            .execute(script, vec![])
            .await
            .expect("the page keeps a site session");
    }

    /// Asserts that no token, code or session appears on the page in full: no run of 40 or more
    /// base64url and dot characters (every JWT and sealed code is longer; ids and prefixes shorter).
    async fn assert_no_secret_in_full(&self, state: &str) {
        let script = r#"return document.body.innerText.match(/[A-Za-z0-9_.-]{40,}/g) ?? [];"#;
        let found = self
            .client
            .execute(script, vec![])
            .await
            .expect("the page's text");
        assert_eq!(found, json!([]), "{state}: the page shows a secret in full");
    }

    async fn chat(&self) -> Option<ChatState> {
        let script = r##"
            const text = (id) => document.getElementById(id)?.textContent ?? "";
            const all = (selector) => Array.from(document.querySelectorAll(selector), (e) => e.textContent);
            return {
                state: document.getElementById("chat-status")?.dataset.state ?? "",
                status: text("chat-status"),
                loginState: document.getElementById("login-state")?.dataset.state ?? "",
                login: text("login-state"),
                steps: all("#chat-steps li"),
                agent: all('#chat-log [data-from="agent"] .text'),
                sendDisabled: document.getElementById("chat-send")?.disabled ?? true,
                sessionStored: sessionStorage.getItem("demo.siteSession") !== null,
            };"##;
        let value = self.client.execute(script, vec![]).await.ok()?;
        let field = |name: &str| value[name].as_str().unwrap_or_default().to_owned();
        let list = |name: &str| {
            value[name]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        Some(ChatState {
            state: field("state"),
            status: field("status"),
            login_state: field("loginState"),
            login: field("login"),
            steps: list("steps"),
            agent: list("agent"),
            send_disabled: value["sendDisabled"].as_bool().unwrap_or(true),
            session_stored: value["sessionStored"].as_bool().unwrap_or(false),
        })
    }

    /// Polls the chat panel until `condition` holds; after [`STATE_TIMEOUT`], saves
    /// `failed-<name>.png` and panics with what the page showed.
    async fn wait_for_chat(&self, name: &str, condition: impl Fn(&ChatState) -> bool) -> ChatState {
        let deadline = Instant::now() + STATE_TIMEOUT;
        let mut last = None;
        while Instant::now() < deadline {
            if let Some(chat) = self.chat().await {
                if condition(&chat) {
                    return chat;
                }
                last = Some(chat);
            }
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
        self.screenshot(&format!("failed-{name}")).await;
        panic!(
            "the chat did not reach {name:?} within {} s; it showed {last:?}",
            STATE_TIMEOUT.as_secs()
        );
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let path = self.artifacts.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}
