//! The [`UpstreamObserver`] through which the Genesys client reports to the service: its attempts,
//! retries and token requests go to the metrics, and each attempt and correlation id to the scope
//! of the request that caused it.

use std::sync::Arc;
use std::time::Duration;

use genesys_client::{Operation, UpstreamObserver};

use crate::metrics::Metrics;
use crate::request_scope;

/// Feeds the upstream metrics and the current request's scope from the Genesys client.
pub struct MetricsObserver(pub Arc<Metrics>);

impl UpstreamObserver for MetricsObserver {
    fn attempt(&self, operation: Operation, status: &str, elapsed: Duration) {
        request_scope::note_upstream_attempt();
        self.0.observe_upstream_attempt(operation, status, elapsed);
    }

    fn correlation_id(&self, _operation: Operation, correlation_id: &str) {
        request_scope::note_correlation_id(correlation_id);
    }

    fn retry(&self, operation: Operation, reason: &str) {
        self.0.upstream_retry(operation, reason);
    }

    fn token_refresh(&self, outcome: &str) {
        self.0.token_refresh(outcome);
    }

    fn allowance_refused(&self, operation: Operation, reason: &str) {
        self.0.allowance_refused(operation, reason);
    }
}
