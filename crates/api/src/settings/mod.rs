//! Configuration: TOML layers, environment variables and the seed's variable names, validated into
//! one typed [`Settings`].
//!
//! Layers, later wins: `<dir>/default.toml`, `<dir>/<APP_ENV>.toml`, `APP__<SECTION>__<KEY>`
//! variables, then the seed's names (`GENESYS_CLIENT_ID`, `PORT`, ...). The caller passes the
//! environment as a map (the process environment merged with a `.env` file, see
//! [`environment_with_dotenv`]) so that tests never touch the process environment.
//!
//! - [`sources`]: reading the layers, and which layer wins (including the Genesys URLs, which a
//!   layer sets as a group);
//! - [`seed`]: the seed's variable names and the keys they set;
//! - [`validate`]: every value checked, one line per problem naming the setting;
//! - [`network`]: origins, client networks and the plain-HTTP rule.

mod identity;
mod network;
mod seed;
mod sources;
mod validate;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use domain::{LanguageTag, QueueId};
use genesys_client::{AllowanceSettings, Endpoints, GenesysConfig, RetrySettings};
use secrecy::SecretString;

pub use identity::{
    DEVELOPMENT_KEY_IDS, MIN_SESSION_SECRET_BYTES, OidcSettings, SessionVerification, SiteSessionSettings,
    WebMessagingSettings,
};
pub use network::{AllowedOrigin, IpNetwork, canonical, plain_http_allowed};
pub use seed::SEED_VARIABLES;
pub use sources::{environment_with_dotenv, listening_port};

/// The environments a configuration file exists for.
pub const ENVIRONMENTS: [&str; 3] = ["local", "test", "production"];

/// The environment whose configuration must be safe for the public internet.
pub const PRODUCTION: &str = "production";

/// Lowest `rate_limit.per_second`: one request every 10 000 s (under three hours).
pub const MIN_RATE_PER_SECOND: f64 = 0.0001;
/// Highest `rate_limit.per_second`: one request a microsecond.
pub const MAX_RATE_PER_SECOND: f64 = 1_000_000.0;

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
    /// Genesys web messaging and the identity bridge; `None` when no deployment is configured.
    pub web_messaging: Option<WebMessagingSettings>,
    /// Adjustments validation made that the operator should hear of (logged at start-up).
    pub notes: Vec<String>,
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
    /// How long a client may take to send a request's head (408 after it).
    pub request_head_timeout: Duration,
    /// How long a client may take to send a request's body (408 after it).
    pub body_timeout: Duration,
    /// How long a connection may take to close once its response is sent.
    pub client_disconnect_timeout: Duration,
    /// How long an idle keep-alive connection stays open.
    pub keep_alive: Duration,
    /// Most connections one worker serves at once; more wait in the listen queue.
    pub max_connections_per_worker: usize,
    /// Most request headers accepted (431 above it).
    pub max_header_count: usize,
    /// Most bytes of request header names and values accepted (431 above it).
    pub max_header_bytes: usize,
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
    /// How much of Genesys' allowance this process spends.
    pub allowance: AllowanceSettings,
    /// The largest share of that budget one client may take (its per-IP limit is capped to it).
    pub max_client_share: f64,
}

impl fmt::Debug for GenesysSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenesysSettings")
            .field("endpoints", &self.endpoints)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("retry", &self.retry)
            .field("max_connections_per_worker", &self.max_connections_per_worker)
            .field("allowance", &self.allowance)
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
            allowance: self.allowance.clone(),
        }
    }
}

/// Where `POST /api/webchat/guest-token` gets its guest from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestUpstream {
    /// The seed tutorial's guest route (`POST /api/v2/webchat/instances/guests`).
    Tutorial,
    /// Genesys web messaging: a code of this service's, exchanged for a messaging JWT.
    WebMessaging,
}

/// What goes into each guest.
#[derive(Debug, Clone)]
pub struct GuestSettings {
    /// Where guests come from.
    pub upstream: GuestUpstream,
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
    /// Most clients tracked at once; a newcomer past it evicts the client seen least recently.
    pub max_tracked_ips: usize,
    /// How often idle entries are dropped.
    pub prune_interval: Duration,
    /// IPv6 clients are keyed by this many leading bits of their address (64: one subscriber).
    pub ipv6_prefix: u8,
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

/// Why the configuration cannot be used: one entry per problem, each naming its setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ConfigProblems(pub Vec<String>);

impl Settings {
    /// Loads and validates the configuration from `config_dir` and `env` (see the module docs).
    pub fn load(config_dir: &Path, env: &HashMap<String, String>) -> Result<Self, ConfigProblems> {
        let environment = sources::environment_name(env)?;
        let raw = sources::read_layers(config_dir, &environment, env)?;
        validate::validate(environment, raw, config_dir)
    }

    /// Whether these are the production settings (stricter checks apply to them).
    pub fn is_production(&self) -> bool {
        self.environment == PRODUCTION
    }
}

#[cfg(test)]
mod tests;
