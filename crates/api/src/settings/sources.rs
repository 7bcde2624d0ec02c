//! The sources of the configuration and their layering, later wins: `default.toml`,
//! `<APP_ENV>.toml`, `APP__<SECTION>__<KEY>` variables, then the seed's names. A `.env` file only
//! fills gaps in the process environment ([`environment_with_dotenv`]).
//!
//! Every key takes its value from the last layer that sets it, with one exception: the Genesys
//! URLs (`base_url`, `login_url`, `region`) are a group. A layer that sets a region replaces both
//! URLs of earlier layers; a layer that sets a base URL replaces an earlier region and an earlier
//! login URL (which is then derived from the new base unless that layer names one too). A region
//! and a URL in the same layer, or a login URL over a region, is a configuration error.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use super::{ConfigProblems, ENVIRONMENTS, seed};

/// The configuration exactly as the layers give it, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSettings {
    pub server: RawServer,
    pub genesys: RawGenesys,
    pub guest: RawGuest,
    pub cors: RawCors,
    pub rate_limit: RawRateLimit,
    pub log: RawLog,
    pub web_messaging: RawWebMessaging,
    pub oidc: RawOidc,
    pub site_session: RawSiteSession,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub body_limit_bytes: usize,
    pub drain_delay_ms: u64,
    pub shutdown_timeout_seconds: u64,
    pub request_head_timeout_ms: u64,
    pub body_timeout_ms: u64,
    pub client_disconnect_timeout_ms: u64,
    pub keep_alive_seconds: u64,
    pub max_connections_per_worker: usize,
    pub max_header_count: usize,
    pub max_header_bytes: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGenesys {
    #[serde(default)]
    pub base_url: String,
    #[serde(default)]
    pub login_url: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default = "empty_secret")]
    pub client_secret: SecretString,
    #[serde(default)]
    pub client_secret_file: String,
    pub max_connections_per_worker: usize,
    pub budget_ms: u64,
    pub attempt_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
    pub login_retry_initial_ms: u64,
    pub login_retry_max_ms: u64,
    pub requests_per_minute: u32,
    pub budget_share: f64,
    pub budget_burst: u32,
    pub max_client_share: f64,
}

pub(super) fn empty_secret() -> SecretString {
    SecretString::from("")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGuest {
    pub upstream: String,
    pub source_system: String,
    pub default_language: String,
    #[serde(default, deserialize_with = "list")]
    pub allowed_queues: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCors {
    #[serde(default, deserialize_with = "list")]
    pub allowed_origins: Vec<String>,
    pub require_origin: bool,
    pub max_age_seconds: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    pub enabled: bool,
    pub per_second: f64,
    pub burst: u32,
    #[serde(default, deserialize_with = "list")]
    pub trusted_proxies: Vec<String>,
    pub max_tracked_ips: usize,
    pub prune_interval_seconds: u64,
    pub ipv6_prefix: u8,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    // Checked in `validate`, so a wrong value gets a message naming `log.format`.
    pub format: String,
    pub level: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebMessaging {
    #[serde(default)]
    pub deployment_id: String,
    #[serde(default)]
    pub websocket_url: String,
    pub allow_anonymous: bool,
    pub deployment_cache_seconds: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOidc {
    #[serde(default)]
    pub issuer: String,
    #[serde(default)]
    pub signing_key_file: String,
    #[serde(default, deserialize_with = "list")]
    pub previous_signing_key_files: Vec<String>,
    #[serde(default, deserialize_with = "list")]
    pub next_signing_key_files: Vec<String>,
    #[serde(default)]
    pub client_id: String,
    #[serde(default = "empty_secret")]
    pub client_secret: SecretString,
    #[serde(default)]
    pub client_secret_file: String,
    #[serde(default, deserialize_with = "list")]
    pub redirect_uris: Vec<String>,
    pub code_ttl_seconds: u64,
    pub access_token_ttl_seconds: u64,
    pub id_token_ttl_seconds: u64,
    pub refresh_token_ttl_seconds: u64,
    pub max_redeemed_codes: usize,
    pub max_refresh_records: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSiteSession {
    pub cookie_name: String,
    #[serde(default)]
    pub jwks_url: String,
    #[serde(default)]
    pub secret_file: String,
    #[serde(default)]
    pub issuer: String,
    #[serde(default)]
    pub audience: String,
    #[serde(default, deserialize_with = "list")]
    pub algorithms: Vec<String>,
    #[serde(default)]
    pub login_url: String,
    pub jwks_cache_seconds: u64,
}

/// A list from a TOML array, or from one comma-separated string (how an environment variable
/// carries it). Entries are trimmed; empty ones are dropped.
pub(super) fn list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct ListVisitor;

    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list or a comma-separated string")
        }

        fn visit_str<E: de::Error>(self, joined: &str) -> Result<Self::Value, E> {
            Ok(joined
                .split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty())
                .map(str::to_owned)
                .collect())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut entries = Vec::new();
            while let Some(entry) = seq.next_element::<String>()? {
                entries.push(entry);
            }
            Ok(entries)
        }
    }

    deserializer.deserialize_any(ListVisitor)
}

/// `APP_ENV`, checked against [`ENVIRONMENTS`]; `local` when unset.
pub(super) fn environment_name(env: &HashMap<String, String>) -> Result<String, ConfigProblems> {
    let environment = env.get("APP_ENV").map_or("local", |s| s.trim()).to_owned();
    if ENVIRONMENTS.contains(&environment.as_str()) {
        Ok(environment)
    } else {
        Err(ConfigProblems(vec![format!(
            "APP_ENV: unknown environment {environment:?} (expected one of: {})",
            ENVIRONMENTS.join(", ")
        )]))
    }
}

/// The process environment merged with a `.env` file at `dotenv_path`, if there is one. Real
/// environment variables always win over the file's.
pub fn environment_with_dotenv(
    mut env: HashMap<String, String>,
    dotenv_path: &Path,
) -> Result<HashMap<String, String>, ConfigProblems> {
    let iter = match dotenvy::from_path_iter(dotenv_path) {
        Ok(iter) => iter,
        Err(e) if e.not_found() => return Ok(env),
        Err(_) => {
            return Err(ConfigProblems(vec![format!(
                "{}: the .env file cannot be read",
                dotenv_path.display()
            )]));
        }
    };
    for item in iter {
        // The error of a malformed line would quote it, possibly with a secret: name the file only.
        let (key, value) = item.map_err(|_| {
            ConfigProblems(vec![format!(
                "{}: a line is not KEY=value",
                dotenv_path.display()
            )])
        })?;
        env.entry(key).or_insert(value);
    }
    Ok(env)
}

/// The two files of `environment`, which must exist.
fn layer_files(config_dir: &Path, environment: &str) -> Result<[PathBuf; 2], ConfigProblems> {
    let files = [
        config_dir.join("default.toml"),
        config_dir.join(format!("{environment}.toml")),
    ];
    let missing: Vec<String> = files
        .iter()
        .filter(|path| !path.is_file())
        .map(|path| {
            format!(
                "{}: configuration file not found (set --config-dir or APP_CONFIG_DIR)",
                path.display()
            )
        })
        .collect();
    if missing.is_empty() {
        Ok(files)
    } else {
        Err(ConfigProblems(missing))
    }
}

fn toml(path: &Path) -> config::File<config::FileSourceFile, config::FileFormat> {
    config::File::from(path).format(config::FileFormat::Toml)
}

/// The `APP__...` variables of `env`.
fn app_variables(env: &HashMap<String, String>) -> config::Environment {
    let app_vars: config::Map<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with("APP__"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // No `try_parsing`: it would turn a client id or secret such as "0123" or "1e5" into a number
    // and back ("123", "100000"). Numbers and booleans parse from strings anyway, and lists are
    // split by `list`.
    config::Environment::with_prefix("APP")
        .prefix_separator("__")
        .separator("__")
        .source(Some(app_vars))
}

/// Reads and merges every layer into the raw shape.
pub(super) fn read_layers(
    config_dir: &Path,
    environment: &str,
    env: &HashMap<String, String>,
) -> Result<RawSettings, ConfigProblems> {
    let files = layer_files(config_dir, environment)?;
    let mut problems = Vec::new();
    let mut builder = config::Config::builder();
    for file in &files {
        builder = builder.add_source(toml(file));
    }
    builder = builder.add_source(app_variables(env));
    for (variable, key) in seed::SINGLE_KEY_VARIABLES {
        let Some(value) = seed::value(env, variable) else {
            continue;
        };
        if variable == "PORT" && value.parse::<u16>().is_err() {
            problems.push(format!("PORT: {value:?} is not a port number (0 to 65535)"));
            continue;
        }
        builder = builder.set_override(key, value).map_err(config_problem)?;
    }
    match genesys_urls(&files, env) {
        Ok(urls) => {
            for (key, value) in [
                ("genesys.base_url", urls.base_url),
                ("genesys.login_url", urls.login_url),
                ("genesys.region", urls.region),
            ] {
                builder = builder
                    .set_override(key, value.unwrap_or_default())
                    .map_err(config_problem)?;
            }
        }
        Err(mut more) => problems.append(&mut more),
    }
    let raw = builder
        .build()
        .and_then(|c| c.try_deserialize::<RawSettings>())
        .map_err(config_problem);
    match raw {
        Ok(raw) if problems.is_empty() => Ok(raw),
        Ok(_) => Err(ConfigProblems(problems)),
        Err(ConfigProblems(mut more)) => {
            problems.append(&mut more);
            Err(ConfigProblems(problems))
        }
    }
}

/// The Genesys URLs one layer sets (blank counts as unset), with how the layer names them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct UrlLayer {
    /// How the layer's keys are named in problems: `[base, login, region]`.
    pub names: [String; 3],
    pub base_url: Option<String>,
    pub login_url: Option<String>,
    pub region: Option<String>,
}

/// The Genesys URLs after layering.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct GenesysUrls {
    pub base_url: Option<String>,
    pub login_url: Option<String>,
    pub region: Option<String>,
}

/// Layers the Genesys URL group (see the module docs); each problem names both settings.
pub(super) fn layer_urls(layers: &[UrlLayer]) -> Result<GenesysUrls, Vec<String>> {
    let mut urls = GenesysUrls::default();
    // The setting that put the current region in place, for problems of later layers.
    let mut region_from = String::new();
    let mut problems = Vec::new();
    for layer in layers {
        let [base_name, login_name, region_name] = &layer.names;
        match (&layer.base_url, &layer.login_url, &layer.region) {
            (None, None, None) => {}
            (_, _, Some(region)) => {
                for (value, name) in [(&layer.base_url, base_name), (&layer.login_url, login_name)] {
                    if value.is_some() {
                        problems.push(format!(
                            "{region_name} and {name}: set one of them (a region sets both URLs)"
                        ));
                    }
                }
                urls = GenesysUrls {
                    region: Some(region.clone()),
                    ..GenesysUrls::default()
                };
                region_from.clone_from(region_name);
            }
            (Some(base), login, None) => {
                urls = GenesysUrls {
                    base_url: Some(base.clone()),
                    login_url: login.clone(),
                    region: None,
                };
            }
            (None, Some(login), None) => {
                if urls.region.is_some() {
                    problems.push(format!(
                        "{login_name} and {region_from}: a login URL cannot refine a region; set the base URL instead"
                    ));
                } else {
                    urls.login_url = Some(login.clone());
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(urls)
    } else {
        Err(problems)
    }
}

/// The Genesys URL group of every layer, layered.
fn genesys_urls(files: &[PathBuf; 2], env: &HashMap<String, String>) -> Result<GenesysUrls, Vec<String>> {
    let mut layers = Vec::new();
    for file in files {
        let table = config::Config::builder()
            .add_source(toml(file))
            .build()
            .map_err(|e| config_problem(e).0)?;
        let get = |key: &str| {
            table
                .get_string(&format!("genesys.{key}"))
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let name = |key: &str| format!("genesys.{key} in {}", file.display());
        layers.push(UrlLayer {
            names: [name("base_url"), name("login_url"), name("region")],
            base_url: get("base_url"),
            login_url: get("login_url"),
            region: get("region"),
        });
    }
    let app = |key: &str| seed::value(env, &format!("APP__GENESYS__{}", key.to_ascii_uppercase()));
    layers.push(UrlLayer {
        names: ["base_url", "login_url", "region"]
            .map(|k| format!("APP__GENESYS__{}", k.to_ascii_uppercase())),
        base_url: app("base_url"),
        login_url: app("login_url"),
        region: app("region"),
    });
    let [base, login, region] = seed::URL_GROUP;
    layers.push(UrlLayer {
        names: seed::URL_GROUP.map(str::to_owned),
        base_url: seed::value(env, base),
        login_url: seed::value(env, login),
        region: seed::value(env, region),
    });
    layer_urls(&layers)
}

/// The port the service listens on according to the layers (`--port` aside), or `None` when the
/// files cannot be read. Used by the `healthcheck` subcommand, which must not fail on settings
/// it does not need.
pub fn listening_port(config_dir: &Path, env: &HashMap<String, String>) -> Option<u16> {
    if let Some(port) = seed::value(env, "PORT") {
        return port.parse().ok();
    }
    let environment = environment_name(env).ok()?;
    let mut builder = config::Config::builder();
    for file in layer_files(config_dir, &environment).ok()? {
        builder = builder.add_source(toml(&file));
    }
    let merged = builder.add_source(app_variables(env)).build().ok()?;
    merged.get_int("server.port").ok()?.try_into().ok()
}

/// `config`'s messages name the key and the expected type; they never echo a secret's value for
/// a string field, but a type mismatch could quote the value, so only the key and the kind are kept.
fn config_problem(e: config::ConfigError) -> ConfigProblems {
    let message = match &e {
        config::ConfigError::Type { key, expected, .. } => {
            format!(
                "{}: must be {expected}",
                key.as_deref().unwrap_or("configuration")
            )
        }
        config::ConfigError::NotFound(key) => format!("{key}: missing"),
        config::ConfigError::FileParse { uri, .. } => format!(
            "{}: not valid TOML",
            uri.as_deref().unwrap_or("configuration file")
        ),
        other => {
            let text = other.to_string();
            // Deserialization messages look like "missing field `x`" or "unknown field `x`".
            if text.contains("field") {
                text
            } else {
                "configuration: cannot be read".to_owned()
            }
        }
    };
    ConfigProblems(vec![message])
}
