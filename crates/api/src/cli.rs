//! Command line of `guest-token-api`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::settings::SEED_VARIABLES;

/// Issues short-lived Genesys web-chat guest tokens to an embedded chat widget.
#[derive(Debug, Parser)]
#[command(name = "guest-token-api", version, after_long_help = environment_help(), after_help = environment_help())]
pub struct Cli {
    /// Directory with default.toml and <APP_ENV>.toml.
    #[arg(long, env = "APP_CONFIG_DIR", default_value = "config", global = true)]
    pub config_dir: PathBuf,

    /// Port to listen on (or, for `healthcheck`, to probe); overrides PORT and server.port.
    #[arg(long, global = true)]
    pub port: Option<u16>,

    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (the default).
    Serve,
    /// Validate the configuration and exit: 0 if usable, 2 with one line per problem otherwise.
    CheckConfig,
    /// Container health check: GET http://127.0.0.1:<port>/livez (or /readyz with --ready);
    /// exit 0 on 200, else 1. The port is --port, else the one the service would listen on
    /// (PORT, APP__SERVER__PORT, <APP_ENV>.toml, default.toml), else 3000.
    Healthcheck {
        /// Probe /readyz (holds a Genesys token, not shutting down) instead of /livez.
        #[arg(long)]
        ready: bool,
        /// Give up after this many milliseconds.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
}

fn environment_help() -> String {
    let mut help = String::from(
        "Configuration layers, later wins: <config-dir>/default.toml, <config-dir>/<APP_ENV>.toml, \
         a .env file in the working directory (never overriding real variables), \
         APP__<SECTION>__<KEY> variables (e.g. APP__RATE_LIMIT__BURST=20, \
         APP__CORS__ALLOWED_ORIGINS=https://a.example,https://b.example), then:\n",
    );
    for (name, what) in SEED_VARIABLES {
        help.push_str(&format!("  {name:<28} {what}\n"));
    }
    help.push_str(&format!(
        "\nLogging: RUST_LOG (or log.level) filters every line, dependencies' log-crate records \
         included. Applied after it, whatever it says: {} (awc's verbose lines print request \
         headers, credentials included; actix-http's dispatcher logs each malformed request as an \
         error).\n",
        crate::telemetry::log_caps_description()
    ));
    help.push_str(
        "\nExit codes: 0 stopped cleanly, 1 Genesys rejected the credentials or the port is taken, \
         2 invalid configuration.",
    );
    help
}
