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
  MOCK__HOST, MOCK__PORT                  listener (default 127.0.0.1:8081; containers set
                                          MOCK__HOST=0.0.0.0)
  MOCK__ADMIN_HOST, MOCK__ADMIN_PORT      a separate listener for /__admin (then served only
                                          there); admin host defaults to the host
  MOCK__ISSUER                            `iss` of guest tokens and messaging JWTs
  MOCK__TOKEN_TTL_SECONDS                 access-token lifetime (default 86400)
  MOCK__GUEST_TOKEN_TTL_SECONDS           guest-token lifetime (default 3600)
  MOCK__MESSAGING_JWT_TTL_SECONDS         messaging-JWT lifetime (default 900; shorter when the
                                          identity provider's access token is)
  MOCK__REFRESH_TOKEN_TTL_SECONDS         web-messaging refresh-token lifetime (default 86400)
  MOCK__AGENT_REPLY                       the agent's answer to a guest text (default
                                          \"echo: {text}\")
  MOCK__IDENTITY_PROVIDER_TIMEOUT_MS      timeout of each identity-provider call (default 5000)
  MOCK__MAX_SESSIONS                      web-messaging sessions kept (default 10000)
  MOCK__MAX_WEBSOCKETS                    WebSockets open at once (default 1000)
  MOCK__WEBSOCKET_IDLE_TIMEOUT_SECONDS    idle WebSockets are closed (default 120)
  MOCK__WEBSOCKET_MAX_MESSAGE_BYTES       largest WebSocket message (default 65536)
  MOCK__RATE_LIMIT__ENABLED               per-client rate limit on/off (default true)
  MOCK__RATE_LIMIT__REQUESTS              requests per window (default 300)
  MOCK__RATE_LIMIT__WINDOW_SECONDS        window length (default 60)
  MOCK__LATENCY_MS                        delay added to Genesys routes (default 0);
  MOCK__LATENCY_MS__MIN, __MAX            or a uniform range
  MOCK__JOURNAL_LIMIT                     requests kept in the journal (default 10000)
  MOCK__JOURNAL_MAX_BYTES                 bytes the journal may hold (default 33554432; each
                                          body is cut at 16 KiB)
  MOCK__LOG_FORMAT                        text or json
  RUST_LOG                                log filter (default info)
Clients, queues and web deployments come from the file (defaults: local-client/local-secret
with webchat:guest:create and webDeployments:deployment:view, no-scope-client/no-scope-secret;
queues Support and Sales; deployment 7f6e5d4c-3b2a-4190-8a7b-6c5d4e3f2a1b \"Local demo\");
deployments can also be added at run time with PUT /__admin/deployments/{id}.

Routes: the OAuth token, guest and queue routes; web messaging (the code exchange, refresh and
revoke token routes, GET /api/v2/webdeployments/deployments/{id}, and the WebSocket at
/v1?deploymentId=<id>); and the /__admin API (health, reset, requests, faults, tokens/revoke,
settings, jwks.json, deployments).

Exit codes: 0 stopped by SIGINT/SIGTERM, 1 cannot listen, 2 invalid flags or settings.";

/// The Genesys Cloud emulator: OAuth, guest creation, queues, web messaging, rate limits, faults,
/// request journal.
#[derive(Debug, Parser)]
#[command(name = "mock-genesys", version, after_long_help = ENVIRONMENT_HELP, after_help = ENVIRONMENT_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// TOML settings file [default: config/mock-genesys.toml if it exists]
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Interface to listen on [default: 127.0.0.1]
    #[arg(long)]
    host: Option<String>,
    /// Port to listen on; 0 picks a free one [default: 8081]
    #[arg(long)]
    port: Option<u16>,
    /// Interface of the admin listener [default: the --host value]
    #[arg(long)]
    admin_host: Option<String>,
    /// Serve /__admin only on this port (0 picks a free one) [default: on --port]
    #[arg(long)]
    admin_port: Option<u16>,
    /// Log as text lines or JSON objects [default: text]
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Exit 0 if GET /__admin/health answers 200, else 1 (container health check).
    ///
    /// Probes the admin listener the settings name (file, environment), so it finds the admin API
    /// on its own port too; a wildcard host is probed on loopback.
    Healthcheck {
        /// Port of the running emulator's admin API [default: admin_port, else port, from the
        /// settings]
        #[arg(long)]
        port: Option<u16>,
        /// Host of the running emulator [default: admin_host, else host, from the settings;
        /// 0.0.0.0 and :: become loopback]
        #[arg(long)]
        host: Option<String>,
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
        let flags = FlagOverrides {
            config: cli.config,
            ..FlagOverrides::default()
        };
        let settings = MockSettings::load(&flags, None).unwrap_or_else(|e| {
            eprintln!("mock-genesys healthcheck: {e}; probing the built-in defaults");
            MockSettings::standalone()
        });
        let (default_host, default_port) = mock_genesys::admin_address(&settings);
        let host = host.unwrap_or(default_host);
        let port = port.unwrap_or(default_port);
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
        admin_host: cli.admin_host,
        admin_port: cli.admin_port,
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
    let admin_listener = match mock_genesys::bind_admin_listener(&settings) {
        Ok(listener) => listener,
        Err(e) => {
            let (host, port) = mock_genesys::admin_address(&settings);
            tracing::error!(%host, port, error = %e, "cannot listen for the admin API");
            return ExitCode::FAILURE;
        }
    };
    let served = mock_genesys::run_with_admin(settings, listener, admin_listener);
    match actix_web::rt::System::new().block_on(served) {
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
