//! `demo-server`: serves the demo page on its own origin, or checks the health of a running one.

use std::io::IsTerminal;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use demo::config::{DEFAULT_API_BASE_URL, DEFAULT_DEPLOYMENT_ID, DEFAULT_GENESYS_BASE_URL, DEFAULT_QUEUE_ID};
use demo::{BaseUrl, PageConfig, ServeOptions, Site};
use uuid::Uuid;

/// The source tree's site: `cargo run` works from any directory; the image sets DEMO_SITE_DIR.
const DEFAULT_SITE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/site");

const AFTER_HELP: &str = "\
The page reads its settings from GET /config.json (apiBaseUrl, genesysBaseUrl, queueId,
deploymentId); the Content-Security-Policy lets it connect to exactly itself, the API and Genesys.
Open the page on an origin the API allows (its FRONTEND_ORIGIN), e.g. http://localhost:8080.

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
    /// Base URL of the guest-token API the page calls
    #[arg(long, env = "DEMO_API_BASE_URL", default_value = DEFAULT_API_BASE_URL)]
    api_base_url: BaseUrl,
    /// Base URL of Genesys (the emulator locally), for the web-messaging flow
    #[arg(long, env = "DEMO_GENESYS_BASE_URL", default_value = DEFAULT_GENESYS_BASE_URL)]
    genesys_base_url: BaseUrl,
    /// Queue the guest-token flow asks for
    #[arg(long, env = "DEMO_QUEUE_ID", default_value = DEFAULT_QUEUE_ID)]
    queue_id: Uuid,
    /// Web-messaging deployment of the signed-in flow
    #[arg(long, env = "DEMO_DEPLOYMENT_ID", default_value = DEFAULT_DEPLOYMENT_ID)]
    deployment_id: Uuid,
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
        genesys_base_url: cli.genesys_base_url,
        queue_id: cli.queue_id,
        deployment_id: cli.deployment_id,
    };
    let site = match Site::new(&cli.site_dir, config) {
        Ok(site) => site,
        Err(e) => {
            eprintln!("demo-server: {e}");
            return ExitCode::from(2);
        }
    };
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
            "serving the demo page"
        );
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
