//! Start-up settings (TOML file, `MOCK__...` environment, flags) and the run-time settings the admin
//! API reads and patches.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use domain::QueueId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::deployments::DeploymentConfig;

/// The file read when `--config` is not given, relative to the working directory.
pub const DEFAULT_CONFIG_PATH: &str = "config/mock-genesys.toml";
/// Port of the standalone server.
pub const DEFAULT_PORT: u16 = 8081;
/// Interface of the standalone server: loopback only (containers set `MOCK__HOST=0.0.0.0`).
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// Most journal entries kept; older ones are dropped first.
pub const DEFAULT_JOURNAL_LIMIT: usize = 10_000;
/// Most bytes the journal is charged for (see `JournalEntry` bodies and headers); older entries are
/// dropped first.
pub const DEFAULT_JOURNAL_MAX_BYTES: usize = 32 * 1024 * 1024;
/// Default lifetime of messaging JWTs (Genesys' default), unless the identity provider's access
/// token expires sooner.
pub const DEFAULT_MESSAGING_JWT_TTL_SECONDS: u64 = 900;
/// Default lifetime of web-messaging refresh tokens (Genesys' default).
pub const DEFAULT_REFRESH_TOKEN_TTL_SECONDS: u64 = 86_400;
/// Default bound of the web-messaging session store (authenticated sessions with their refresh
/// tokens, and anonymous session tokens seen on the WebSocket).
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;
/// Default bound of WebSocket connections open at once.
pub const DEFAULT_MAX_WEBSOCKETS: usize = 1_000;
/// Default idle timeout of a WebSocket: no frame (pongs included) for this long closes it.
pub const DEFAULT_WEBSOCKET_IDLE_TIMEOUT_SECONDS: u64 = 120;
/// Default largest WebSocket message (and frame) accepted, in bytes.
pub const DEFAULT_WEBSOCKET_MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Default timeout of each call to an identity provider (discovery, token, JWKS), in milliseconds.
pub const DEFAULT_IDENTITY_PROVIDER_TIMEOUT_MS: u64 = 5_000;
/// Default agent reply to a guest's text; `{text}` is replaced by the guest's text.
pub const DEFAULT_AGENT_REPLY: &str = "echo: {text}";
/// Default access-token lifetime (Genesys' default).
pub const DEFAULT_TOKEN_TTL_SECONDS: u64 = 86_400;
/// Default guest-token lifetime.
pub const DEFAULT_GUEST_TOKEN_TTL_SECONDS: u64 = 3_600;
/// Default `iss` of guest tokens.
pub const DEFAULT_ISSUER: &str = "https://login.mock-genesys.local";
/// Prefix of the environment variables that override the file (`MOCK__PORT`, `MOCK__RATE_LIMIT__REQUESTS`).
pub const ENV_PREFIX: &str = "MOCK";

/// Longest accepted token lifetime: ten years, far below `Instant` overflow.
const MAX_TTL_SECONDS: u64 = 315_360_000;
/// Longest accepted rate-limit window: one day.
const MAX_WINDOW_SECONDS: u64 = 86_400;
/// Longest accepted latency: one minute.
const MAX_LATENCY_MS: u64 = 60_000;
/// Longest accepted identity-provider timeout: one minute.
const MAX_IDENTITY_PROVIDER_TIMEOUT_MS: u64 = 60_000;
/// Longest accepted WebSocket idle timeout: one day.
const MAX_WEBSOCKET_IDLE_SECONDS: u64 = 86_400;
/// Accepted WebSocket message sizes: from a small action to 16 MiB.
const WEBSOCKET_MESSAGE_BYTES_RANGE: std::ops::RangeInclusive<usize> = 256..=16 * 1024 * 1024;
/// Longest accepted agent reply template, in characters.
const MAX_AGENT_REPLY_CHARS: usize = 4_096;

/// An OAuth client the emulator accepts.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// `client_id`.
    pub id: String,
    /// `client_secret`. Never logged.
    pub secret: String,
    /// Granted scopes, e.g. `webchat:guest:create`.
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl ClientConfig {
    /// A client with the given id, secret and scopes.
    pub fn new(id: &str, secret: &str, scopes: &[&str]) -> Self {
        Self {
            id: id.to_owned(),
            secret: secret.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// A routing queue the emulator knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Queue id.
    pub id: QueueId,
    /// Display name.
    pub name: String,
}

impl QueueConfig {
    /// A queue; panics if `id` is not a UUID (meant for literals in tests and defaults).
    pub fn new(id: &str, name: &str) -> Self {
        Self {
            id: id.parse().expect("queue id literal must be a UUID"),
            name: name.to_owned(),
        }
    }
}

/// A fixed-window rate limit per OAuth client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// Window length in seconds.
    pub window_seconds: u64,
}

impl RateLimit {
    /// Genesys' documented per-client figure: 300 requests per 60 s.
    pub const GENESYS_DEFAULT: RateLimit = RateLimit {
        requests: 300,
        window_seconds: 60,
    };
}

/// Delay added to every Genesys route: a fixed number of milliseconds or a uniform range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Latency {
    /// Always this many milliseconds.
    Fixed(u64),
    /// A uniformly drawn number of milliseconds within `min..=max`.
    Range {
        /// Shortest delay in milliseconds.
        min: u64,
        /// Longest delay in milliseconds.
        max: u64,
    },
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Fixed(u64),
            Range { min: u64, max: u64 },
        }
        // The untagged error ("did not match any variant") would not say what is expected.
        match Raw::deserialize(d) {
            Ok(Raw::Fixed(ms)) => Ok(Latency::Fixed(ms)),
            Ok(Raw::Range { min, max }) => Ok(Latency::Range { min, max }),
            Err(_) => Err(serde::de::Error::custom(
                "latency must be a number of milliseconds or a range {\"min\": ms, \"max\": ms}",
            )),
        }
    }
}

impl Default for Latency {
    fn default() -> Self {
        Latency::Fixed(0)
    }
}

impl Latency {
    /// The delay for one request.
    pub fn pick(&self) -> Duration {
        match *self {
            Latency::Fixed(ms) => Duration::from_millis(ms),
            Latency::Range { min, max } => Duration::from_millis(fastrand::u64(min..=max)),
        }
    }
}

/// How the binary writes its logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A setting that failed validation, named as the source that set it spells it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting `{setting}`: {reason}")]
pub struct InvalidSetting {
    /// The setting's name (`token_ttl_seconds` in files, `tokenTtlSeconds` on the admin API).
    pub setting: String,
    /// What is wrong.
    pub reason: String,
}

impl InvalidSetting {
    fn new(setting: &str, reason: impl Into<String>) -> Self {
        Self {
            setting: setting.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Why the start-up settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file could not be read or a value has the wrong type.
    #[error("cannot load settings: {0}")]
    Load(String),
    /// A value is out of range.
    #[error(transparent)]
    Invalid(#[from] InvalidSetting),
}

/// Every start-up setting of the emulator.
///
/// `Default` holds the spec's defaults with port 0 on 127.0.0.1, as in-process tests want;
/// [`MockSettings::standalone`] holds the binary's defaults (port 8081 on loopback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockSettings {
    /// Interface the binary binds ([`crate::MockServer`] always binds 127.0.0.1).
    pub host: String,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// Interface of the admin listener; `host` when `None`.
    pub admin_host: Option<String>,
    /// Port of a separate admin listener: when set, `/__admin` is served only there (and the
    /// Genesys routes only on `port`); 0 picks a free one.
    pub admin_port: Option<u16>,
    /// `iss` of guest tokens.
    pub issuer: String,
    /// Accepted OAuth clients.
    pub clients: Vec<ClientConfig>,
    /// Known routing queues.
    pub queues: Vec<QueueConfig>,
    /// Per-client rate limit on the API routes; `None` turns it off.
    pub rate_limit: Option<RateLimit>,
    /// Lifetime of access tokens in seconds.
    pub token_ttl_seconds: u64,
    /// Lifetime of guest tokens in seconds.
    pub guest_token_ttl_seconds: u64,
    /// Delay added to every Genesys route.
    pub latency_ms: Latency,
    /// Most journal entries kept.
    pub journal_limit: usize,
    /// Most bytes the journal is charged for.
    pub journal_max_bytes: usize,
    /// Log format of the binary.
    pub log_format: LogFormat,
    /// Web deployments served by the web-messaging routes and the WebSocket.
    pub deployments: Vec<DeploymentConfig>,
    /// Lifetime of messaging JWTs in seconds (shortened to the identity provider's access token's).
    pub messaging_jwt_ttl_seconds: u64,
    /// Lifetime of web-messaging refresh tokens in seconds.
    pub refresh_token_ttl_seconds: u64,
    /// The agent's reply to a guest's text; `{text}` is replaced by the guest's text.
    pub agent_reply: String,
    /// Bound of the web-messaging session store.
    pub max_sessions: usize,
    /// Bound of WebSocket connections open at once.
    pub max_websockets: usize,
    /// Seconds without any frame after which a WebSocket is closed.
    pub websocket_idle_timeout_seconds: u64,
    /// Largest WebSocket message (and frame) accepted, in bytes.
    pub websocket_max_message_bytes: usize,
    /// Timeout of each call to an identity provider, in milliseconds.
    pub identity_provider_timeout_ms: u64,
}

impl Default for MockSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 0,
            admin_host: None,
            admin_port: None,
            issuer: DEFAULT_ISSUER.to_owned(),
            clients: vec![
                ClientConfig::new(
                    "local-client",
                    "local-secret",
                    &[
                        domain::genesys::GUEST_CREATE_SCOPE,
                        domain::webmessaging::DEPLOYMENT_VIEW_PERMISSION,
                    ],
                ),
                ClientConfig::new("no-scope-client", "no-scope-secret", &[]),
            ],
            queues: vec![
                QueueConfig::new("a1b2c3d4-e5f6-7890-abcd-ef1234567890", "Support"),
                QueueConfig::new("0f8e2c7a-3b1d-4c5e-9a6f-112233445566", "Sales"),
            ],
            rate_limit: Some(RateLimit::GENESYS_DEFAULT),
            token_ttl_seconds: DEFAULT_TOKEN_TTL_SECONDS,
            guest_token_ttl_seconds: DEFAULT_GUEST_TOKEN_TTL_SECONDS,
            latency_ms: Latency::default(),
            journal_limit: DEFAULT_JOURNAL_LIMIT,
            journal_max_bytes: DEFAULT_JOURNAL_MAX_BYTES,
            log_format: LogFormat::Text,
            deployments: vec![DeploymentConfig::local_demo()],
            messaging_jwt_ttl_seconds: DEFAULT_MESSAGING_JWT_TTL_SECONDS,
            refresh_token_ttl_seconds: DEFAULT_REFRESH_TOKEN_TTL_SECONDS,
            agent_reply: DEFAULT_AGENT_REPLY.to_owned(),
            max_sessions: DEFAULT_MAX_SESSIONS,
            max_websockets: DEFAULT_MAX_WEBSOCKETS,
            websocket_idle_timeout_seconds: DEFAULT_WEBSOCKET_IDLE_TIMEOUT_SECONDS,
            websocket_max_message_bytes: DEFAULT_WEBSOCKET_MAX_MESSAGE_BYTES,
            identity_provider_timeout_ms: DEFAULT_IDENTITY_PROVIDER_TIMEOUT_MS,
        }
    }
}

impl MockSettings {
    /// The binary's built-in defaults: the spec's defaults on `127.0.0.1:8081`.
    pub fn standalone() -> Self {
        Self {
            host: DEFAULT_HOST.to_owned(),
            port: DEFAULT_PORT,
            ..Self::default()
        }
    }

    /// The part of the settings the admin API can change at run time.
    pub fn runtime(&self) -> RuntimeSettings {
        RuntimeSettings {
            token_ttl_seconds: self.token_ttl_seconds,
            guest_token_ttl_seconds: self.guest_token_ttl_seconds,
            rate_limit: self.rate_limit,
            latency_ms: self.latency_ms,
            messaging_jwt_ttl_seconds: self.messaging_jwt_ttl_seconds,
            refresh_token_ttl_seconds: self.refresh_token_ttl_seconds,
            agent_reply: self.agent_reply.clone(),
        }
    }

    /// Checks every value, naming the first bad one as the TOML file spells it.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.host.trim().is_empty() {
            return Err(InvalidSetting::new("host", "must not be empty"));
        }
        if self.issuer.trim().is_empty() {
            return Err(InvalidSetting::new("issuer", "must not be empty"));
        }
        if self.admin_host.as_ref().is_some_and(|h| h.trim().is_empty()) {
            return Err(InvalidSetting::new("admin_host", "must not be empty"));
        }
        if self.admin_host.is_some() && self.admin_port.is_none() {
            return Err(InvalidSetting::new(
                "admin_host",
                "needs admin_port (without it /__admin shares the main listener)",
            ));
        }
        if self.admin_port.is_some_and(|p| p != 0 && p == self.port)
            && self.admin_host.as_ref().is_none_or(|h| *h == self.host)
        {
            return Err(InvalidSetting::new(
                "admin_port",
                "must differ from port (leave it unset to serve /__admin on the main listener)",
            ));
        }
        if self.journal_limit == 0 {
            return Err(InvalidSetting::new("journal_limit", "must be at least 1"));
        }
        if self.journal_max_bytes == 0 {
            return Err(InvalidSetting::new("journal_max_bytes", "must be at least 1"));
        }
        if self.max_sessions == 0 {
            return Err(InvalidSetting::new("max_sessions", "must be at least 1"));
        }
        if self.max_websockets == 0 {
            return Err(InvalidSetting::new("max_websockets", "must be at least 1"));
        }
        if !(1..=MAX_WEBSOCKET_IDLE_SECONDS).contains(&self.websocket_idle_timeout_seconds) {
            return Err(InvalidSetting::new(
                "websocket_idle_timeout_seconds",
                format!("must be between 1 and {MAX_WEBSOCKET_IDLE_SECONDS}"),
            ));
        }
        if !WEBSOCKET_MESSAGE_BYTES_RANGE.contains(&self.websocket_max_message_bytes) {
            return Err(InvalidSetting::new(
                "websocket_max_message_bytes",
                format!(
                    "must be between {} and {}",
                    WEBSOCKET_MESSAGE_BYTES_RANGE.start(),
                    WEBSOCKET_MESSAGE_BYTES_RANGE.end()
                ),
            ));
        }
        if !(1..=MAX_IDENTITY_PROVIDER_TIMEOUT_MS).contains(&self.identity_provider_timeout_ms) {
            return Err(InvalidSetting::new(
                "identity_provider_timeout_ms",
                format!("must be between 1 and {MAX_IDENTITY_PROVIDER_TIMEOUT_MS}"),
            ));
        }
        let mut deployment_ids = HashSet::new();
        for (i, deployment) in self.deployments.iter().enumerate() {
            let prefix = format!("deployments[{i}].");
            deployment
                .validate(&prefix)
                .map_err(|(setting, reason)| InvalidSetting::new(&setting, reason))?;
            if !deployment_ids.insert(deployment.id.to_ascii_lowercase()) {
                return Err(InvalidSetting::new(
                    &format!("{prefix}id"),
                    format!("duplicate deployment id {:?}", deployment.id),
                ));
            }
        }
        if self.deployments.len() > crate::deployments::MAX_DEPLOYMENTS {
            return Err(InvalidSetting::new(
                "deployments",
                format!("must hold at most {}", crate::deployments::MAX_DEPLOYMENTS),
            ));
        }
        let mut client_ids = HashSet::new();
        for (i, client) in self.clients.iter().enumerate() {
            if client.id.is_empty() || client.secret.is_empty() {
                return Err(InvalidSetting::new(
                    &format!("clients[{i}]"),
                    "id and secret must not be empty",
                ));
            }
            if !client_ids.insert(client.id.as_str()) {
                return Err(InvalidSetting::new(
                    &format!("clients[{i}].id"),
                    format!("duplicate client id {:?}", client.id),
                ));
            }
        }
        let mut queue_ids = HashSet::new();
        for (i, queue) in self.queues.iter().enumerate() {
            if !queue_ids.insert(queue.id) {
                return Err(InvalidSetting::new(
                    &format!("queues[{i}].id"),
                    format!("duplicate queue id {}", queue.id),
                ));
            }
        }
        self.runtime().validate(&RuntimeNames::FILE)
    }

    /// Loads the settings in layers: built-in defaults, then the TOML file, then `MOCK__...`
    /// variables (`env`, or the process environment when `None`), then `flags`.
    ///
    /// The file is `flags.config` when given (it must exist), else [`DEFAULT_CONFIG_PATH`] if it
    /// exists.
    pub fn load(flags: &FlagOverrides, env: Option<HashMap<String, String>>) -> Result<Self, SettingsError> {
        let mut builder = config::Config::builder();
        match &flags.config {
            Some(path) => {
                if !path.is_file() {
                    return Err(SettingsError::Load(format!(
                        "config file {} does not exist",
                        path.display()
                    )));
                }
                builder = builder.add_source(toml_file(path).required(true));
            }
            None => builder = builder.add_source(toml_file(Path::new(DEFAULT_CONFIG_PATH)).required(false)),
        }
        let mut environment = config::Environment::with_prefix(ENV_PREFIX)
            .separator("__")
            .try_parsing(true);
        if let Some(env) = env {
            environment = environment.source(Some(env.into_iter().collect()));
        }
        let file: FileSettings = builder
            .add_source(environment)
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| SettingsError::Load(e.to_string()))?;
        let mut settings = file.into_settings();
        if let Some(host) = &flags.host {
            settings.host.clone_from(host);
        }
        if let Some(port) = flags.port {
            settings.port = port;
        }
        if let Some(host) = &flags.admin_host {
            settings.admin_host = Some(host.clone());
        }
        if let Some(port) = flags.admin_port {
            settings.admin_port = Some(port);
        }
        if let Some(format) = flags.log_format {
            settings.log_format = format;
        }
        settings.validate()?;
        Ok(settings)
    }
}

fn toml_file(path: &Path) -> config::File<config::FileSourceFile, config::FileFormat> {
    config::File::from(path).format(config::FileFormat::Toml)
}

/// Command-line values that override the file and the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagOverrides {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--host`.
    pub host: Option<String>,
    /// `--port`.
    pub port: Option<u16>,
    /// `--admin-host`.
    pub admin_host: Option<String>,
    /// `--admin-port`.
    pub admin_port: Option<u16>,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
}

/// The TOML/environment shape of [`MockSettings`]; missing keys take the standalone defaults.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileSettings {
    host: String,
    port: u16,
    admin_host: Option<String>,
    admin_port: Option<u16>,
    issuer: String,
    clients: Vec<ClientConfig>,
    queues: Vec<QueueConfig>,
    rate_limit: FileRateLimit,
    token_ttl_seconds: u64,
    guest_token_ttl_seconds: u64,
    latency_ms: Latency,
    journal_limit: usize,
    journal_max_bytes: usize,
    log_format: LogFormat,
    deployments: Vec<DeploymentConfig>,
    messaging_jwt_ttl_seconds: u64,
    refresh_token_ttl_seconds: u64,
    agent_reply: String,
    max_sessions: usize,
    max_websockets: usize,
    websocket_idle_timeout_seconds: u64,
    websocket_max_message_bytes: usize,
    identity_provider_timeout_ms: u64,
}

/// TOML has no null, so the file switches the limit off with `enabled = false`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileRateLimit {
    enabled: bool,
    requests: u32,
    window_seconds: u64,
}

impl Default for FileSettings {
    fn default() -> Self {
        let d = MockSettings::standalone();
        let limit = d.rate_limit.unwrap_or(RateLimit::GENESYS_DEFAULT);
        Self {
            host: d.host,
            port: d.port,
            admin_host: d.admin_host,
            admin_port: d.admin_port,
            issuer: d.issuer,
            clients: d.clients,
            queues: d.queues,
            rate_limit: FileRateLimit {
                enabled: d.rate_limit.is_some(),
                requests: limit.requests,
                window_seconds: limit.window_seconds,
            },
            token_ttl_seconds: d.token_ttl_seconds,
            guest_token_ttl_seconds: d.guest_token_ttl_seconds,
            latency_ms: d.latency_ms,
            journal_limit: d.journal_limit,
            journal_max_bytes: d.journal_max_bytes,
            log_format: d.log_format,
            deployments: d.deployments,
            messaging_jwt_ttl_seconds: d.messaging_jwt_ttl_seconds,
            refresh_token_ttl_seconds: d.refresh_token_ttl_seconds,
            agent_reply: d.agent_reply,
            max_sessions: d.max_sessions,
            max_websockets: d.max_websockets,
            websocket_idle_timeout_seconds: d.websocket_idle_timeout_seconds,
            websocket_max_message_bytes: d.websocket_max_message_bytes,
            identity_provider_timeout_ms: d.identity_provider_timeout_ms,
        }
    }
}

impl Default for FileRateLimit {
    fn default() -> Self {
        Self {
            enabled: true,
            requests: RateLimit::GENESYS_DEFAULT.requests,
            window_seconds: RateLimit::GENESYS_DEFAULT.window_seconds,
        }
    }
}

impl FileSettings {
    fn into_settings(self) -> MockSettings {
        MockSettings {
            host: self.host,
            port: self.port,
            admin_host: self.admin_host,
            admin_port: self.admin_port,
            issuer: self.issuer,
            clients: self.clients,
            queues: self.queues,
            rate_limit: self.rate_limit.enabled.then_some(RateLimit {
                requests: self.rate_limit.requests,
                window_seconds: self.rate_limit.window_seconds,
            }),
            token_ttl_seconds: self.token_ttl_seconds,
            guest_token_ttl_seconds: self.guest_token_ttl_seconds,
            latency_ms: self.latency_ms,
            journal_limit: self.journal_limit,
            journal_max_bytes: self.journal_max_bytes,
            log_format: self.log_format,
            deployments: self.deployments,
            messaging_jwt_ttl_seconds: self.messaging_jwt_ttl_seconds,
            refresh_token_ttl_seconds: self.refresh_token_ttl_seconds,
            agent_reply: self.agent_reply,
            max_sessions: self.max_sessions,
            max_websockets: self.max_websockets,
            websocket_idle_timeout_seconds: self.websocket_idle_timeout_seconds,
            websocket_max_message_bytes: self.websocket_max_message_bytes,
            identity_provider_timeout_ms: self.identity_provider_timeout_ms,
        }
    }
}

/// The settings `GET /__admin/settings` shows and `PATCH /__admin/settings` changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeSettings {
    /// Lifetime of newly issued access tokens.
    pub token_ttl_seconds: u64,
    /// Lifetime of newly issued guest tokens.
    pub guest_token_ttl_seconds: u64,
    /// Per-client rate limit; `null` when off.
    pub rate_limit: Option<RateLimit>,
    /// Delay added to every Genesys route.
    pub latency_ms: Latency,
    /// Lifetime of newly issued messaging JWTs (at most the identity provider's access token's).
    pub messaging_jwt_ttl_seconds: u64,
    /// Lifetime of newly issued web-messaging refresh tokens.
    pub refresh_token_ttl_seconds: u64,
    /// The agent's reply to a guest's text; `{text}` is replaced by the guest's text.
    pub agent_reply: String,
}

/// How each run-time setting is spelled in the source being validated.
pub(crate) struct RuntimeNames {
    token_ttl: &'static str,
    guest_token_ttl: &'static str,
    rate_limit_requests: &'static str,
    rate_limit_window: &'static str,
    latency: &'static str,
    messaging_jwt_ttl: &'static str,
    refresh_token_ttl: &'static str,
    agent_reply: &'static str,
}

impl RuntimeNames {
    const FILE: RuntimeNames = RuntimeNames {
        token_ttl: "token_ttl_seconds",
        guest_token_ttl: "guest_token_ttl_seconds",
        rate_limit_requests: "rate_limit.requests",
        rate_limit_window: "rate_limit.window_seconds",
        latency: "latency_ms",
        messaging_jwt_ttl: "messaging_jwt_ttl_seconds",
        refresh_token_ttl: "refresh_token_ttl_seconds",
        agent_reply: "agent_reply",
    };
    pub(crate) const API: RuntimeNames = RuntimeNames {
        token_ttl: "tokenTtlSeconds",
        guest_token_ttl: "guestTokenTtlSeconds",
        rate_limit_requests: "rateLimit.requests",
        rate_limit_window: "rateLimit.windowSeconds",
        latency: "latencyMs",
        messaging_jwt_ttl: "messagingJwtTtlSeconds",
        refresh_token_ttl: "refreshTokenTtlSeconds",
        agent_reply: "agentReply",
    };
}

impl RuntimeSettings {
    pub(crate) fn validate(&self, names: &RuntimeNames) -> Result<(), InvalidSetting> {
        let ttl_range = |name: &str, value: u64| {
            if (1..=MAX_TTL_SECONDS).contains(&value) {
                Ok(())
            } else {
                Err(InvalidSetting::new(
                    name,
                    format!("must be between 1 and {MAX_TTL_SECONDS} seconds, got {value}"),
                ))
            }
        };
        ttl_range(names.token_ttl, self.token_ttl_seconds)?;
        ttl_range(names.guest_token_ttl, self.guest_token_ttl_seconds)?;
        ttl_range(names.messaging_jwt_ttl, self.messaging_jwt_ttl_seconds)?;
        ttl_range(names.refresh_token_ttl, self.refresh_token_ttl_seconds)?;
        if self.agent_reply.chars().count() > MAX_AGENT_REPLY_CHARS {
            return Err(InvalidSetting::new(
                names.agent_reply,
                format!("must hold at most {MAX_AGENT_REPLY_CHARS} characters"),
            ));
        }
        if let Some(limit) = self.rate_limit {
            if limit.requests == 0 {
                return Err(InvalidSetting::new(
                    names.rate_limit_requests,
                    "must be at least 1 (switch the limit off instead)",
                ));
            }
            if !(1..=MAX_WINDOW_SECONDS).contains(&limit.window_seconds) {
                return Err(InvalidSetting::new(
                    names.rate_limit_window,
                    format!("must be between 1 and {MAX_WINDOW_SECONDS} seconds"),
                ));
            }
        }
        let (min, max) = match self.latency_ms {
            Latency::Fixed(ms) => (ms, ms),
            Latency::Range { min, max } => (min, max),
        };
        if min > max {
            return Err(InvalidSetting::new(names.latency, "min must not exceed max"));
        }
        if max > MAX_LATENCY_MS {
            return Err(InvalidSetting::new(
                names.latency,
                format!("must be at most {MAX_LATENCY_MS} ms"),
            ));
        }
        Ok(())
    }

    /// These settings with `patch` applied and validated.
    pub fn patched(&self, patch: &SettingsPatch) -> Result<RuntimeSettings, InvalidSetting> {
        let mut next = self.clone();
        if let Some(ttl) = patch.token_ttl_seconds {
            next.token_ttl_seconds = ttl;
        }
        if let Some(ttl) = patch.guest_token_ttl_seconds {
            next.guest_token_ttl_seconds = ttl;
        }
        if let Some(limit) = patch.rate_limit {
            next.rate_limit = limit;
        }
        if let Some(latency) = patch.latency_ms {
            next.latency_ms = latency;
        }
        if let Some(ttl) = patch.messaging_jwt_ttl_seconds {
            next.messaging_jwt_ttl_seconds = ttl;
        }
        if let Some(ttl) = patch.refresh_token_ttl_seconds {
            next.refresh_token_ttl_seconds = ttl;
        }
        if let Some(reply) = &patch.agent_reply {
            next.agent_reply.clone_from(reply);
        }
        next.validate(&RuntimeNames::API)?;
        Ok(next)
    }
}

/// Body of `PATCH /__admin/settings`: absent fields stay as they are; `"rateLimit": null` turns the
/// limit off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsPatch {
    /// New access-token lifetime in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ttl_seconds: Option<u64>,
    /// New guest-token lifetime in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_token_ttl_seconds: Option<u64>,
    /// `Some(None)` turns the limit off; `Some(Some(..))` sets it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "present_or_null")]
    pub rate_limit: Option<Option<RateLimit>>,
    /// New latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<Latency>,
    /// New messaging-JWT lifetime in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_jwt_ttl_seconds: Option<u64>,
    /// New refresh-token lifetime in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_ttl_seconds: Option<u64>,
    /// New agent reply template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_reply: Option<String>,
}

/// Tells a field set to `null` (`Some(None)`) apart from an absent one (`None`).
mod present_or_null {
    use super::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        value: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load_with(flags: FlagOverrides, env: &[(&str, &str)]) -> Result<MockSettings, SettingsError> {
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        MockSettings::load(&flags, Some(env))
    }

    fn write_temp_toml(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mock-genesys-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("mock-genesys.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn built_in_defaults_match_the_spec() {
        let s = MockSettings::standalone();
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 8081));
        assert_eq!((s.admin_host.as_deref(), s.admin_port), (None, None));
        assert_eq!(
            s.rate_limit,
            Some(RateLimit {
                requests: 300,
                window_seconds: 60
            })
        );
        assert_eq!((s.token_ttl_seconds, s.guest_token_ttl_seconds), (86_400, 3_600));
        assert_eq!(s.latency_ms, Latency::Fixed(0));
        assert_eq!(s.journal_limit, 10_000);
        assert_eq!(s.journal_max_bytes, 32 << 20);
        assert_eq!(
            (s.messaging_jwt_ttl_seconds, s.refresh_token_ttl_seconds),
            (900, 86_400)
        );
        assert_eq!((s.max_sessions, s.max_websockets), (10_000, 1_000));
        assert_eq!(s.identity_provider_timeout_ms, 5_000);
        assert_eq!(s.agent_reply, "echo: {text}");
        assert_eq!(
            s.clients[0].scopes,
            ["webchat:guest:create", "webDeployments:deployment:view"]
        );
        assert_eq!(s.deployments, [DeploymentConfig::local_demo()]);
        let demo = &s.deployments[0];
        assert_eq!(demo.id, "7f6e5d4c-3b2a-4190-8a7b-6c5d4e3f2a1b");
        assert_eq!(
            demo.allowed_domains,
            ["http://localhost:8080", "http://127.0.0.1:8080"]
        );
        assert!(s.clients[1].scopes.is_empty());
        assert_eq!(s.queues[0].id.to_string(), "a1b2c3d4-e5f6-7890-abcd-ef1234567890");
        assert_eq!(MockSettings::default().port, 0);
        s.validate().unwrap();
    }

    #[test]
    fn the_shipped_config_file_equals_the_built_in_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/mock-genesys.toml");
        let flags = FlagOverrides {
            config: Some(path),
            ..FlagOverrides::default()
        };
        assert_eq!(load_with(flags, &[]).unwrap(), MockSettings::standalone());
    }

    #[test]
    fn the_compose_config_file_differs_from_the_defaults_only_in_the_identity_providers_address() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/mock-genesys.compose.toml");
        let flags = FlagOverrides {
            config: Some(path),
            ..FlagOverrides::default()
        };
        let compose = load_with(flags, &[]).unwrap();
        let mut expected = MockSettings::standalone();
        let authentication = expected.deployments[0]
            .authentication
            .as_mut()
            .expect("the default deployment has an OpenID Connect integration");
        authentication.discovery_uri = "http://api:3000/.well-known/openid-configuration".to_owned();
        assert_eq!(compose, expected);
    }

    #[test]
    fn environment_overrides_the_file_and_flags_override_the_environment() {
        let path = write_temp_toml(
            "layers",
            "port = 9000\ntoken_ttl_seconds = 60\n[rate_limit]\nrequests = 5\n",
        );
        let flags = FlagOverrides {
            config: Some(path.clone()),
            ..FlagOverrides::default()
        };
        let env = [
            ("MOCK__PORT", "9100"),
            ("MOCK__RATE_LIMIT__WINDOW_SECONDS", "7"),
            ("MOCK__LATENCY_MS__MIN", "5"),
            ("MOCK__LATENCY_MS__MAX", "9"),
            ("MOCK__LOG_FORMAT", "json"),
        ];
        let s = load_with(flags.clone(), &env).unwrap();
        assert_eq!(s.port, 9100);
        assert_eq!(s.token_ttl_seconds, 60);
        assert_eq!(
            s.rate_limit,
            Some(RateLimit {
                requests: 5,
                window_seconds: 7
            })
        );
        assert_eq!(s.latency_ms, Latency::Range { min: 5, max: 9 });
        assert_eq!(s.log_format, LogFormat::Json);
        let with_flag = FlagOverrides {
            port: Some(9200),
            host: Some("127.0.0.1".into()),
            ..flags
        };
        let s = load_with(with_flag, &env).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 9200));
    }

    #[test]
    fn the_file_can_switch_the_rate_limit_off_and_set_a_fixed_latency() {
        let path = write_temp_toml("off", "latency_ms = 25\n[rate_limit]\nenabled = false\n");
        let flags = FlagOverrides {
            config: Some(path),
            ..FlagOverrides::default()
        };
        let s = load_with(flags, &[]).unwrap();
        assert_eq!(s.rate_limit, None);
        assert_eq!(s.latency_ms, Latency::Fixed(25));
    }

    #[test]
    fn invalid_values_name_the_setting() {
        let err = load_with(FlagOverrides::default(), &[("MOCK__TOKEN_TTL_SECONDS", "0")]).unwrap_err();
        assert!(err.to_string().contains("token_ttl_seconds"), "{err}");
        let err = load_with(FlagOverrides::default(), &[("MOCK__PORT", "eighty")]).unwrap_err();
        assert!(err.to_string().contains("port"), "{err}");
        let err = load_with(FlagOverrides::default(), &[("MOCK__RATE_LIMIT__REQUESTS", "0")]).unwrap_err();
        assert!(err.to_string().contains("rate_limit.requests"), "{err}");
        let path = write_temp_toml("typo", "prot = 1\n");
        let flags = FlagOverrides {
            config: Some(path),
            ..FlagOverrides::default()
        };
        let err = load_with(flags, &[]).unwrap_err();
        assert!(err.to_string().contains("prot"), "{err}");
        let flags = FlagOverrides {
            config: Some(PathBuf::from("/nonexistent/mock.toml")),
            ..FlagOverrides::default()
        };
        assert!(
            load_with(flags, &[])
                .unwrap_err()
                .to_string()
                .contains("/nonexistent/mock.toml")
        );
    }

    #[test]
    fn an_admin_listener_needs_its_own_port() {
        let err = load_with(FlagOverrides::default(), &[("MOCK__ADMIN_HOST", "127.0.0.1")]).unwrap_err();
        assert!(err.to_string().contains("admin_host"), "{err}");
        let err = load_with(FlagOverrides::default(), &[("MOCK__ADMIN_PORT", "8081")]).unwrap_err();
        assert!(err.to_string().contains("admin_port"), "{err}");
        let s = load_with(
            FlagOverrides {
                admin_port: Some(9091),
                ..FlagOverrides::default()
            },
            &[("MOCK__ADMIN_HOST", "0.0.0.0")],
        )
        .unwrap();
        assert_eq!(
            (s.admin_host.as_deref(), s.admin_port),
            (Some("0.0.0.0"), Some(9091))
        );
        let s = load_with(
            FlagOverrides::default(),
            &[("MOCK__PORT", "0"), ("MOCK__ADMIN_PORT", "0")],
        )
        .unwrap();
        assert_eq!(s.admin_port, Some(0), "two random ports never collide");
    }

    #[test]
    fn deployments_and_web_messaging_settings_load_from_the_file() {
        let path = write_temp_toml(
            "deployments",
            r#"
messaging_jwt_ttl_seconds = 300
max_websockets = 5
agent_reply = "Bot: {text}"

[[deployments]]
id = "0b8c9e2f-0a11-4a51-9a35-6f1c1f4e3d7e"
name = "Shop"
status = "Inactive"
allowed_domains = ["*.example.com"]

[deployments.authentication]
discovery_uri = "https://idp.example.com/.well-known/openid-configuration"
client_id = "genesys"
client_secret = "s3cret"

[[deployments]]
id = "11111111-2222-4333-8444-555555555555"
name = "Open"
allow_all_domains = true
"#,
        );
        let flags = FlagOverrides {
            config: Some(path),
            ..FlagOverrides::default()
        };
        let s = load_with(flags, &[("MOCK__MAX_SESSIONS", "7")]).unwrap();
        assert_eq!(
            (s.messaging_jwt_ttl_seconds, s.max_websockets, s.max_sessions),
            (300, 5, 7)
        );
        assert_eq!(s.agent_reply, "Bot: {text}");
        assert_eq!(s.deployments.len(), 2);
        let shop = &s.deployments[0];
        assert_eq!(shop.status, domain::webmessaging::DeploymentStatus::Inactive);
        assert_eq!(shop.authentication.as_ref().unwrap().client_secret, "s3cret");
        assert!(!format!("{s:?}").contains("s3cret"), "Debug redacts the secret");
        let open = &s.deployments[1];
        assert_eq!(open.status, domain::webmessaging::DeploymentStatus::Active);
        assert!(open.allow_all_domains && open.authentication.is_none());
    }

    #[test]
    fn invalid_deployments_name_the_setting() {
        let bad_id = write_temp_toml("bad-id", "[[deployments]]\nid = \"x\"\nname = \"n\"\n");
        let flags = FlagOverrides {
            config: Some(bad_id),
            ..FlagOverrides::default()
        };
        let err = load_with(flags, &[]).unwrap_err();
        assert!(err.to_string().contains("deployments[0].id"), "{err}");
        let twice = "[[deployments]]\nid = \"11111111-2222-4333-8444-555555555555\"\nname = \"a\"\n";
        let path = write_temp_toml("twice", &format!("{twice}{twice}"));
        let flags = FlagOverrides {
            config: Some(path),
            ..FlagOverrides::default()
        };
        let err = load_with(flags, &[]).unwrap_err();
        assert!(err.to_string().contains("deployments[1].id"), "{err}");
    }

    #[test]
    fn a_patch_tells_null_apart_from_absent() {
        let base = MockSettings::default().runtime();
        let off: SettingsPatch = serde_json::from_value(json!({"rateLimit": null})).unwrap();
        assert_eq!(off.rate_limit, Some(None));
        assert_eq!(base.patched(&off).unwrap().rate_limit, None);
        let untouched: SettingsPatch = serde_json::from_value(json!({"tokenTtlSeconds": 5})).unwrap();
        let next = base.patched(&untouched).unwrap();
        assert_eq!(next.rate_limit, base.rate_limit);
        assert_eq!(next.token_ttl_seconds, 5);
        assert_eq!(serde_json::to_value(&off).unwrap(), json!({"rateLimit": null}));
    }

    #[test]
    fn a_patch_is_validated_with_api_names() {
        let base = MockSettings::default().runtime();
        let bad = SettingsPatch {
            latency_ms: Some(Latency::Range { min: 9, max: 1 }),
            ..SettingsPatch::default()
        };
        assert_eq!(base.patched(&bad).unwrap_err().setting, "latencyMs");
        let bad = SettingsPatch {
            guest_token_ttl_seconds: Some(0),
            ..SettingsPatch::default()
        };
        assert_eq!(base.patched(&bad).unwrap_err().setting, "guestTokenTtlSeconds");
    }

    #[test]
    fn a_latency_range_stays_within_its_bounds() {
        let range = Latency::Range { min: 10, max: 12 };
        for _ in 0..100 {
            let ms = range.pick().as_millis();
            assert!((10..=12).contains(&ms), "{ms}");
        }
        assert_eq!(Latency::Fixed(7).pick(), Duration::from_millis(7));
    }
}
