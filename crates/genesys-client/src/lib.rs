//! The Genesys Cloud client of the guest-token service.
//!
//! [`GenesysClient`] talks to Genesys over awc. Everything that must be shared by all actix
//! workers (the access-token cache, the 429 backoff gate, metrics) lives in [`GenesysShared`],
//! which is `Send + Sync`; each worker builds its own [`GenesysClient`] around an
//! `Arc<GenesysShared>` because awc's client is not `Send`. The API depends only on the
//! [`GenesysApi`] trait, so its handlers are unit-tested with the `mockall` mock that the `mock`
//! feature exposes as `MockGenesysApi`. TLS to Genesys trusts the certificate authorities of a
//! [`TrustStore`]: `SSL_CERT_FILE`'s bundle, else the system store, else compiled-in roots.

mod allowance;
mod client;
mod config;
mod error;
mod gate;
mod observer;
mod retry;
mod token;
mod trust;

use std::time::Duration;

use async_trait::async_trait;
use domain::QueueId;
use domain::genesys::{CreateGuestRequest, CreateGuestResponse, Queue};
use domain::webmessaging::{AuthorizationResponse, OAuthExchangeRequest, WebDeployment};

pub use allowance::{AllowanceSettings, NoRoom, NoRoomReason, Permit, UpstreamAllowance};
pub use client::{GenesysClient, GenesysShared, RESPONSE_BODY_LIMIT};
pub use config::{ConfigError, Endpoints, GenesysConfig, RetrySettings};
pub use error::GenesysError;
pub use gate::{BackoffGate, LONGEST_REOPENING_SPREAD, Passage, reopening_spread};
pub use observer::{NoopObserver, Operation, UpstreamObserver};
pub use retry::{
    Backoff, Decision, GiveUp, LONGEST_RETRY_AFTER, Outcome, RetryPolicy, classify, parse_retry_after,
};
pub use token::{
    AccessToken, FreshToken, LONGEST_TOKEN_LIFETIME, REFRESH_COOLDOWN, Refresh, TokenCache, TokenState,
    refresh_margin,
};
pub use trust::{CERT_FILE_VAR, TrustSource, TrustStore, TrustStoreError};

/// What the caller learns about a freshly fetched access token (never the token itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenStatus {
    /// Lifetime Genesys granted, from the moment it was issued.
    pub expires_in: Duration,
}

/// The Genesys operations the API uses. Implemented by [`GenesysClient`]; mocked in tests.
///
/// Futures are not `Send` (awc's are not), which suits actix handlers.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait(?Send)]
pub trait GenesysApi {
    /// Creates a web-chat guest and returns its signed guest token.
    ///
    /// This is the one route that comes from the tutorial this project grew from rather than
    /// from Genesys' published Platform API; keeping it behind this trait lets another upstream
    /// operation take its place.
    async fn create_guest(&self, request: &CreateGuestRequest) -> Result<CreateGuestResponse, GenesysError>;

    /// Looks up a routing queue.
    async fn get_queue(&self, queue_id: &QueueId) -> Result<Queue, GenesysError>;

    /// Reads a web (Messenger) deployment: its status and allowed domains. Needs the permission
    /// `webDeployments:deployment:view`.
    async fn get_deployment(&self, deployment_id: &str) -> Result<WebDeployment, GenesysError>;

    /// Exchanges an authorization code of the site's identity provider for a Genesys messaging
    /// JWT (`oauthcodegrantjwtexchange`, no OAuth client). Genesys redeems the code at the
    /// provider before it answers.
    async fn exchange_code(
        &self,
        request: &OAuthExchangeRequest,
    ) -> Result<AuthorizationResponse, GenesysError>;

    /// A JSON document from another host (such as a JWKS), with the same timeouts, retries, TLS
    /// trust and size bound as the calls to Genesys.
    async fn fetch_document(&self, url: &str) -> Result<serde_json::Value, GenesysError>;

    /// Fetches a new access token now (client-credentials grant) and caches it.
    async fn fetch_token(&self) -> Result<TokenStatus, GenesysError>;

    /// What the client holds and how much room it has, read without any I/O.
    fn status(&self) -> UpstreamStatus;
}

/// The client's state at one instant: the access token (never its value), the allowance and the
/// 429 gate. Reading it sends nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpstreamStatus {
    /// The access-token cache.
    pub token: TokenState,
    /// Burst capacity left in this process' share of the allowance.
    pub budget_left: u32,
    /// What Genesys last reported left of its window, while that window lasts.
    pub window_remaining: Option<u32>,
    /// Requests to Genesys in flight.
    pub in_flight: u32,
    /// Whether every API route's 429 gate is open (no `Retry-After` in force).
    pub gate_open: bool,
}
