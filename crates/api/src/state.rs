//! State shared by every worker (`Send + Sync`): policy from the settings, the lifecycle flags,
//! metrics and the per-IP limiter.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use domain::{LanguageTag, QueueId};

use crate::metrics::Metrics;
use crate::rate_limit::ClientIpLimiter;
use crate::settings::Settings;

/// Whether the service can issue guest tokens: logged in to Genesys, not shutting down.
#[derive(Debug, Default)]
pub struct Lifecycle {
    logged_in: AtomicBool,
    shutting_down: AtomicBool,
}

impl Lifecycle {
    /// A service that has not logged in yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that a Genesys access token was obtained. From then on the client refreshes it on
    /// demand, so the flag stays set.
    pub fn mark_logged_in(&self) {
        self.logged_in.store(true, Ordering::Release);
    }

    /// Whether a Genesys access token was obtained since start-up.
    pub fn is_logged_in(&self) -> bool {
        self.logged_in.load(Ordering::Acquire)
    }

    /// Starts refusing new work (readiness 503, guest tokens 503).
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }
}

/// The request policy derived from the settings.
#[derive(Debug, Clone)]
pub struct GuestPolicy {
    /// Allowed `Origin` values, exactly as browsers send them.
    pub allowed_origins: HashSet<String>,
    /// Refuse requests without `Origin`.
    pub require_origin: bool,
    /// Only these queues, when set.
    pub allowed_queues: Option<HashSet<QueueId>>,
    /// `attributes.sourceSystem`.
    pub source_system: String,
    /// Language when the caller gives none.
    pub default_language: LanguageTag,
    /// Largest accepted body.
    pub body_limit_bytes: usize,
}

impl GuestPolicy {
    /// The policy `settings` describe.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            allowed_origins: settings
                .cors
                .allowed_origins
                .iter()
                .map(|o| o.as_str().to_owned())
                .collect(),
            require_origin: settings.cors.require_origin,
            allowed_queues: settings
                .guest
                .allowed_queues
                .as_ref()
                .map(|q| q.iter().copied().collect()),
            source_system: settings.guest.source_system.clone(),
            default_language: settings.guest.default_language.clone(),
            body_limit_bytes: settings.server.body_limit_bytes,
        }
    }
}

/// Everything handlers share across workers.
#[derive(Clone)]
pub struct AppState {
    /// Request policy.
    pub policy: Arc<GuestPolicy>,
    /// Login and shutdown flags.
    pub lifecycle: Arc<Lifecycle>,
    /// Prometheus families.
    pub metrics: Arc<Metrics>,
    /// Per-client-IP limiter, when enabled.
    pub limiter: Option<Arc<ClientIpLimiter>>,
    /// The OpenAPI document as JSON, built once at start-up.
    pub openapi_json: Arc<str>,
}
