//! Validation: the raw layers into typed [`Settings`], one problem per line, each naming the
//! setting (and the variable that sets it, where there is one) and never a secret's value.
//!
//! Production (`APP_ENV=production`) is stricter: it must name the browser origins it serves, and
//! it speaks plain HTTP only to loopback or private addresses written as such.

use std::path::Path;
use std::time::Duration;

use domain::{LanguageTag, QueueId};
use genesys_client::{AllowanceSettings, Endpoints, RetrySettings};
use secrecy::{ExposeSecret, SecretString};

use super::identity;
use super::network::url_host;
use super::sources::{
    RawCors, RawGenesys, RawGuest, RawLog, RawRateLimit, RawServer, RawSettings, empty_secret,
};
use super::{
    AllowedOrigin, ConfigProblems, CorsSettings, GenesysSettings, GuestSettings, GuestUpstream, IpNetwork,
    LogFormat, LogSettings, MAX_RATE_PER_SECOND, MIN_RATE_PER_SECOND, PRODUCTION, RateLimitSettings,
    ServerSettings, Settings, plain_http_allowed,
};

/// The problems found so far.
type Problems = Vec<String>;

fn ms(value: u64) -> Duration {
    Duration::from_millis(value)
}

/// Checks every section of `raw` and builds the settings, or reports every problem at once.
pub(super) fn validate(
    environment: String,
    raw: RawSettings,
    config_dir: &Path,
) -> Result<Settings, ConfigProblems> {
    let production = environment == PRODUCTION;
    let mut problems = Problems::new();
    let RawSettings {
        server,
        genesys,
        guest,
        cors,
        rate_limit,
        log,
        web_messaging,
        oidc,
        site_session,
    } = raw;
    let websocket_from_region = Some(genesys.region.trim())
        .filter(|region| !region.is_empty())
        .map(|region| {
            format!(
                "wss://webmessaging.{}/v1",
                region.trim_end_matches('.').to_ascii_lowercase()
            )
        });
    let mut notes = Vec::new();
    let server = server_settings(server, &mut problems);
    let genesys = genesys_settings(genesys, production, &mut problems);
    let guest = guest_settings(guest, &mut problems);
    let cors = cors_settings(cors, production, &mut problems);
    let mut rate_limit = rate_limit_settings(rate_limit, production, &mut problems);
    let log = log_settings(log, &mut problems);
    let web_messaging = identity::web_messaging(
        web_messaging,
        oidc,
        site_session,
        websocket_from_region,
        config_dir,
        production,
        &mut problems,
    );
    if guest.upstream == GuestUpstream::WebMessaging && web_messaging.is_none() && problems.is_empty() {
        problems.push(
            "guest.upstream: \"web-messaging\" needs web_messaging.deployment_id (and the [oidc] and \
             [site_session] settings)"
                .to_owned(),
        );
    }
    if let Some(genesys) = &genesys {
        cap_to_client_share(&mut rate_limit, genesys, &mut notes);
    }
    match (genesys, problems.is_empty()) {
        (Some(genesys), true) => Ok(Settings {
            environment,
            server,
            genesys,
            guest,
            cors,
            rate_limit,
            log,
            web_messaging,
            notes,
        }),
        _ => Err(ConfigProblems(problems)),
    }
}

/// No client may take more than `genesys.max_client_share` of the upstream budget: its per-IP
/// rate and burst are capped to that share.
fn cap_to_client_share(
    rate_limit: &mut RateLimitSettings,
    genesys: &GenesysSettings,
    notes: &mut Vec<String>,
) {
    if !rate_limit.enabled {
        return;
    }
    let share_per_minute = genesys.allowance.budget_per_minute() * genesys.max_client_share;
    let rate_cap = (share_per_minute / 60.0).max(MIN_RATE_PER_SECOND);
    let burst_cap = (share_per_minute.floor() as u32).max(1);
    if rate_limit.per_second > rate_cap || rate_limit.burst > burst_cap {
        notes.push(format!(
            "rate_limit: {}/s with a burst of {} would let one client take more than \
             genesys.max_client_share ({}) of the Genesys budget ({:.1} calls a minute); capped to \
             {rate_cap:.4}/s with a burst of {}",
            rate_limit.per_second,
            rate_limit.burst,
            genesys.max_client_share,
            genesys.allowance.budget_per_minute(),
            rate_limit.burst.min(burst_cap),
        ));
        rate_limit.per_second = rate_limit.per_second.min(rate_cap);
        rate_limit.burst = rate_limit.burst.min(burst_cap);
    }
}

fn server_settings(server: RawServer, problems: &mut Problems) -> ServerSettings {
    if server.host.trim().is_empty() {
        problems.push("server.host: must not be empty".to_owned());
    }
    if server.body_limit_bytes < 64 {
        problems.push("server.body_limit_bytes: must be at least 64".to_owned());
    }
    for (name, value) in [
        ("server.request_head_timeout_ms", server.request_head_timeout_ms),
        ("server.body_timeout_ms", server.body_timeout_ms),
        (
            "server.client_disconnect_timeout_ms",
            server.client_disconnect_timeout_ms,
        ),
    ] {
        if value == 0 {
            problems.push(format!(
                "{name}: must be greater than 0 (0 would mean no deadline)"
            ));
        }
    }
    if server.max_connections_per_worker == 0 {
        problems.push("server.max_connections_per_worker: must be at least 1".to_owned());
    }
    if !(16..=1024).contains(&server.max_header_count) {
        problems.push("server.max_header_count: must be from 16 to 1024".to_owned());
    }
    if !(1024..=65_536).contains(&server.max_header_bytes) {
        problems.push("server.max_header_bytes: must be from 1024 to 65536".to_owned());
    }
    ServerSettings {
        host: server.host.trim().to_owned(),
        port: server.port,
        workers: server.workers,
        body_limit_bytes: server.body_limit_bytes,
        drain_delay: ms(server.drain_delay_ms),
        shutdown_timeout: Duration::from_secs(server.shutdown_timeout_seconds),
        request_head_timeout: ms(server.request_head_timeout_ms),
        body_timeout: ms(server.body_timeout_ms),
        client_disconnect_timeout: ms(server.client_disconnect_timeout_ms),
        keep_alive: Duration::from_secs(server.keep_alive_seconds),
        max_connections_per_worker: server.max_connections_per_worker,
        max_header_count: server.max_header_count,
        max_header_bytes: server.max_header_bytes,
    }
}

/// The Genesys hosts, or `None` after reporting why they cannot be used.
fn endpoints(genesys: &RawGenesys, production: bool, problems: &mut Problems) -> Option<Endpoints> {
    let endpoints = match (genesys.base_url.trim(), genesys.region.trim()) {
        ("", "") => {
            problems.push(
                "genesys.base_url (GENESYS_BASE_URL) or genesys.region (GENESYS_REGION): one must be set"
                    .to_owned(),
            );
            return None;
        }
        (url, "") => {
            let login = Some(genesys.login_url.trim()).filter(|l| !l.is_empty());
            Endpoints::from_urls(url, login)
                .map_err(|e| problems.push(format!("genesys.base_url/login_url: {e}")))
                .ok()?
        }
        ("", region) => Endpoints::from_region(region)
            .map_err(|e| problems.push(format!("genesys.region (GENESYS_REGION): {e}")))
            .ok()?,
        // The layering keeps one of them; both only come from a hand-made raw value.
        (_, _) => {
            problems.push(
                "genesys.base_url and genesys.region: set one of them, not both (GENESYS_BASE_URL / GENESYS_REGION)"
                    .to_owned(),
            );
            return None;
        }
    };
    if production {
        for (setting, url) in [
            ("genesys.base_url (GENESYS_BASE_URL)", &endpoints.api_base),
            ("genesys.login_url (GENESYS_LOGIN_URL)", &endpoints.login_base),
        ] {
            let plain_http = url.starts_with("http://");
            if plain_http && !url_host(url).is_some_and(plain_http_allowed) {
                problems.push(format!(
                    "{setting}: {url} is plain http:// in production, which would send the client \
                     secret in clear text; use https:// (plain HTTP is accepted only for loopback and \
                     private IP addresses)"
                ));
            }
        }
    }
    Some(endpoints)
}

fn client_secret(genesys: &RawGenesys, problems: &mut Problems) -> SecretString {
    let secret_file = genesys.client_secret_file.trim();
    if secret_file.is_empty() {
        if genesys.client_secret.expose_secret().is_empty() {
            problems.push(
                "genesys.client_secret (GENESYS_CLIENT_SECRET or GENESYS_CLIENT_SECRET_FILE): must be set"
                    .to_owned(),
            );
        }
        return genesys.client_secret.clone();
    }
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
}

fn genesys_settings(
    genesys: RawGenesys,
    production: bool,
    problems: &mut Problems,
) -> Option<GenesysSettings> {
    let endpoints = endpoints(&genesys, production, problems);
    if genesys.client_id.trim().is_empty() {
        problems.push("genesys.client_id (GENESYS_CLIENT_ID): must be set".to_owned());
    }
    let client_secret = client_secret(&genesys, problems);
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
    let allowance = AllowanceSettings {
        requests_per_minute: genesys.requests_per_minute,
        share: genesys.budget_share,
        burst: genesys.budget_burst,
    };
    if let Err(why) = allowance.check() {
        problems.push(format!(
            "genesys.requests_per_minute, budget_share, budget_burst: {why}"
        ));
    }
    if !(genesys.max_client_share > 0.0 && genesys.max_client_share <= 1.0) {
        problems.push("genesys.max_client_share: must be above 0 and at most 1".to_owned());
    }
    Some(GenesysSettings {
        endpoints: endpoints?,
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
        allowance,
        max_client_share: genesys.max_client_share,
    })
}

fn guest_settings(guest: RawGuest, problems: &mut Problems) -> GuestSettings {
    let source_system = guest.source_system.trim().to_owned();
    if source_system.is_empty() || source_system.chars().count() > domain::ATTRIBUTE_VALUE_MAX_CHARS {
        problems.push("guest.source_system: must be 1 to 1024 characters".to_owned());
    }
    let default_language = LanguageTag::parse_field(guest.default_language.trim(), "guest.default_language")
        .map_err(|v| problems.push(v.to_string()))
        .unwrap_or_default();
    let upstream = match guest.upstream.trim() {
        "tutorial" => GuestUpstream::Tutorial,
        "web-messaging" => GuestUpstream::WebMessaging,
        other => {
            problems.push(format!(
                "guest.upstream: {other:?} must be \"tutorial\" or \"web-messaging\""
            ));
            GuestUpstream::Tutorial
        }
    };
    let mut allowed_queues = Vec::new();
    for raw in &guest.allowed_queues {
        match QueueId::parse_field(raw, "guest.allowed_queues") {
            Ok(q) => allowed_queues.push(q),
            Err(v) => problems.push(format!("{v} (got {raw:?})")),
        }
    }
    GuestSettings {
        upstream,
        source_system,
        default_language,
        allowed_queues: (!allowed_queues.is_empty()).then_some(allowed_queues),
    }
}

fn cors_settings(cors: RawCors, production: bool, problems: &mut Problems) -> CorsSettings {
    let mut allowed_origins = Vec::new();
    for raw in &cors.allowed_origins {
        match raw.parse::<AllowedOrigin>() {
            Ok(o)
                if production
                    && o.as_str().starts_with("http://")
                    && !url_host(o.as_str()).is_some_and(plain_http_allowed) =>
            {
                problems.push(format!(
                    "cors.allowed_origins (FRONTEND_ORIGIN): {} is plain http:// in production; list \
                     the page's https:// origin (anyone on a visitor's network could act as this one)",
                    o.as_str()
                ));
            }
            Ok(o) => allowed_origins.push(o),
            Err(why) => problems.push(format!("cors.allowed_origins (FRONTEND_ORIGIN): {why}")),
        }
    }
    if production && cors.allowed_origins.is_empty() {
        problems.push(
            "cors.allowed_origins (FRONTEND_ORIGIN): must list the origins of the pages that embed the \
             widget, e.g. https://www.example.com; with none, every browser request is refused"
                .to_owned(),
        );
    }
    CorsSettings {
        allowed_origins,
        require_origin: cors.require_origin,
        max_age: Duration::from_secs(cors.max_age_seconds),
    }
}

fn rate_limit_settings(
    rate_limit: RawRateLimit,
    production: bool,
    problems: &mut Problems,
) -> RateLimitSettings {
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
    } else if production {
        problems.push(
            "rate_limit.enabled: must be true in production (without a per-client limit one client \
             can spend the whole Genesys allowance)"
                .to_owned(),
        );
    }
    if !(32..=128).contains(&rate_limit.ipv6_prefix) {
        problems.push("rate_limit.ipv6_prefix: must be from 32 to 128 (64 keys one subscriber)".to_owned());
    }
    RateLimitSettings {
        enabled: rate_limit.enabled,
        per_second: rate_limit.per_second,
        burst: rate_limit.burst,
        trusted_proxies,
        max_tracked_ips: rate_limit.max_tracked_ips,
        prune_interval: Duration::from_secs(rate_limit.prune_interval_seconds),
        ipv6_prefix: rate_limit.ipv6_prefix,
    }
}

fn log_settings(log: RawLog, problems: &mut Problems) -> LogSettings {
    let format = match log.format.trim() {
        "json" => LogFormat::Json,
        "text" => LogFormat::Text,
        _ => {
            problems.push("log.format: must be \"json\" or \"text\"".to_owned());
            LogFormat::Json
        }
    };
    if tracing_subscriber::EnvFilter::try_new(&log.level).is_err() {
        problems.push(format!(
            "log.level (RUST_LOG): {:?} is not a valid log filter",
            log.level
        ));
    }
    LogSettings {
        format,
        level: log.level,
    }
}
