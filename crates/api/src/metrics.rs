//! Prometheus metrics (prometheus-client): the families and what records into them.

use std::time::Duration;

use genesys_client::{Operation, UpstreamStatus};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Latency buckets in seconds, from 5 ms to 10 s (the upstream budget).
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0];

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    operation: String,
    /// The HTTP status Genesys answered, or `timeout`, `transport` or `decode`.
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RetryLabels {
    operation: String,
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

/// The service's metric families and their registry.
pub struct Metrics {
    registry: Registry,
    http_duration: Family<HttpLabels, Histogram, fn() -> Histogram>,
    http_in_flight: Gauge,
    upstream_duration: Family<UpstreamLabels, Histogram, fn() -> Histogram>,
    upstream_retries: Family<RetryLabels, Counter>,
    token_refreshes: Family<OutcomeLabels, Counter>,
    guest_tokens_issued: Counter,
    rate_limited: Counter,
    allowance_refusals: Family<RetryLabels, Counter>,
    codes_issued: Family<ViaLabels, Counter>,
    codes_redeemed: Family<GrantLabels, Counter>,
    exchanges: Family<OutcomeLabels, Counter>,
    site_session_rejections: Family<ReasonLabels, Counter>,
    live: LiveGauges,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ViaLabels {
    via: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabels {
    grant: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Gauges set from live state just before each scrape.
#[derive(Default)]
struct LiveGauges {
    budget_left: Gauge,
    window_remaining: Gauge,
    gate_open: Gauge,
    upstream_in_flight: Gauge,
    token_held: Gauge,
    tracked_clients: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every family in a fresh registry.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http_duration =
            Family::<HttpLabels, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        registry.register(
            "http_server_request_duration_seconds",
            "Duration of HTTP requests by method, route pattern and status",
            http_duration.clone(),
        );
        let http_in_flight = Gauge::default();
        registry.register(
            "http_server_active_requests",
            "HTTP requests being served right now",
            http_in_flight.clone(),
        );
        let upstream_duration =
            Family::<UpstreamLabels, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        registry.register(
            "genesys_request_duration_seconds",
            "Duration of each HTTP attempt to Genesys by operation and status (HTTP code, timeout, transport, decode)",
            upstream_duration.clone(),
        );
        let upstream_retries = Family::<RetryLabels, Counter>::default();
        registry.register(
            "genesys_retries",
            "Retries of Genesys calls by operation and the reason for the retry",
            upstream_retries.clone(),
        );
        let token_refreshes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "genesys_token_refreshes",
            "Access-token requests to Genesys by outcome",
            token_refreshes.clone(),
        );
        let guest_tokens_issued = Counter::default();
        registry.register(
            "guest_tokens_issued",
            "Guest tokens handed out to callers",
            guest_tokens_issued.clone(),
        );
        let rate_limited = Counter::default();
        registry.register(
            "rate_limited_requests",
            "Requests refused by the per-client-IP limiter",
            rate_limited.clone(),
        );
        let allowance_refusals = Family::<RetryLabels, Counter>::default();
        registry.register(
            "genesys_allowance_refusals",
            "Genesys calls refused before sending because the allowance had no room, by operation and \
             reason (budget: this process' share; window: Genesys' reported window)",
            allowance_refusals.clone(),
        );
        let codes_issued = Family::<ViaLabels, Counter>::default();
        registry.register(
            "oidc_codes_issued",
            "Authorization codes minted, by how they were asked for (authorize, auth_code, guest_token)",
            codes_issued.clone(),
        );
        let codes_redeemed = Family::<GrantLabels, Counter>::default();
        registry.register(
            "oidc_token_requests",
            "Token-endpoint requests by grant and outcome (ok or the RFC 6749 error)",
            codes_redeemed.clone(),
        );
        let exchanges = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "genesys_exchanges",
            "Code exchanges with Genesys for messaging JWTs, by outcome (ok or the error kind)",
            exchanges.clone(),
        );
        let site_session_rejections = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "site_session_rejections",
            "Site sessions refused, by reason (missing, expired, signature, issuer, audience, ...)",
            site_session_rejections.clone(),
        );
        let live = LiveGauges::default();
        for (name, help, gauge) in [
            (
                "genesys_budget_left",
                "Requests this process may still send to Genesys at once (its share's burst capacity)",
                &live.budget_left,
            ),
            (
                "genesys_window_remaining",
                "Requests Genesys last reported left in its rate-limit window (-1 when unknown)",
                &live.window_remaining,
            ),
            (
                "genesys_gate_open",
                "1 while no Retry-After from Genesys is in force on any API route, else 0",
                &live.gate_open,
            ),
            (
                "genesys_requests_in_flight",
                "Requests to Genesys' API routes in flight",
                &live.upstream_in_flight,
            ),
            (
                "genesys_token_held",
                "1 while an unexpired Genesys access token is held, else 0",
                &live.token_held,
            ),
            (
                "rate_limit_tracked_clients",
                "Clients (IPv4 addresses, IPv6 prefixes) with a bucket of their own",
                &live.tracked_clients,
            ),
        ] {
            registry.register(name, help, gauge.clone());
        }
        Self {
            registry,
            http_duration,
            http_in_flight,
            upstream_duration,
            upstream_retries,
            token_refreshes,
            guest_tokens_issued,
            rate_limited,
            allowance_refusals,
            codes_issued,
            codes_redeemed,
            exchanges,
            site_session_rejections,
            live,
        }
    }

    /// Counts one authorization code minted; `via` is `authorize`, `auth_code` or `guest_token`.
    pub fn code_issued(&self, via: &'static str) {
        self.codes_issued.get_or_create(&ViaLabels { via }).inc();
    }

    /// Counts one token-endpoint request: its grant and outcome (`ok` or the RFC 6749 error).
    pub fn token_request(&self, grant: &'static str, outcome: &'static str) {
        self.codes_redeemed
            .get_or_create(&GrantLabels { grant, outcome })
            .inc();
    }

    /// Counts one code exchange with Genesys: `ok` or the error kind.
    pub fn exchange(&self, outcome: &str) {
        self.exchanges
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts one site session refused (or missing where one is needed).
    pub fn site_session_rejected(&self, reason: &'static str) {
        self.site_session_rejections
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Sets the live gauges from the client's status and the limiter's table size.
    pub fn set_live(&self, upstream: &UpstreamStatus, tracked_clients: Option<usize>) {
        let flag = |on: bool| i64::from(on);
        self.live.budget_left.set(i64::from(upstream.budget_left));
        self.live
            .window_remaining
            .set(upstream.window_remaining.map_or(-1, i64::from));
        self.live.gate_open.set(flag(upstream.gate_open));
        self.live.upstream_in_flight.set(i64::from(upstream.in_flight));
        self.live.token_held.set(flag(upstream.token.held));
        self.live
            .tracked_clients
            .set(tracked_clients.map_or(0, |n| i64::try_from(n).unwrap_or(i64::MAX)));
    }

    /// Counts one Genesys call refused before sending for lack of room in the allowance.
    pub fn allowance_refused(&self, operation: Operation, reason: &str) {
        self.allowance_refusals
            .get_or_create(&RetryLabels {
                operation: operation.as_str().to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// The Prometheus text exposition of every family.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String");
        out
    }

    /// Records one served request. `route` must be a route pattern (bounded), never a raw path.
    pub fn observe_http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.http_duration
            .get_or_create(&HttpLabels {
                method: method_label(method).to_owned(),
                route: route.to_owned(),
                status: status.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a request as in flight until the guard drops.
    pub fn track_in_flight(&self) -> InFlight {
        self.http_in_flight.inc();
        InFlight(self.http_in_flight.clone())
    }

    /// Counts one guest token handed out.
    pub fn guest_token_issued(&self) {
        self.guest_tokens_issued.inc();
    }

    /// Counts one request refused by the per-IP limiter.
    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// Records one HTTP attempt to Genesys and what it came back with (a status or a failure label).
    pub fn observe_upstream_attempt(&self, operation: Operation, status: &str, elapsed: Duration) {
        self.upstream_duration
            .get_or_create(&UpstreamLabels {
                operation: operation.as_str().to_owned(),
                status: status.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one retry of a Genesys call and its reason.
    pub fn upstream_retry(&self, operation: Operation, reason: &str) {
        self.upstream_retries
            .get_or_create(&RetryLabels {
                operation: operation.as_str().to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts one access-token request and its outcome.
    pub fn token_refresh(&self, outcome: &str) {
        self.token_refreshes
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}

/// The standard methods by name, any other as `_OTHER`: callers may send any token as a
/// method, and every new label value would be a new series.
fn method_label(method: &str) -> &str {
    match method {
        "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "CONNECT" | "OPTIONS" | "TRACE" | "PATCH" => method,
        _ => "_OTHER",
    }
}

/// Decrements the in-flight gauge when dropped.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_every_family_the_spec_asks_for() {
        let metrics = Metrics::new();
        metrics.observe_http_request("POST", "/api/webchat/guest-token", 201, Duration::from_millis(12));
        metrics.observe_upstream_attempt(Operation::CreateGuest, "200", Duration::from_millis(8));
        metrics.observe_upstream_attempt(Operation::FetchToken, "timeout", Duration::from_millis(2000));
        metrics.upstream_retry(Operation::CreateGuest, "429");
        metrics.token_refresh("ok");
        metrics.guest_token_issued();
        metrics.rate_limited();
        let text = metrics.encode();
        for needle in [
            r#"http_server_request_duration_seconds_bucket{le="0.025",method="POST",route="/api/webchat/guest-token",status="201"} 1"#,
            r#"genesys_request_duration_seconds_count{operation="create_guest",status="200"} 1"#,
            r#"genesys_request_duration_seconds_count{operation="fetch_token",status="timeout"} 1"#,
            r#"genesys_retries_total{operation="create_guest",reason="429"} 1"#,
            r#"genesys_token_refreshes_total{outcome="ok"} 1"#,
            "guest_tokens_issued_total 1",
            "rate_limited_requests_total 1",
            "http_server_active_requests 0",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }

    #[test]
    fn invented_methods_share_one_label() {
        let metrics = Metrics::new();
        for method in ["BREW", "X-1", "X-2"] {
            metrics.observe_http_request(method, "unmatched", 405, Duration::from_millis(1));
        }
        let text = metrics.encode();
        assert!(
            text.contains(r#"http_server_request_duration_seconds_count{method="_OTHER",route="unmatched",status="405"} 3"#),
            "{text}"
        );
        assert!(!text.contains("BREW") && !text.contains("X-1"), "{text}");
    }

    #[test]
    fn the_in_flight_gauge_follows_its_guards() {
        let metrics = Metrics::new();
        let a = metrics.track_in_flight();
        let b = metrics.track_in_flight();
        assert!(metrics.encode().contains("http_server_active_requests 2"));
        drop(a);
        drop(b);
        assert!(metrics.encode().contains("http_server_active_requests 0"));
    }
}
