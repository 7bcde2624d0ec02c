//! The static file server: the site's files (actix-files), `GET /config.json`, `GET /healthz`, the
//! stand-in login (`POST /stand-in-login`, local use only) and the security headers on every answer.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_files::Files;
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Logger};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde::Serialize;

use crate::config::PageConfig;
use crate::stand_in_login::{SignInForm, StandInLogin};

/// The page every other file hangs off; the site is unusable without it.
pub const INDEX: &str = "index.html";
/// Where the page posts the stand-in login's form.
pub const STAND_IN_LOGIN_PATH: &str = "/stand-in-login";
/// Largest sign-in form accepted, in bytes (a name and an e-mail address).
const SIGN_IN_BODY_LIMIT: usize = 1024;

/// What the server serves: a directory of files, the page's run-time settings and, for local use
/// only, the stand-in login.
#[derive(Debug, Clone)]
pub struct Site {
    /// Holds `index.html`, `app.js` and `style.css`.
    pub dir: PathBuf,
    /// Served as `/config.json`; its origins make the Content-Security-Policy.
    pub config: PageConfig,
    /// Signs site sessions for `POST /stand-in-login`; `None` turns sign-in off.
    pub login: Option<StandInLogin>,
}

/// `GET /config.json`: the page's settings and whether the stand-in login can sign anyone in.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConfigJson<'a> {
    #[serde(flatten)]
    config: &'a PageConfig,
    sign_in_available: bool,
}

/// A refusal of the stand-in login: a stable code and what to do about it.
#[derive(Serialize)]
struct SignInProblem<'a> {
    code: &'a str,
    detail: &'a str,
}

impl Site {
    /// The site in `dir` with `config`; fails, naming the path, unless `dir` holds `index.html`.
    pub fn new(dir: impl Into<PathBuf>, config: PageConfig) -> Result<Site, String> {
        let dir = dir.into();
        if !dir.join(INDEX).is_file() {
            return Err(format!(
                "{} holds no {INDEX}: point --site-dir (DEMO_SITE_DIR) at the demo's site/ directory",
                dir.display()
            ));
        }
        Ok(Site {
            dir,
            config,
            login: None,
        })
    }

    /// The same site with the stand-in login on (local use only).
    pub fn with_stand_in_login(self, login: StandInLogin) -> Site {
        Site {
            login: Some(login),
            ..self
        }
    }
}

/// How the server runs: the binary handles signals, tests run several servers in one process.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Worker threads; 0 = one per core.
    pub workers: usize,
    /// Whether SIGTERM (graceful) and SIGINT/SIGQUIT (at once) stop the server.
    pub handle_signals: bool,
    /// How long a graceful stop waits for requests in flight.
    pub shutdown_timeout: Duration,
}

impl ServeOptions {
    /// For the binary: one worker per core, signals handled, 5 s to finish requests in flight.
    pub fn standalone() -> Self {
        ServeOptions {
            workers: 0,
            handle_signals: true,
            shutdown_timeout: Duration::from_secs(5),
        }
    }

    /// For tests: one worker, no signal handlers, stop at once.
    pub fn in_process() -> Self {
        ServeOptions {
            workers: 1,
            handle_signals: false,
            shutdown_timeout: Duration::ZERO,
        }
    }
}

/// The application for one worker.
pub fn app(
    site: Arc<Site>,
    csp: HeaderValue,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let files = Files::new("/", &site.dir)
        .index_file(INDEX)
        .use_etag(true)
        .use_last_modified(true)
        .disable_content_disposition()
        .default_handler(web::to(not_found));
    App::new()
        .app_data(web::Data::from(site))
        .route("/config.json", web::get().to(config_json))
        .route("/healthz", web::get().to(healthz))
        .service(
            web::resource(STAND_IN_LOGIN_PATH)
                .app_data(web::PayloadConfig::new(SIGN_IN_BODY_LIMIT))
                .route(web::post().to(stand_in_login)),
        )
        .service(files)
        .wrap(
            DefaultHeaders::new()
                .add((header::CONTENT_SECURITY_POLICY, csp))
                .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .add((header::REFERRER_POLICY, "no-referrer"))
                // Only where the handler set none: edits to the site show on the next load.
                .add((header::CACHE_CONTROL, "no-cache")),
        )
        .wrap(Logger::new(r#"%a "%r" %s %b %Dms"#))
}

/// Serves `site` on `listener`. Must run inside an actix system; the server stops on its handle
/// (or on a signal with [`ServeOptions::handle_signals`]).
pub fn serve(listener: TcpListener, site: Site, options: ServeOptions) -> std::io::Result<Server> {
    let csp = HeaderValue::from_str(&site.config.content_security_policy()).map_err(|e| {
        std::io::Error::other(format!("the Content-Security-Policy is not a header value: {e}"))
    })?;
    let site = Arc::new(site);
    let mut server = HttpServer::new(move || app(site.clone(), csp.clone()))
        .shutdown_timeout(options.shutdown_timeout.as_secs());
    if options.workers > 0 {
        server = server.workers(options.workers);
    }
    if !options.handle_signals {
        server = server.disable_signals();
    }
    Ok(server.listen(listener)?.run())
}

async fn config_json(site: web::Data<Site>) -> HttpResponse {
    HttpResponse::Ok()
        // Settings may change with a restart; a cached copy would point the page at the old API.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ConfigJson {
            config: &site.config,
            sign_in_available: site.login.is_some(),
        })
}

/// `POST /stand-in-login` with `{"name", "email"}` as JSON: a site session for that visitor, or a
/// problem (`sign_in_unavailable` without a key, `unsupported_media_type`, `invalid_sign_in`).
/// JSON only, so no other site's plain form can post here.
async fn stand_in_login(req: HttpRequest, site: web::Data<Site>, body: web::Bytes) -> HttpResponse {
    let problem = |mut response: actix_web::HttpResponseBuilder, code: &str, detail: &str| {
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(SignInProblem { code, detail })
    };
    let Some(login) = &site.login else {
        return problem(
            HttpResponse::ServiceUnavailable(),
            "sign_in_unavailable",
            "the stand-in login is off: demo-server was started without --site-session-key-file",
        );
    };
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return problem(
            HttpResponse::UnsupportedMediaType(),
            "unsupported_media_type",
            "send the form as JSON with Content-Type: application/json",
        );
    }
    let form = match serde_json::from_slice::<SignInForm>(&body) {
        Ok(form) => form,
        Err(_) => {
            return problem(
                HttpResponse::BadRequest(),
                "invalid_sign_in",
                "send {\"name\": \"…\", \"email\": \"…\"} and nothing else",
            );
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    match login.sign_in(&form, now) {
        Ok(session) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(session),
        Err(detail) => problem(HttpResponse::BadRequest(), "invalid_sign_in", &detail),
    }
}

async fn healthz(site: web::Data<Site>) -> HttpResponse {
    if Path::new(&site.dir).join(INDEX).is_file() {
        HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("ok\n")
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body(format!("{INDEX} is missing from the site directory\n"))
    }
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body("not found\n")
}

#[cfg(test)]
mod tests {
    use actix_web::test::{TestRequest, call_service, init_service, read_body};

    use super::*;

    fn site_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("site")
    }

    fn csp() -> HeaderValue {
        HeaderValue::from_str(&PageConfig::default().content_security_policy()).unwrap()
    }

    fn site() -> Arc<Site> {
        Arc::new(Site::new(site_dir(), PageConfig::default()).unwrap())
    }

    /// A response header as text ("" when absent).
    fn header(response: &ServiceResponse<impl MessageBody>, name: header::HeaderName) -> &str {
        response.headers().get(name).map_or("", |v| v.to_str().unwrap())
    }

    #[actix_web::test]
    async fn serves_the_page_with_its_security_headers() {
        let app = init_service(app(site(), csp())).await;
        let response = call_service(&app, TestRequest::get().uri("/").to_request()).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(&response, header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            header(&response, header::CONTENT_SECURITY_POLICY),
            PageConfig::default().content_security_policy()
        );
        assert_eq!(header(&response, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert_eq!(header(&response, header::REFERRER_POLICY), "no-referrer");
        assert_eq!(header(&response, header::CACHE_CONTROL), "no-cache");
        let body = read_body(response).await;
        assert!(String::from_utf8_lossy(&body).contains("<script src=\"app.js\""));
    }

    #[actix_web::test]
    async fn serves_the_script_and_styles_with_their_types() {
        let app = init_service(app(site(), csp())).await;
        for (path, content_type) in [("/app.js", "text/javascript"), ("/style.css", "text/css")] {
            let response = call_service(&app, TestRequest::get().uri(path).to_request()).await;
            assert_eq!(response.status(), 200, "{path}");
            let served = header(&response, header::CONTENT_TYPE);
            assert!(served.starts_with(content_type), "{path}: {served}");
        }
    }

    #[actix_web::test]
    async fn config_json_is_never_cached() {
        let app = init_service(app(site(), csp())).await;
        let response = call_service(&app, TestRequest::get().uri("/config.json").to_request()).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, header::CACHE_CONTROL), "no-store");
        let body: serde_json::Value = serde_json::from_slice(&read_body(response).await).unwrap();
        assert_eq!(body["apiBaseUrl"], "http://localhost:3000");
        assert_eq!(body["messagingApiBaseUrl"], "http://localhost:3001");
        assert_eq!(body["webSocketUrl"], "ws://localhost:8081/v1");
        assert_eq!(body["signInAvailable"], false);
    }

    fn signing_site() -> Arc<Site> {
        let login = StandInLogin::new(
            b"a-local-test-secret-of-at-least-32-bytes",
            "http://localhost:8080",
            "guest-token-api",
            Duration::from_secs(600),
        )
        .unwrap();
        Arc::new(
            Site::new(site_dir(), PageConfig::default())
                .unwrap()
                .with_stand_in_login(login),
        )
    }

    fn sign_in_request(content_type: &str, body: &str) -> TestRequest {
        TestRequest::post()
            .uri(STAND_IN_LOGIN_PATH)
            .insert_header((header::CONTENT_TYPE, content_type))
            .set_payload(body.to_owned())
    }

    #[actix_web::test]
    async fn the_stand_in_login_signs_a_visitor_in_when_a_key_is_configured() {
        let app = init_service(app(signing_site(), csp())).await;
        let config = call_service(&app, TestRequest::get().uri("/config.json").to_request()).await;
        let config: serde_json::Value = serde_json::from_slice(&read_body(config).await).unwrap();
        assert_eq!(config["signInAvailable"], true);

        let body = r#"{"name": "Ada Lovelace", "email": "ada@example.com"}"#;
        let response = call_service(&app, sign_in_request("application/json", body).to_request()).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, header::CACHE_CONTROL), "no-store");
        let session: serde_json::Value = serde_json::from_slice(&read_body(response).await).unwrap();
        assert_eq!(session["subject"], "ada@example.com");
        assert_eq!(
            session["session_token"],
            serde_json::Value::Null,
            "camelCase fields"
        );
        assert_eq!(
            session["sessionToken"].as_str().unwrap().split('.').count(),
            3,
            "a JWT"
        );
    }

    #[actix_web::test]
    async fn the_stand_in_login_refuses_what_is_not_a_json_form() {
        let app = init_service(app(signing_site(), csp())).await;
        let form = "name=Ada&email=ada%40example.com";
        let cases = [
            (
                sign_in_request("application/x-www-form-urlencoded", form),
                415,
                "unsupported_media_type",
            ),
            (sign_in_request("application/json", "{}"), 400, "invalid_sign_in"),
            (
                sign_in_request("application/json", r#"{"name": "Ada", "email": "nope"}"#),
                400,
                "invalid_sign_in",
            ),
        ];
        for (request, status, code) in cases {
            let response = call_service(&app, request.to_request()).await;
            assert_eq!(response.status(), status);
            let problem: serde_json::Value = serde_json::from_slice(&read_body(response).await).unwrap();
            assert_eq!(problem["code"], code, "{problem}");
        }
        let huge = format!(
            r#"{{"name": "{}", "email": "ada@example.com"}}"#,
            "x".repeat(2000)
        );
        let response = call_service(&app, sign_in_request("application/json", &huge).to_request()).await;
        assert_eq!(response.status(), 413);
        let get = call_service(&app, TestRequest::get().uri(STAND_IN_LOGIN_PATH).to_request()).await;
        assert_eq!(get.status(), 405);
    }

    #[actix_web::test]
    async fn without_a_key_the_stand_in_login_says_sign_in_is_unavailable() {
        let app = init_service(app(site(), csp())).await;
        let body = r#"{"name": "Ada", "email": "ada@example.com"}"#;
        let response = call_service(&app, sign_in_request("application/json", body).to_request()).await;
        assert_eq!(response.status(), 503);
        let problem: serde_json::Value = serde_json::from_slice(&read_body(response).await).unwrap();
        assert_eq!(problem["code"], "sign_in_unavailable");
        assert!(problem.get("sessionToken").is_none());
    }

    #[actix_web::test]
    async fn unknown_paths_and_escapes_from_the_site_directory_are_not_found() {
        let app = init_service(app(site(), csp())).await;
        for path in [
            "/missing.html",
            "/../Cargo.toml",
            "/%2e%2e/Cargo.toml",
            "/.hidden",
        ] {
            let response = call_service(&app, TestRequest::get().uri(path).to_request()).await;
            assert!(
                response.status().is_client_error(),
                "{path}: {}",
                response.status()
            );
        }
    }

    #[actix_web::test]
    async fn healthy_while_the_site_has_its_index() {
        let healthy = init_service(app(site(), csp())).await;
        let response = call_service(&healthy, TestRequest::get().uri("/healthz").to_request()).await;
        assert_eq!(response.status(), 200);

        let empty = std::env::temp_dir().join(format!("demo-site-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        let broken = Arc::new(Site {
            dir: empty,
            config: PageConfig::default(),
            login: None,
        });
        let unhealthy = init_service(app(broken, csp())).await;
        let response = call_service(&unhealthy, TestRequest::get().uri("/healthz").to_request()).await;
        assert_eq!(response.status(), 503);
    }

    #[test]
    fn a_directory_without_an_index_is_refused_with_a_hint() {
        let err = Site::new("/nonexistent", PageConfig::default()).unwrap_err();
        assert!(
            err.contains("/nonexistent") && err.contains("DEMO_SITE_DIR"),
            "{err}"
        );
    }
}
