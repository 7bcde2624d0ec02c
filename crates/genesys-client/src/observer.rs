//! Hooks through which the API counts what the client does (attempts, retries, token refreshes).

use std::time::Duration;

/// The upstream operations, as metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `POST /oauth/token`.
    FetchToken,
    /// `POST /api/v2/webchat/instances/guests`.
    CreateGuest,
    /// `GET /api/v2/routing/queues/{id}`.
    GetQueue,
    /// `GET /api/v2/webdeployments/deployments/{id}`.
    GetDeployment,
    /// `POST /api/v2/webdeployments/token/oauthcodegrantjwtexchange` (no OAuth client).
    ExchangeCode,
    /// A JSON document from another host (the site's signing keys), through the same machinery.
    FetchDocument,
}

impl Operation {
    /// The operations on the API host that spend the OAuth client's allowance.
    pub const API: [Operation; 3] = [
        Operation::CreateGuest,
        Operation::GetQueue,
        Operation::GetDeployment,
    ];

    /// Every operation.
    pub const ALL: [Operation; 6] = [
        Operation::FetchToken,
        Operation::CreateGuest,
        Operation::GetQueue,
        Operation::GetDeployment,
        Operation::ExchangeCode,
        Operation::FetchDocument,
    ];

    /// Metric label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::FetchToken => "fetch_token",
            Self::CreateGuest => "create_guest",
            Self::GetQueue => "get_queue",
            Self::GetDeployment => "get_deployment",
            Self::ExchangeCode => "exchange_code",
            Self::FetchDocument => "fetch_document",
        }
    }
}

/// Receives one call per upstream event. Implementations must be cheap and must not block.
pub trait UpstreamObserver: Send + Sync {
    /// One HTTP attempt finished. `outcome` is the status code as text (`"200"`, `"429"`) or a
    /// failure label (`"timeout"`, `"transport"`, `"decode"`).
    fn attempt(&self, operation: Operation, outcome: &str, elapsed: Duration) {
        let _ = (operation, outcome, elapsed);
    }

    /// Genesys answered an attempt with this `inin-correlation-id` (called before `attempt`), so
    /// the caller can tie its own logs to Genesys' on success as well as on failure.
    fn correlation_id(&self, operation: Operation, correlation_id: &str) {
        let _ = (operation, correlation_id);
    }

    /// A retry was scheduled after `reason` (`"429"`, `"503"`, `"transport"`, `"401"`, ...).
    fn retry(&self, operation: Operation, reason: &str) {
        let _ = (operation, reason);
    }

    /// A token request finished; `outcome` is `"ok"` or an error kind.
    fn token_refresh(&self, outcome: &str) {
        let _ = outcome;
    }

    /// A call was refused before it was sent because the allowance had no room; `reason` is
    /// `budget` (this process' share is spent for now) or `window` (Genesys' window is).
    fn allowance_refused(&self, operation: Operation, reason: &str) {
        let _ = (operation, reason);
    }
}

/// Counts nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopObserver;

impl UpstreamObserver for NoopObserver {}
