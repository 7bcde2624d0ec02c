//! Shared set-up of the integration tests: a real emulator on a random port, a client config
//! pointing at it, and an observer that records what the client reports.

#![allow(dead_code)] // Each test binary uses its own subset.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::genesys::{CreateGuestRequest, GUESTS_PATH, GuestRouting, OAUTH_TOKEN_PATH};
use genesys_client::{
    AllowanceSettings, Endpoints, GenesysClient, GenesysConfig, GenesysShared, Operation, RetrySettings,
    UpstreamObserver,
};
use mock_genesys::{JournalEntry, MockServer, MockSettings};
use tokio::sync::{Notify, watch};

/// The emulator's "Support" queue.
pub const SUPPORT_QUEUE: &str = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";
/// A well-formed queue id the emulator does not know.
pub const UNKNOWN_QUEUE: &str = "99999999-9999-4999-8999-999999999999";

/// An emulator with the default settings but no rate limit (tests count requests themselves).
pub fn emulator() -> MockServer {
    emulator_with(MockSettings {
        rate_limit: None,
        ..MockSettings::default()
    })
}

/// An emulator with `settings`.
pub fn emulator_with(settings: MockSettings) -> MockServer {
    MockServer::start(settings).expect("the emulator starts on a free port")
}

/// Client settings for `mock` with the default client and the spec's retry defaults.
pub fn config(mock: &MockServer) -> GenesysConfig {
    config_with_retries(mock, RetrySettings::default())
}

/// Client settings for `mock` with the default client and `retry`.
pub fn config_with_retries(mock: &MockServer, retry: RetrySettings) -> GenesysConfig {
    config_for(mock, "local-client", "local-secret", retry)
}

/// Client settings for `mock` with the given credentials and retry settings.
pub fn config_for(mock: &MockServer, client_id: &str, secret: &str, retry: RetrySettings) -> GenesysConfig {
    GenesysConfig {
        endpoints: Endpoints::from_urls(&mock.base_url(), None).expect("the emulator URL is valid"),
        client_id: client_id.to_owned(),
        client_secret: secret.to_owned().into(),
        retry,
        max_connections_per_worker: 256,
        allowance: unlimited_allowance(),
    }
}

/// An allowance no test of another mechanism comes near (the budget has tests of its own).
pub fn unlimited_allowance() -> AllowanceSettings {
    AllowanceSettings {
        requests_per_minute: 6_000_000,
        share: 0.5,
        burst: 100_000,
    }
}

/// Retry settings with short backoff steps, so tests that exhaust retries stay quick.
pub fn quick_retries() -> RetrySettings {
    RetrySettings {
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(400),
        ..RetrySettings::default()
    }
}

/// A shared state plus the recorder observing it.
pub fn shared(config: GenesysConfig) -> (Arc<GenesysShared>, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    (GenesysShared::new(config, recorder.clone()), recorder)
}

/// A client on the current actix worker.
pub fn client(config: GenesysConfig) -> (GenesysClient, Arc<Recorder>) {
    let (shared, recorder) = shared(config);
    (GenesysClient::new(shared), recorder)
}

/// A guest request for `queue`.
pub fn guest_request(queue: &str) -> CreateGuestRequest {
    CreateGuestRequest {
        routing: GuestRouting {
            queue_id: queue.parse().expect("a UUID"),
            language: None,
            wrap_up_code: None,
        },
        attributes: Default::default(),
    }
}

/// Journal entries on `path` (all paths if `None`), in order of arrival.
pub fn journal(mock: &MockServer, path: Option<&str>) -> Vec<JournalEntry> {
    let mut entries = mock.requests(path);
    // The journal is written when an answer is complete; ids follow arrival.
    entries.sort_by_key(|e| e.id);
    entries
}

/// Journal entries of the guest route, in order of arrival.
pub fn guest_calls(mock: &MockServer) -> Vec<JournalEntry> {
    journal(mock, Some(GUESTS_PATH))
}

/// Journal entries of the token route, in order of arrival.
pub fn token_calls(mock: &MockServer) -> Vec<JournalEntry> {
    journal(mock, Some(OAUTH_TOKEN_PATH))
}

/// Deletes fault `id` through the emulator's admin API (`DELETE /__admin/faults/{id}`).
pub async fn remove_fault(mock: &MockServer, id: &str) {
    let url = format!("{}{}/faults/{id}", mock.base_url(), mock_genesys::ADMIN_PREFIX);
    let response = awc::Client::default()
        .delete(url)
        .send()
        .await
        .expect("the admin API answers");
    assert_eq!(response.status().as_u16(), 204, "fault {id} was removed");
}

/// Statuses of journal entries, oldest first.
pub fn statuses(entries: &[JournalEntry]) -> Vec<u16> {
    entries.iter().map(|e| e.status).collect()
}

/// One event the client reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An HTTP attempt and its outcome label.
    Attempt(Operation, String),
    /// A scheduled retry and its reason.
    Retry(Operation, String),
    /// A finished token request.
    TokenRefresh(String),
    /// An answer's `inin-correlation-id`.
    CorrelationId(Operation, String),
}

/// Records every observer call; `first_retry` fires on the first scheduled retry.
#[derive(Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
    /// Notified (one stored permit) on every scheduled retry.
    pub retried: Notify,
    /// How many token requests have finished.
    token_requests_done: watch::Sender<usize>,
}

impl Recorder {
    /// Everything recorded so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Retry reasons recorded for `operation`.
    pub fn retries(&self, operation: Operation) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Retry(op, reason) if op == operation => Some(reason),
                _ => None,
            })
            .collect()
    }

    /// Attempt outcomes recorded for `operation`.
    pub fn attempts(&self, operation: Operation) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Attempt(op, outcome) if op == operation => Some(outcome),
                _ => None,
            })
            .collect()
    }

    /// Correlation ids of the answers to `operation`, in order.
    pub fn correlation_ids(&self, operation: Operation) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::CorrelationId(op, id) if op == operation => Some(id),
                _ => None,
            })
            .collect()
    }

    /// Waits until `count` token requests have finished, at most `limit`; whether they did.
    pub async fn wait_for_token_refreshes(&self, count: usize, limit: Duration) -> bool {
        let mut done = self.token_requests_done.subscribe();
        tokio::time::timeout(limit, done.wait_for(|n| *n >= count))
            .await
            .is_ok()
    }

    /// Outcomes of the token requests recorded so far.
    pub fn token_refreshes(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::TokenRefresh(outcome) => Some(outcome),
                _ => None,
            })
            .collect()
    }
}

impl UpstreamObserver for Recorder {
    fn attempt(&self, operation: Operation, outcome: &str, _elapsed: Duration) {
        self.events
            .lock()
            .unwrap()
            .push(Event::Attempt(operation, outcome.to_owned()));
    }

    fn correlation_id(&self, operation: Operation, correlation_id: &str) {
        self.events
            .lock()
            .unwrap()
            .push(Event::CorrelationId(operation, correlation_id.to_owned()));
    }

    fn retry(&self, operation: Operation, reason: &str) {
        self.events
            .lock()
            .unwrap()
            .push(Event::Retry(operation, reason.to_owned()));
        self.retried.notify_one();
    }

    fn token_refresh(&self, outcome: &str) {
        self.events
            .lock()
            .unwrap()
            .push(Event::TokenRefresh(outcome.to_owned()));
        self.token_requests_done.send_modify(|n| *n += 1);
    }
}
