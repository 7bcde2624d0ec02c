//! The typed errors of the Genesys client. None of them ever holds a secret or a token.

use std::time::Duration;

use domain::QueueId;

/// Why a Genesys operation failed, after whatever retries the policy allowed.
///
/// `correlation_id` is Genesys' `inin-correlation-id` of the last answer, where there was one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesysError {
    /// Genesys rejected the request body (400); `details` name the fields.
    #[error("Genesys rejected the request: {}", details.join("; "))]
    InvalidRequest {
        /// One line per offending field, as Genesys reported them.
        details: Vec<String>,
        /// Upstream correlation id.
        correlation_id: Option<String>,
    },
    /// Genesys does not know the queue (404).
    #[error("Genesys has no queue {queue_id}")]
    UnknownQueue {
        /// The queue that was asked for.
        queue_id: QueueId,
        /// Upstream correlation id.
        correlation_id: Option<String>,
    },
    /// Genesys rejects our OAuth client (bad id or secret) or its scope, even with a fresh token.
    #[error("Genesys rejected the OAuth client (HTTP {status}): {reason}")]
    UpstreamAuth {
        /// The status of the rejecting answer (400/401 from the token endpoint, 401/403 from the API).
        status: u16,
        /// Genesys' own code or explanation (never a credential).
        reason: String,
        /// Upstream correlation id.
        correlation_id: Option<String>,
    },
    /// Genesys' rate limit cannot be waited out within the budget.
    #[error("Genesys rate limit: retry after {}s", retry_after.as_secs())]
    RateLimited {
        /// How long until Genesys accepts calls again.
        retry_after: Duration,
        /// Upstream correlation id.
        correlation_id: Option<String>,
    },
    /// Genesys refused a web-messaging call with its own error code (an unknown or inactive
    /// deployment, a code its identity provider refused, ...).
    #[error("Genesys refused the call (HTTP {status}, {code})")]
    Rejected {
        /// The status of the answer.
        status: u16,
        /// Genesys' error code, e.g. `deployment.not.active` (never a credential).
        code: String,
        /// Upstream correlation id.
        correlation_id: Option<String>,
    },
    /// Genesys answered with an unexpected status (5xx after retries, or another 4xx).
    #[error("Genesys answered HTTP {status}")]
    Upstream {
        /// The last status seen.
        status: u16,
        /// Upstream correlation id.
        correlation_id: Option<String>,
    },
    /// The operation's budget or an attempt's timeout ran out.
    #[error("Genesys did not answer in time")]
    Timeout {
        /// Correlation id of the last answer before time ran out (an earlier attempt's), if any.
        correlation_id: Option<String>,
    },
    /// The connection failed (refused, reset, TLS, DNS) after retries.
    #[error("could not reach Genesys: {message}")]
    Transport {
        /// What failed, without URLs' credentials or headers.
        message: String,
        /// Correlation id of the last answer before the connection failed (an earlier attempt's,
        /// e.g. a 503 whose retry was reset), if any.
        correlation_id: Option<String>,
    },
    /// Genesys answered 2xx with a body that is not what the contract says.
    #[error("Genesys sent an unreadable answer: {message}")]
    Decode {
        /// What could not be read.
        message: String,
        /// Upstream correlation id.
        correlation_id: Option<String>,
    },
}

impl GenesysError {
    /// The upstream correlation id, where there was one.
    pub fn correlation_id(&self) -> Option<&str> {
        match self {
            Self::InvalidRequest { correlation_id, .. }
            | Self::UnknownQueue { correlation_id, .. }
            | Self::UpstreamAuth { correlation_id, .. }
            | Self::RateLimited { correlation_id, .. }
            | Self::Rejected { correlation_id, .. }
            | Self::Upstream { correlation_id, .. }
            | Self::Timeout { correlation_id }
            | Self::Transport { correlation_id, .. }
            | Self::Decode { correlation_id, .. } => correlation_id.as_deref(),
        }
    }

    /// A short, stable label for metrics and logs (`rate_limited`, `timeout`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. } => "invalid_request",
            Self::UnknownQueue { .. } => "unknown_queue",
            Self::UpstreamAuth { .. } => "upstream_auth",
            Self::RateLimited { .. } => "rate_limited",
            Self::Rejected { .. } => "rejected",
            Self::Upstream { .. } => "upstream",
            Self::Timeout { .. } => "timeout",
            Self::Transport { .. } => "transport",
            Self::Decode { .. } => "decode",
        }
    }
}
