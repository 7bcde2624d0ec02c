//! State shared by every worker (`Send + Sync`): policy from the settings, the lifecycle flags,
//! metrics and the per-IP limiter.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use domain::{LanguageTag, QueueId};

use crate::bridge::IdentityBridge;
use crate::metrics::Metrics;
use crate::rate_limit::ClientIpLimiter;
use crate::settings::{GuestUpstream, Settings};

/// Where the service is in its life: logged in to Genesys yet, draining after a signal, stopped.
#[derive(Debug, Default)]
pub struct Lifecycle {
    logged_in: AtomicBool,
    draining: AtomicBool,
    stopped: AtomicBool,
}

impl Lifecycle {
    /// A service that has not logged in yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that a Genesys access token was obtained. From then on the client keeps it fresh,
    /// so the flag stays set.
    pub fn mark_logged_in(&self) {
        self.logged_in.store(true, Ordering::Release);
    }

    /// Whether a Genesys access token was obtained since start-up.
    pub fn is_logged_in(&self) -> bool {
        self.logged_in.load(Ordering::Acquire)
    }

    /// Starts the drain: readiness turns 503 so a load balancer stops routing, while every route
    /// keeps serving (and asks clients to close their connections).
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether the drain (or the shutdown after it) has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Records that the server has stopped, so background work can end.
    pub fn mark_stopped(&self) {
        self.draining.store(true, Ordering::Release);
        self.stopped.store(true, Ordering::Release);
    }

    /// Whether the server has stopped.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }
}

/// The request policy derived from the settings.
#[derive(Debug, Clone)]
pub struct GuestPolicy {
    /// Where guests come from.
    pub upstream: GuestUpstream,
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
    /// How long the body may take to arrive.
    pub body_timeout: Duration,
    /// Most request headers accepted.
    pub max_header_count: usize,
    /// Most bytes of request header names and values accepted.
    pub max_header_bytes: usize,
}

impl GuestPolicy {
    /// The policy `settings` describe.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            upstream: settings.guest.upstream,
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
            body_timeout: settings.server.body_timeout,
            max_header_count: settings.server.max_header_count,
            max_header_bytes: settings.server.max_header_bytes,
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
    /// Genesys web messaging and the identity bridge, when configured.
    pub bridge: Option<Arc<IdentityBridge>>,
}
