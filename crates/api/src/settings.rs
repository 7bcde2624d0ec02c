//! Configuration: TOML layers, environment variables and the seed's variable names, validated into
//! one typed [`Settings`].
//!
//! Layers, later wins: `<dir>/default.toml`, `<dir>/<APP_ENV>.toml`, `APP__<SECTION>__<KEY>`
//! variables, then the seed's names (`GENESYS_CLIENT_ID`, `PORT`, ...). The caller passes the
//! environment as a map (the process environment merged with a `.env` file, see
//! [`environment_with_dotenv`]) so that tests never touch the process environment.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use domain::{LanguageTag, QueueId};
use genesys_client::{Endpoints, GenesysConfig, RetrySettings};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

/// The environments a configuration file exists for.
pub const ENVIRONMENTS: [&str; 3] = ["local", "test", "production"];

/// The environment variables the service reads besides `APP__<SECTION>__<KEY>`, with what they set.
pub const SEED_VARIABLES: [(&str, &str); 11] = [
    (
        "APP_ENV",
        "which config/<APP_ENV>.toml to layer over default.toml: local (default), test or production",
    ),
    (
        "APP_CONFIG_DIR",
        "directory holding the TOML files (default: config); not read from .env",
    ),
    ("GENESYS_CLIENT_ID", "OAuth client id (genesys.client_id)"),
    (
        "GENESYS_CLIENT_SECRET",
        "OAuth client secret (genesys.client_secret); never printed",
    ),
    (
        "GENESYS_CLIENT_SECRET_FILE",
        "file holding the client secret; wins over GENESYS_CLIENT_SECRET",
    ),
    (
        "GENESYS_BASE_URL",
        "API base URL, e.g. https://api.mypurecloud.com (genesys.base_url)",
    ),
    (
        "GENESYS_LOGIN_URL",
        "login base URL; derived from the base URL (api. -> login.) when unset",
    ),
    (
        "GENESYS_REGION",
        "region domain such as mypurecloud.ie: sets both URLs (genesys.region)",
    ),
    (
        "FRONTEND_ORIGIN",
        "comma-separated allowed origins, e.g. https://www.example.com (cors.allowed_origins)",
    ),
    ("PORT", "listening port (server.port)"),
    (
        "RUST_LOG",
        "log filter, overrides log.level (e.g. info,api=debug)",
    ),
];

/// Everything the service needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Which environment file was layered (`local`, `test`, `production`).
    pub environment: String,
    /// The HTTP server.
    pub server: ServerSettings,
    /// How to reach Genesys.
    pub genesys: GenesysSettings,
    /// What goes into each guest.
    pub guest: GuestSettings,
    /// Who may call from a browser.
    pub cors: CorsSettings,
    /// Per-client-IP limits.
    pub rate_limit: RateLimitSettings,
    /// Log format and filter.
    pub log: LogSettings,
}

/// The HTTP server.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Address to bind, e.g. `0.0.0.0` or `127.0.0.1`.
    pub host: String,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// actix workers; 0 means one per CPU.
    pub workers: usize,
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    /// After SIGTERM, how long `/readyz` reports 503 before the listener closes (lets a load
    /// balancer notice).
    pub drain_delay: Duration,
    /// After the listener closes, how long in-flight requests may take to finish.
    pub shutdown_timeout: Duration,
}

/// How to reach Genesys.
#[derive(Clone)]
pub struct GenesysSettings {
    /// API and login hosts.
    pub endpoints: Endpoints,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: SecretString,
    /// Timeouts, attempts and backoff.
    pub retry: RetrySettings,
    /// Most connections awc keeps per worker.
    pub max_connections_per_worker: usize,
    /// First wait of the background login when Genesys was unreachable at start-up.
    pub login_retry_initial: Duration,
    /// Longest wait between background login attempts.
    pub login_retry_max: Duration,
}

impl fmt::Debug for GenesysSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenesysSettings")
            .field("endpoints", &self.endpoints)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("retry", &self.retry)
            .field("max_connections_per_worker", &self.max_connections_per_worker)
            .finish_non_exhaustive()
    }
}

impl GenesysSettings {
    /// The client configuration these settings describe.
    pub fn client_config(&self) -> GenesysConfig {
        GenesysConfig {
            endpoints: self.endpoints.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            retry: self.retry.clone(),
            max_connections_per_worker: self.max_connections_per_worker,
        }
    }
}

/// What goes into each guest.
#[derive(Debug, Clone)]
pub struct GuestSettings {
    /// `attributes.sourceSystem` sent upstream.
    pub source_system: String,
    /// Language used when the caller gives none.
    pub default_language: LanguageTag,
    /// When set, only these queues may be asked for.
    pub allowed_queues: Option<Vec<QueueId>>,
}

/// Who may call from a browser.
#[derive(Debug, Clone)]
pub struct CorsSettings {
    /// Exact allowed origins (`scheme://host[:port]`).
    pub allowed_origins: Vec<AllowedOrigin>,
    /// Refuse requests that carry no `Origin` header.
    pub require_origin: bool,
    /// `Access-Control-Max-Age` of preflight answers.
    pub max_age: Duration,
}

/// Per-client-IP limits.
#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    /// Whether the limiter is on.
    pub enabled: bool,
    /// Sustained requests per second per client IP; fractions allowed (0.1 = one every 10 s).
    pub per_second: f64,
    /// Requests a client may make at once before the rate applies.
    pub burst: u32,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNetwork>,
    /// Most client IPs tracked at once; beyond it, new IPs share one bucket.
    pub max_tracked_ips: usize,
    /// How often idle entries are dropped.
    pub prune_interval: Duration,
}

/// Log format and filter.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// JSON lines or readable text.
    pub format: LogFormat,
    /// An `EnvFilter` directive such as `info` or `info,api=debug`.
    pub level: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (production).
    Json,
    /// Readable text (local development).
    Text,
}

/// An allowed browser origin: `scheme://host[:port]`, lowercase, no path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AllowedOrigin(String);

impl AllowedOrigin {
    /// The origin as a browser sends it in `Origin`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AllowedOrigin {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let origin = raw.trim();
        if origin.contains('*') {
            return Err(format!("{origin:?}: wildcards are not allowed; list each origin"));
        }
        let (scheme, rest) = origin
            .split_once("://")
            .ok_or_else(|| format!("{origin:?}: must look like https://host[:port]"))?;
        let scheme = scheme.to_ascii_lowercase();
        let scheme = scheme.as_str();
        if !matches!(scheme, "http" | "https") {
            return Err(format!("{origin:?}: the scheme must be http or https"));
        }
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
            return Err(format!(
                "{origin:?}: must be scheme://host[:port] with no path, query or user"
            ));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, _)) if !host.ends_with(']') && host.contains(':') => (rest, None),
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
        {
            return Err(format!("{origin:?}: the host is not a valid host name"));
        }
        if let Some(port) = port {
            let number: u16 = port
                .parse()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{origin:?}: the port must be a number from 1 to 65535"))?;
            if (scheme, number) == ("http", 80) || (scheme, number) == ("https", 443) {
                return Err(format!(
                    "{origin:?}: leave out the default port, browsers never send it"
                ));
            }
        }
        Ok(Self(origin.to_ascii_lowercase()))
    }
}

/// An IP address or CIDR block such as `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) compare as IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

impl FromStr for IpNetwork {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        let (addr, prefix) = match raw.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (raw, None),
        };
        let addr = canonical(
            addr.parse::<IpAddr>()
                .map_err(|_| format!("{raw:?}: not an IP address or CIDR block"))?,
        );
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{raw:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Self { addr, prefix })
    }
}

/// Lowest `rate_limit.per_second`: one request every 10 000 s (under three hours).
pub const MIN_RATE_PER_SECOND: f64 = 0.0001;
/// Highest `rate_limit.per_second`: one request a microsecond.
pub const MAX_RATE_PER_SECOND: f64 = 1_000_000.0;

/// Why the configuration cannot be used: one entry per problem, each naming its setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ConfigProblems(pub Vec<String>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    server: RawServer,
    genesys: RawGenesys,
    guest: RawGuest,
    cors: RawCors,
    rate_limit: RawRateLimit,
    log: RawLog,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    host: String,
    port: u16,
    workers: usize,
    body_limit_bytes: usize,
    drain_delay_ms: u64,
    shutdown_timeout_seconds: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGenesys {
    #[serde(default)]
    base_url: String,
    #[serde(default)]
    login_url: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    client_id: String,
    #[serde(default = "empty_secret")]
    client_secret: SecretString,
    #[serde(default)]
    client_secret_file: String,
    max_connections_per_worker: usize,
    budget_ms: u64,
    attempt_timeout_ms: u64,
    connect_timeout_ms: u64,
    max_attempts: u32,
    backoff_base_ms: u64,
    backoff_cap_ms: u64,
    login_retry_initial_ms: u64,
    login_retry_max_ms: u64,
}

fn empty_secret() -> SecretString {
    SecretString::from("")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuest {
    source_system: String,
    default_language: String,
    #[serde(default, deserialize_with = "list")]
    allowed_queues: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCors {
    #[serde(default, deserialize_with = "list")]
    allowed_origins: Vec<String>,
    require_origin: bool,
    max_age_seconds: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    enabled: bool,
    per_second: f64,
    burst: u32,
    #[serde(default, deserialize_with = "list")]
    trusted_proxies: Vec<String>,
    max_tracked_ips: usize,
    prune_interval_seconds: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    // Checked in `validate`, so a wrong value gets a message naming `log.format`.
    format: String,
    level: String,
}

/// A list from a TOML array, or from one comma-separated string (how an environment variable
/// carries it). Entries are trimmed; empty ones are dropped.
fn list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
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

impl Settings {
    /// Loads and validates the configuration from `config_dir` and `env` (see the module docs).
    pub fn load(config_dir: &Path, env: &HashMap<String, String>) -> Result<Self, ConfigProblems> {
        let environment = env.get("APP_ENV").map_or("local", |s| s.trim()).to_owned();
        if !ENVIRONMENTS.contains(&environment.as_str()) {
            return Err(ConfigProblems(vec![format!(
                "APP_ENV: unknown environment {environment:?} (expected one of: {})",
                ENVIRONMENTS.join(", ")
            )]));
        }
        let raw = read_layers(config_dir, &environment, env)?;
        validate(environment, raw, env)
    }
}

fn read_layers(
    config_dir: &Path,
    environment: &str,
    env: &HashMap<String, String>,
) -> Result<RawSettings, ConfigProblems> {
    let file = |name: String| {
        let path = config_dir.join(name);
        if path.is_file() {
            Ok(config::File::from(path).format(config::FileFormat::Toml))
        } else {
            Err(ConfigProblems(vec![format!(
                "{}: configuration file not found (set --config-dir or APP_CONFIG_DIR)",
                path.display()
            )]))
        }
    };
    let app_vars: config::Map<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with("APP__"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut builder = config::Config::builder()
        .add_source(file("default.toml".to_owned())?)
        .add_source(file(format!("{environment}.toml"))?)
        // No `try_parsing`: it would turn a client id or secret such as "0123" or "1e5" into a
        // number and back ("123", "100000"). Numbers and booleans parse from strings anyway, and
        // lists are split by `list`.
        .add_source(
            config::Environment::with_prefix("APP")
                .prefix_separator("__")
                .separator("__")
                .source(Some(app_vars)),
        );
    let seed = |name: &str| {
        env.get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let overrides: [(&str, Option<String>); 6] = [
        ("genesys.client_id", seed("GENESYS_CLIENT_ID")),
        (
            "genesys.client_secret",
            env.get("GENESYS_CLIENT_SECRET")
                .cloned()
                .filter(|v| !v.is_empty()),
        ),
        ("genesys.client_secret_file", seed("GENESYS_CLIENT_SECRET_FILE")),
        ("genesys.base_url", seed("GENESYS_BASE_URL")),
        ("genesys.login_url", seed("GENESYS_LOGIN_URL")),
        ("genesys.region", seed("GENESYS_REGION")),
    ];
    let mut problems = Vec::new();
    if seed("GENESYS_REGION").is_some() && seed("GENESYS_BASE_URL").is_some() {
        problems.push("GENESYS_REGION and GENESYS_BASE_URL: set one of them, not both".to_owned());
    }
    for (key, value) in overrides {
        builder = builder.set_override_option(key, value).map_err(config_problem)?;
    }
    // A region from the environment replaces URLs from the files, and the other way round.
    if seed("GENESYS_REGION").is_some() {
        builder = builder
            .set_override("genesys.base_url", "")
            .and_then(|b| b.set_override("genesys.login_url", ""))
            .map_err(config_problem)?;
    } else if seed("GENESYS_BASE_URL").is_some() {
        builder = builder
            .set_override("genesys.region", "")
            .map_err(config_problem)?;
    }
    if let Some(origins) = seed("FRONTEND_ORIGIN") {
        // Comma-separated, split by `list` like APP__CORS__ALLOWED_ORIGINS.
        builder = builder
            .set_override("cors.allowed_origins", origins)
            .map_err(config_problem)?;
    }
    if let Some(port) = seed("PORT") {
        match port.parse::<u16>() {
            Ok(port) => {
                builder = builder
                    .set_override("server.port", port)
                    .map_err(config_problem)?
            }
            Err(_) => problems.push(format!("PORT: {port:?} is not a port number (0 to 65535)")),
        }
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

fn validate(
    environment: String,
    raw: RawSettings,
    env: &HashMap<String, String>,
) -> Result<Settings, ConfigProblems> {
    let mut problems = Vec::new();
    let RawSettings {
        server,
        genesys,
        guest,
        cors,
        rate_limit,
        log,
    } = raw;

    if server.host.trim().is_empty() {
        problems.push("server.host: must not be empty".to_owned());
    }
    if server.body_limit_bytes < 64 {
        problems.push("server.body_limit_bytes: must be at least 64".to_owned());
    }

    let endpoints = match (genesys.base_url.trim(), genesys.region.trim()) {
        ("", "") => {
            problems.push(
                "genesys.base_url (GENESYS_BASE_URL) or genesys.region (GENESYS_REGION): one must be set"
                    .to_owned(),
            );
            None
        }
        (url, "") => {
            let login = Some(genesys.login_url.trim()).filter(|l| !l.is_empty());
            Endpoints::from_urls(url, login)
                .map_err(|e| problems.push(format!("genesys.base_url/login_url: {e}")))
                .ok()
        }
        ("", region) => Endpoints::from_region(region)
            .map_err(|e| problems.push(format!("genesys.region (GENESYS_REGION): {e}")))
            .ok(),
        (_, _) => {
            problems.push(
                "genesys.base_url and genesys.region: set one of them, not both (GENESYS_BASE_URL / GENESYS_REGION)"
                    .to_owned(),
            );
            None
        }
    };
    if genesys.client_id.trim().is_empty() {
        problems.push("genesys.client_id (GENESYS_CLIENT_ID): must be set".to_owned());
    }
    let secret_file = genesys.client_secret_file.trim();
    let client_secret = if secret_file.is_empty() {
        if genesys.client_secret.expose_secret().is_empty() {
            problems.push(
                "genesys.client_secret (GENESYS_CLIENT_SECRET or GENESYS_CLIENT_SECRET_FILE): must be set"
                    .to_owned(),
            );
        }
        genesys.client_secret
    } else {
        match std::fs::read_to_string(secret_file) {
            Ok(text) => {
                let secret = SecretString::from(text.trim_end_matches(['\r', '\n']).to_owned());
                if secret.expose_secret().is_empty() {
                    problems.push(format!(
                        "genesys.client_secret_file (GENESYS_CLIENT_SECRET_FILE): {secret_file} is empty"
                    ));
                }
                secret
            }
            Err(e) => {
                problems.push(format!(
                    "genesys.client_secret_file (GENESYS_CLIENT_SECRET_FILE): cannot read {secret_file}: {}",
                    e.kind()
                ));
                empty_secret()
            }
        }
    };
    let ms = Duration::from_millis;
    for (name, value) in [
        ("genesys.budget_ms", genesys.budget_ms),
        ("genesys.attempt_timeout_ms", genesys.attempt_timeout_ms),
        ("genesys.connect_timeout_ms", genesys.connect_timeout_ms),
        ("genesys.login_retry_initial_ms", genesys.login_retry_initial_ms),
        ("genesys.login_retry_max_ms", genesys.login_retry_max_ms),
    ] {
        if value == 0 {
            problems.push(format!("{name}: must be greater than 0"));
        }
    }
    if genesys.max_attempts == 0 {
        problems.push("genesys.max_attempts: must be at least 1".to_owned());
    }
    if genesys.max_connections_per_worker == 0 {
        problems.push("genesys.max_connections_per_worker: must be at least 1".to_owned());
    }

    let source_system = guest.source_system.trim().to_owned();
    if source_system.is_empty() || source_system.chars().count() > domain::ATTRIBUTE_VALUE_MAX_CHARS {
        problems.push("guest.source_system: must be 1 to 1024 characters".to_owned());
    }
    let default_language = LanguageTag::parse_field(guest.default_language.trim(), "guest.default_language")
        .map_err(|v| problems.push(v.to_string()))
        .unwrap_or_default();
    let mut allowed_queues = Vec::new();
    for raw in &guest.allowed_queues {
        match QueueId::parse_field(raw, "guest.allowed_queues") {
            Ok(q) => allowed_queues.push(q),
            Err(v) => problems.push(format!("{v} (got {raw:?})")),
        }
    }

    let mut allowed_origins = Vec::new();
    for raw in &cors.allowed_origins {
        match raw.parse::<AllowedOrigin>() {
            Ok(o) => allowed_origins.push(o),
            Err(why) => problems.push(format!("cors.allowed_origins (FRONTEND_ORIGIN): {why}")),
        }
    }

    let mut trusted_proxies = Vec::new();
    for raw in &rate_limit.trusted_proxies {
        match raw.parse::<IpNetwork>() {
            Ok(n) => trusted_proxies.push(n),
            Err(why) => problems.push(format!("rate_limit.trusted_proxies: {why}")),
        }
    }
    if rate_limit.enabled {
        if !(MIN_RATE_PER_SECOND..=MAX_RATE_PER_SECOND).contains(&rate_limit.per_second) {
            problems.push(format!(
                "rate_limit.per_second: must be from {MIN_RATE_PER_SECOND} to {MAX_RATE_PER_SECOND}"
            ));
        }
        if rate_limit.burst == 0 {
            problems.push("rate_limit.burst: must be at least 1".to_owned());
        }
        if rate_limit.max_tracked_ips == 0 {
            problems.push("rate_limit.max_tracked_ips: must be at least 1".to_owned());
        }
        if rate_limit.prune_interval_seconds == 0 {
            problems.push("rate_limit.prune_interval_seconds: must be at least 1".to_owned());
        }
    }

    let format = match log.format.trim() {
        "json" => LogFormat::Json,
        "text" => LogFormat::Text,
        _ => {
            problems.push("log.format: must be \"json\" or \"text\"".to_owned());
            LogFormat::Json
        }
    };
    let level = env
        .get("RUST_LOG")
        .filter(|v| !v.trim().is_empty())
        .cloned()
        .unwrap_or(log.level);
    if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
        problems.push(format!(
            "log.level (RUST_LOG): {level:?} is not a valid log filter"
        ));
    }

    if !problems.is_empty() {
        return Err(ConfigProblems(problems));
    }
    Ok(Settings {
        environment,
        server: ServerSettings {
            host: server.host.trim().to_owned(),
            port: server.port,
            workers: server.workers,
            body_limit_bytes: server.body_limit_bytes,
            drain_delay: ms(server.drain_delay_ms),
            shutdown_timeout: Duration::from_secs(server.shutdown_timeout_seconds),
        },
        genesys: GenesysSettings {
            endpoints: endpoints.expect("validated above"),
            client_id: genesys.client_id.trim().to_owned(),
            client_secret,
            retry: RetrySettings {
                budget: ms(genesys.budget_ms),
                attempt_timeout: ms(genesys.attempt_timeout_ms),
                connect_timeout: ms(genesys.connect_timeout_ms),
                max_attempts: genesys.max_attempts,
                backoff_base: ms(genesys.backoff_base_ms),
                backoff_cap: ms(genesys.backoff_cap_ms),
            },
            max_connections_per_worker: genesys.max_connections_per_worker,
            login_retry_initial: ms(genesys.login_retry_initial_ms),
            login_retry_max: ms(genesys.login_retry_max_ms),
        },
        guest: GuestSettings {
            source_system,
            default_language,
            allowed_queues: (!allowed_queues.is_empty()).then_some(allowed_queues),
        },
        cors: CorsSettings {
            allowed_origins,
            require_origin: cors.require_origin,
            max_age: Duration::from_secs(cors.max_age_seconds),
        },
        rate_limit: RateLimitSettings {
            enabled: rate_limit.enabled,
            per_second: rate_limit.per_second,
            burst: rate_limit.burst,
            trusted_proxies,
            max_tracked_ips: rate_limit.max_tracked_ips,
            prune_interval: Duration::from_secs(rate_limit.prune_interval_seconds),
        },
        log: LogSettings { format, level },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config")
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn problems(pairs: &[(&str, &str)]) -> Vec<String> {
        Settings::load(&config_dir(), &env(pairs)).unwrap_err().0
    }

    #[test]
    fn local_defaults_point_at_the_emulator() {
        let s = Settings::load(&config_dir(), &env(&[])).unwrap();
        assert_eq!(s.environment, "local");
        assert_eq!(s.genesys.endpoints.api_base, "http://localhost:8081");
        assert_eq!(s.genesys.endpoints.login_base, "http://localhost:8081");
        assert_eq!(s.genesys.client_id, "local-client");
        assert_eq!(s.server.port, 3000);
        assert_eq!(s.server.body_limit_bytes, 4096);
        assert_eq!(s.log.format, LogFormat::Text);
        assert!(
            s.cors
                .allowed_origins
                .iter()
                .any(|o| o.as_str() == "http://localhost:8080")
        );
        assert_eq!(s.guest.source_system, "embedded-widget");
    }

    #[test]
    fn unknown_app_env_is_rejected_by_name() {
        let p = problems(&[("APP_ENV", "staging")]);
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("APP_ENV:"), "{p:?}");
    }

    #[test]
    fn production_requires_credentials_from_the_environment_and_logs_json() {
        let p = problems(&[("APP_ENV", "production"), ("GENESYS_REGION", "mypurecloud.ie")]);
        assert!(p.iter().any(|l| l.contains("GENESYS_CLIENT_ID")), "{p:?}");
        assert!(p.iter().any(|l| l.contains("GENESYS_CLIENT_SECRET")), "{p:?}");

        let s = Settings::load(
            &config_dir(),
            &env(&[
                ("APP_ENV", "production"),
                ("GENESYS_REGION", "mypurecloud.ie"),
                ("GENESYS_CLIENT_ID", "prod-id"),
                ("GENESYS_CLIENT_SECRET", "prod-secret-value"),
                (
                    "FRONTEND_ORIGIN",
                    "https://www.example.com, https://shop.example.com",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(s.log.format, LogFormat::Json);
        assert_eq!(s.genesys.endpoints.login_base, "https://login.mypurecloud.ie");
        assert_eq!(s.cors.allowed_origins.len(), 2);
        assert!(!format!("{s:?}").contains("prod-secret-value"));
    }

    #[test]
    fn seed_variables_override_files_and_app_variables() {
        let s = Settings::load(
            &config_dir(),
            &env(&[
                ("APP__SERVER__PORT", "4000"),
                ("APP__RATE_LIMIT__BURST", "7"),
                (
                    "APP__GUEST__ALLOWED_QUEUES",
                    "a1b2c3d4-e5f6-7890-abcd-ef1234567890",
                ),
                ("APP__RATE_LIMIT__TRUSTED_PROXIES", "10.0.0.0/8,192.168.1.1"),
                ("GENESYS_BASE_URL", "https://api.mypurecloud.de"),
                ("PORT", "5000"),
            ]),
        )
        .unwrap();
        assert_eq!(s.server.port, 5000);
        assert_eq!(s.rate_limit.burst, 7);
        assert_eq!(s.guest.allowed_queues.unwrap().len(), 1);
        assert_eq!(s.rate_limit.trusted_proxies.len(), 2);
        assert_eq!(s.genesys.endpoints.login_base, "https://login.mypurecloud.de");
    }

    #[test]
    fn app_variables_set_list_settings() {
        let s = Settings::load(
            &config_dir(),
            &env(&[(
                "APP__CORS__ALLOWED_ORIGINS",
                "https://a.example, https://b.example:8443,",
            )]),
        )
        .unwrap();
        let origins: Vec<_> = s.cors.allowed_origins.iter().map(AllowedOrigin::as_str).collect();
        assert_eq!(origins, ["https://a.example", "https://b.example:8443"]);
    }

    #[test]
    fn app_variables_keep_text_values_verbatim_even_when_they_look_like_numbers() {
        let s = Settings::load(
            &config_dir(),
            &env(&[
                ("APP__GENESYS__CLIENT_ID", "0123"),
                ("APP__GENESYS__CLIENT_SECRET", "1e5"),
                ("APP__GUEST__SOURCE_SYSTEM", "true"),
                ("APP__CORS__REQUIRE_ORIGIN", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(s.genesys.client_id, "0123");
        assert_eq!(s.genesys.client_secret.expose_secret(), "1e5");
        assert_eq!(s.guest.source_system, "true");
        assert!(s.cors.require_origin);
    }

    #[test]
    fn the_rate_may_be_a_fraction_but_not_zero() {
        let s = Settings::load(&config_dir(), &env(&[("APP__RATE_LIMIT__PER_SECOND", "0.5")])).unwrap();
        assert_eq!(s.rate_limit.per_second, 0.5);
        let p = problems(&[("APP__RATE_LIMIT__PER_SECOND", "0")]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("rate_limit.per_second:"), "{p:?}");
    }

    #[test]
    fn a_wrong_log_format_names_the_setting() {
        let p = problems(&[("APP__LOG__FORMAT", "xml")]);
        assert_eq!(p, ["log.format: must be \"json\" or \"text\""]);
    }

    #[test]
    fn a_region_replaces_the_urls_of_the_files() {
        let s = Settings::load(&config_dir(), &env(&[("GENESYS_REGION", "usw2.pure.cloud")])).unwrap();
        assert_eq!(s.genesys.endpoints.api_base, "https://api.usw2.pure.cloud");
        let p = problems(&[
            ("GENESYS_REGION", "usw2.pure.cloud"),
            ("GENESYS_BASE_URL", "https://x"),
        ]);
        assert!(p[0].contains("GENESYS_REGION"), "{p:?}");
    }

    #[test]
    fn every_problem_is_reported_on_its_own_line_naming_the_setting() {
        let p = problems(&[
            ("FRONTEND_ORIGIN", "https://*.example.com,https://ok.example"),
            ("APP__RATE_LIMIT__TRUSTED_PROXIES", "not-an-ip"),
            ("APP__GUEST__DEFAULT_LANGUAGE", "english_us"),
            ("GENESYS_BASE_URL", "ftp://x"),
            ("GENESYS_CLIENT_SECRET_FILE", "/nonexistent/secret"),
        ]);
        assert_eq!(p.len(), 5, "{p:?}");
        assert!(p.iter().any(|l| l.starts_with("cors.allowed_origins")));
        assert!(p.iter().any(|l| l.starts_with("rate_limit.trusted_proxies")));
        assert!(p.iter().any(|l| l.starts_with("guest.default_language")));
        assert!(p.iter().any(|l| l.contains("GENESYS_BASE_URL")));
        assert!(p.iter().any(|l| l.contains("GENESYS_CLIENT_SECRET_FILE")));
    }

    #[test]
    fn a_mistyped_value_names_the_key_without_echoing_it() {
        let p = problems(&[("APP__SERVER__WORKERS", "many-secret-ish")]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("server.workers"), "{p:?}");
        assert!(!p[0].contains("many-secret-ish"), "{p:?}");
    }

    #[test]
    fn the_secret_file_wins_and_loses_its_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("api-secret-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "from-file\n").unwrap();
        let s = Settings::load(
            &config_dir(),
            &env(&[("GENESYS_CLIENT_SECRET_FILE", file.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(s.genesys.client_secret.expose_secret(), "from-file");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_empty_secret_file_is_a_problem() {
        let dir = std::env::temp_dir().join(format!("api-secret-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "\n").unwrap();
        let p = problems(&[("GENESYS_CLIENT_SECRET_FILE", file.to_str().unwrap())]);
        std::fs::remove_dir_all(dir).unwrap();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("genesys.client_secret_file") && p[0].ends_with("is empty"),
            "{p:?}"
        );
    }

    #[test]
    fn dotenv_fills_gaps_but_never_overrides_the_real_environment() {
        let dir = std::env::temp_dir().join(format!("api-dotenv-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".env");
        std::fs::write(&path, "PORT=1111\nGENESYS_CLIENT_ID=from-dotenv\n").unwrap();
        let merged = environment_with_dotenv(env(&[("PORT", "2222")]), &path).unwrap();
        assert_eq!(merged["PORT"], "2222");
        assert_eq!(merged["GENESYS_CLIENT_ID"], "from-dotenv");
        let missing = environment_with_dotenv(env(&[]), &dir.join("absent")).unwrap();
        assert!(missing.is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn origins_must_be_exact_scheme_host_port() {
        for ok in [
            "https://www.example.com",
            "http://localhost:8080",
            "http://[::1]:3000",
            "HTTPS://A.example",
        ] {
            assert!(ok.parse::<AllowedOrigin>().is_ok(), "{ok}");
        }
        for bad in [
            "*",
            "https://*.example.com",
            "www.example.com",
            "https://example.com/",
            "https://example.com/path",
            "ftp://example.com",
            "https://example.com:0",
            "https://example.com:443",
            "https://user@example.com",
        ] {
            assert!(bad.parse::<AllowedOrigin>().is_err(), "{bad}");
        }
    }

    #[test]
    fn networks_match_addresses_and_cidr_blocks() {
        let net: IpNetwork = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        let one: IpNetwork = "fd00::1".parse().unwrap();
        assert!(one.contains("fd00::1".parse().unwrap()));
        assert!(!one.contains("fd00::2".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpNetwork>().is_err());
    }
}
