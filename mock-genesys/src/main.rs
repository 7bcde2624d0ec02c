//! `mock-genesys`: runs the Genesys Cloud emulator, or checks the health of a running one.

use std::io::IsTerminal;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use mock_genesys::{FlagOverrides, LogFormat, MockSettings};

const ENVIRONMENT_HELP: &str = "\
Settings are read in layers: built-in defaults, then the TOML file (--config, else
config/mock-genesys.toml relative to the working directory if it exists), then environment
variables, then flags.

Environment (MOCK__ prefix, `__` between nested keys):
  MOCK__HOST, MOCK__PORT                  listener (default 0.0.0.0:8081)
  MOCK__ISSUER                            `iss` of guest tokens
  MOCK__TOKEN_TTL_SECONDS                 access-token lifetime (default 86400)
  MOCK__GUEST_TOKEN_TTL_SECONDS           guest-token lifetime (default 3600)
  MOCK__RATE_LIMIT__ENABLED               per-client rate limit on/off (default true)
  MOCK__RATE_LIMIT__REQUESTS              requests per window (default 300)
  MOCK__RATE_LIMIT__WINDOW_SECONDS        window length (default 60)
  MOCK__LATENCY_MS                        delay added to Genesys routes (default 0);
  MOCK__LATENCY_MS__MIN, __MAX            or a uniform range
  MOCK__JOURNAL_LIMIT                     requests kept in the journal (default 10000)
  MOCK__LOG_FORMAT                        text or json
  RUST_LOG                                log filter (default info)
Clients and queues come from the file (defaults: local-client/local-secret with
webchat:guest:create, no-scope-client/no-scope-secret; queues Support and Sales).

Exit codes: 0 stopped by SIGINT/SIGTERM, 1 cannot listen, 2 invalid flags or settings.";

/// The Genesys Cloud emulator: OAuth, guest creation, queues, rate limits, faults, request journal.
#[derive(Debug, Parser)]
#[command(name = "mock-genesys", version, after_long_help = ENVIRONMENT_HELP, after_help = ENVIRONMENT_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// TOML settings file [default: config/mock-genesys.toml if it exists]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Interface to listen on [default: 0.0.0.0]
    #[arg(long)]
    host: Option<String>,
    /// Port to listen on; 0 picks a free one [default: 8081]
    #[arg(long)]
    port: Option<u16>,
    /// Log as text lines or JSON objects [default: text]
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Exit 0 if GET /__admin/health answers 200, else 1 (container health check).
    Healthcheck {
        /// Port of the running emulator [default: $MOCK__PORT, else 8081]
        #[arg(long)]
        port: Option<u16>,
        /// Host of the running emulator
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Timeout of each step (connect, write, read) in milliseconds
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck {
        port,
        host,
        timeout_ms,
    }) = cli.command
    {
        let port = port
            .or_else(|| std::env::var("MOCK__PORT").ok()?.parse().ok())
            .unwrap_or(mock_genesys::DEFAULT_PORT);
        let healthy = mock_genesys::healthcheck(&host, port, Duration::from_millis(timeout_ms));
        return if healthy {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let flags = FlagOverrides {
        config: cli.config,
        host: cli.host,
        port: cli.port,
        log_format: cli.log_format,
    };
    let settings = match MockSettings::load(&flags, None) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("mock-genesys: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(settings.log_format);
    let listener = match TcpListener::bind((settings.host.as_str(), settings.port)) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(host = %settings.host, port = settings.port, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    match actix_web::rt::System::new().block_on(mock_genesys::run(settings, listener)) {
        Ok(()) => {
            tracing::info!("mock-genesys stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "mock-genesys failed");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
