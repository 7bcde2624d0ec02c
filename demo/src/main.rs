//! `demo-server`: serves the demo page on its own origin, or checks the health of a running one.

use std::io::IsTerminal;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use demo::config::{
    DEFAULT_API_BASE_URL, DEFAULT_DEPLOYMENT_ID, DEFAULT_GENESYS_BASE_URL, DEFAULT_MESSAGING_API_BASE_URL,
    DEFAULT_QUEUE_ID, DEFAULT_WEBSOCKET_URL,
};
use demo::stand_in_login::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, DEFAULT_TTL_SECONDS};
use demo::{BaseUrl, PageConfig, ServeOptions, Site, StandInLogin, WebSocketUrl};
use uuid::Uuid;

/// The source tree's site: `cargo run` works from any directory; the image sets DEMO_SITE_DIR.
const DEFAULT_SITE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/site");

const AFTER_HELP: &str = "\
The page reads its settings from GET /config.json (apiBaseUrl, messagingApiBaseUrl,
genesysBaseUrl, webSocketUrl, queueId, deploymentId, signInAvailable); the
Content-Security-Policy lets it connect to exactly itself, both APIs, Genesys and its WebSocket.
Open the page on an origin the API allows (its FRONTEND_ORIGIN), e.g. http://localhost:8080.

The stand-in login (POST /stand-in-login) is FOR LOCAL USE ONLY: it signs anyone in as whoever
they say they are, with the HS256 key of --site-session-key-file (locally the committed
config/dev-keys/site-session-hs256.key, which config/local.toml trusts). Without that flag it is
off and the page says sign-in is unavailable.

Logs: RUST_LOG filters them (default info), one line per request.
Exit codes: 0 stopped by SIGTERM (gracefully) or SIGINT, 1 cannot listen, 2 invalid flags or site.";

/// Serves the demo page that plays the embedded chat widget, from its own origin.
#[derive(Debug, Parser)]
#[command(name = "demo-server", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Interface to listen on
    #[arg(long, env = "DEMO_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on, 0 for any free one (for `healthcheck`: the port to probe)
    #[arg(long, env = "DEMO_PORT", default_value_t = 8080, global = true)]
    port: u16,
    /// Directory holding index.html, app.js and style.css [default: the source tree's demo/site]
    #[arg(long, env = "DEMO_SITE_DIR", default_value = DEFAULT_SITE_DIR, hide_default_value = true)]
    site_dir: PathBuf,
    /// Base URL of the guest-token API the page calls (guest token, web-messaging auth code)
    #[arg(long, env = "DEMO_API_BASE_URL", default_value = DEFAULT_API_BASE_URL)]
    api_base_url: BaseUrl,
    /// Base URL of the guest-token API in web-messaging mode (the custom widget's token)
    #[arg(long, env = "DEMO_MESSAGING_API_BASE_URL", default_value = DEFAULT_MESSAGING_API_BASE_URL)]
    messaging_api_base_url: BaseUrl,
    /// Base URL of Genesys (the emulator locally): the code exchange and revocation
    #[arg(long, env = "DEMO_GENESYS_BASE_URL", default_value = DEFAULT_GENESYS_BASE_URL)]
    genesys_base_url: BaseUrl,
    /// Genesys' web-messaging WebSocket (the emulator's locally)
    #[arg(long, env = "DEMO_WEBSOCKET_URL", default_value = DEFAULT_WEBSOCKET_URL)]
    websocket_url: WebSocketUrl,
    /// Queue the guest-token flow asks for
    #[arg(long, env = "DEMO_QUEUE_ID", default_value = DEFAULT_QUEUE_ID)]
    queue_id: Uuid,
    /// Web-messaging deployment of the signed-in flow
    #[arg(long, env = "DEMO_DEPLOYMENT_ID", default_value = DEFAULT_DEPLOYMENT_ID)]
    deployment_id: Uuid,
    /// HS256 key of the stand-in login (LOCAL USE ONLY) [default: none, sign-in is off]
    #[arg(long, env = "DEMO_SITE_SESSION_KEY_FILE", value_name = "FILE")]
    site_session_key_file: Option<PathBuf>,
    /// `iss` of the stand-in login's site sessions (the API's site_session.issuer)
    #[arg(long, env = "DEMO_SITE_SESSION_ISSUER", default_value = DEFAULT_ISSUER)]
    site_session_issuer: String,
    /// `aud` of the stand-in login's site sessions (the API's site_session.audience)
    #[arg(long, env = "DEMO_SITE_SESSION_AUDIENCE", default_value = DEFAULT_AUDIENCE)]
    site_session_audience: String,
    /// Lifetime of the stand-in login's site sessions, in seconds (30 to 3600)
    #[arg(long, env = "DEMO_SITE_SESSION_TTL_SECONDS", default_value_t = DEFAULT_TTL_SECONDS,
          value_parser = clap::value_parser!(u64).range(30..=3600))]
    site_session_ttl_seconds: u64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the page (the default).
    Serve,
    /// Container health check: exit 0 if GET http://127.0.0.1:<port>/healthz answers 200, else 1.
    Healthcheck {
        /// Timeout of each step (connect, write, read) in milliseconds
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck { timeout_ms }) = cli.command {
        let healthy = demo::healthcheck::probe(cli.port, Duration::from_millis(timeout_ms));
        return if healthy {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let config = PageConfig {
        api_base_url: cli.api_base_url,
        messaging_api_base_url: cli.messaging_api_base_url,
        genesys_base_url: cli.genesys_base_url,
        web_socket_url: cli.websocket_url,
        queue_id: cli.queue_id,
        deployment_id: cli.deployment_id,
    };
    let mut site = match Site::new(&cli.site_dir, config) {
        Ok(site) => site,
        Err(e) => {
            eprintln!("demo-server: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(key_file) = &cli.site_session_key_file {
        let login = StandInLogin::from_key_file(
            key_file,
            &cli.site_session_issuer,
            &cli.site_session_audience,
            Duration::from_secs(cli.site_session_ttl_seconds),
        );
        match login {
            Ok(login) => site = site.with_stand_in_login(login),
            Err(e) => {
                eprintln!("demo-server: --site-session-key-file (DEMO_SITE_SESSION_KEY_FILE): {e}");
                return ExitCode::from(2);
            }
        }
    }
    init_tracing();
    let listener = match TcpListener::bind((cli.host.as_str(), cli.port)) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(host = %cli.host, port = cli.port, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let outcome = actix_web::rt::System::new().block_on(async move {
        let address = listener.local_addr()?;
        tracing::info!(
            url = %format!("http://{address}"),
            site = %site.dir.display(),
            api = %site.config.api_base_url,
            messaging_api = %site.config.messaging_api_base_url,
            "serving the demo page"
        );
        match &site.login {
            Some(login) => tracing::warn!(
                session_ttl_seconds = login.ttl().as_secs(),
                "the stand-in login is ON: anyone who reaches this page can sign in as anyone; \
                 for local use only"
            ),
            None => tracing::info!(
                "the stand-in login is off (no --site-session-key-file): sign-in is unavailable"
            ),
        }
        demo::serve(listener, site, ServeOptions::standalone())?.await
    });
    match outcome {
        Ok(()) => {
            tracing::info!("demo-server stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "demo-server failed");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // With the tracing-log feature, `init` also turns actix's log records (the access log) into events.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal())
        .with_writer(std::io::stdout)
        .init();
}
