//! `guest-token-api`: see `guest-token-api --help`.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use api::cli::{Cli, Command};
use api::settings::{ConfigProblems, environment_with_dotenv, listening_port};
use api::{Application, Settings, healthcheck, telemetry};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let process_env: HashMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();

    if let Some(Command::Healthcheck { ready, timeout_ms }) = cli.command {
        // The same layers as the service: a port set in a config file is probed too.
        let env = environment_with_dotenv(process_env, Path::new(".env")).unwrap_or_default();
        let port = cli
            .port
            .or_else(|| listening_port(&cli.config_dir, &env))
            .unwrap_or(3000);
        let path = if ready { "/readyz" } else { "/livez" };
        let healthy = healthcheck::probe(port, path, Duration::from_millis(timeout_ms));
        return if healthy {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }

    let settings = match load_settings(&cli, process_env) {
        Ok(settings) => settings,
        Err(problems) => {
            for line in &problems.0 {
                eprintln!("configuration error: {line}");
            }
            return ExitCode::from(2);
        }
    };
    if matches!(cli.command, Some(Command::CheckConfig)) {
        println!("configuration OK (APP_ENV={})", settings.environment);
        return ExitCode::SUCCESS;
    }

    if let Err(e) = telemetry::init(telemetry::subscriber(
        settings.log.format,
        &settings.log.level,
        std::io::stdout,
    )) {
        eprintln!("cannot install the log subscriber: {e}");
        return ExitCode::from(1);
    }
    let outcome = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).await?;
        app.run_until_stopped().await
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "stopped on an error");
            eprintln!("guest-token-api: {e}");
            ExitCode::from(1)
        }
    }
}

fn load_settings(cli: &Cli, process_env: HashMap<String, String>) -> Result<Settings, ConfigProblems> {
    let mut env = environment_with_dotenv(process_env, Path::new(".env"))?;
    if let Some(port) = cli.port {
        env.insert("PORT".to_owned(), port.to_string());
    }
    Settings::load(&cli.config_dir, &env)
}
