//! The awc client: one [`GenesysClient`] per actix worker around one shared [`GenesysShared`].
//!
//! Every operation runs the same loop: wait for the route's gate, get a token, send one attempt
//! bounded by the attempt timeout and the operation's budget, [`classify`] the outcome, and let
//! the [`RetryPolicy`] decide whether and how long to wait before the next attempt.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use awc::error::{ConnectError, PayloadError, SendRequestError};
use awc::http::{Method, header};
use domain::QueueId;
use domain::genesys::{
    CORRELATION_ID_HEADER, ClientCredentialsForm, CreateGuestRequest, CreateGuestResponse, GUESTS_PATH,
    GenesysErrorBody, OAUTH_TOKEN_PATH, OAuthErrorResponse, OAuthTokenResponse, QUEUES_PATH_PREFIX, Queue,
    RATELIMIT_ALLOWED_HEADER, RATELIMIT_COUNT_HEADER, RATELIMIT_RESET_HEADER, error_codes,
};
use domain::webmessaging::{
    AuthorizationResponse, DEPLOYMENTS_PATH_PREFIX, OAUTH_EXCHANGE_PATH, OAuthExchangeRequest, WebDeployment,
};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::allowance::{NoRoomReason, UpstreamAllowance};
use crate::config::GenesysConfig;
use crate::error::GenesysError;
use crate::gate::BackoffGate;
use crate::observer::{Operation, UpstreamObserver};
use crate::retry::{Decision, GiveUp, Outcome, RetryPolicy, classify, parse_retry_after};
use crate::token::{AccessToken, FreshToken, Refresh, TokenCache};
use crate::trust::TrustStore;
use crate::{GenesysApi, TokenStatus, UpstreamStatus};

/// Largest response body read from Genesys; its answers are a few hundred bytes.
pub const RESPONSE_BODY_LIMIT: usize = 256 * 1024;

const USER_AGENT: &str = concat!("guest-token-service/", env!("CARGO_PKG_VERSION"));

/// What all workers share: configuration, the TLS configuration, the token cache, the backoff
/// gate and the observer. `Send + Sync`; build one per process and hand an `Arc` of it to every
/// worker's client.
pub struct GenesysShared {
    config: GenesysConfig,
    observer: Arc<dyn UpstreamObserver>,
    trust: TrustStore,
    tls: Arc<rustls::ClientConfig>,
    tokens: TokenCache,
    gate: BackoffGate,
    allowance: UpstreamAllowance,
    token_url: String,
    guests_url: String,
    exchange_url: String,
}

impl fmt::Debug for GenesysShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `GenesysConfig`'s Debug redacts the secret (SecretString).
        f.debug_struct("GenesysShared")
            .field("config", &self.config)
            .field("trust", &self.trust)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl GenesysShared {
    /// The shared state for `config`, trusting the certificate authorities the environment names
    /// ([`TrustStore::from_env`]: `SSL_CERT_FILE`, else the system store, else the compiled-in
    /// roots). Installs rustls' `ring` crypto provider for the process unless one is installed.
    pub fn new(config: GenesysConfig, observer: Arc<dyn UpstreamObserver>) -> Arc<Self> {
        Self::with_trust_store(config, observer, TrustStore::from_env())
    }

    /// The shared state for `config`, trusting exactly the authorities of `trust`.
    pub fn with_trust_store(
        config: GenesysConfig,
        observer: Arc<dyn UpstreamObserver>,
        trust: TrustStore,
    ) -> Arc<Self> {
        // Built once: every worker's connector shares it (and rustls' session cache with it).
        let tls = trust.client_config();
        let token_url = format!("{}{OAUTH_TOKEN_PATH}", config.endpoints.login_base);
        let guests_url = format!("{}{GUESTS_PATH}", config.endpoints.api_base);
        let exchange_url = format!("{}{OAUTH_EXCHANGE_PATH}", config.endpoints.api_base);
        Arc::new(Self {
            allowance: UpstreamAllowance::new(config.allowance.clone()),
            config,
            observer,
            trust,
            tls,
            tokens: TokenCache::new(),
            gate: BackoffGate::new(),
            token_url,
            guests_url,
            exchange_url,
        })
    }

    /// Whether an unexpired access token is cached.
    pub fn has_token(&self) -> bool {
        self.tokens.has_token()
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &GenesysConfig {
        &self.config
    }

    /// The certificate authorities the client trusts, and where they came from.
    pub fn trust_store(&self) -> &TrustStore {
        &self.trust
    }

    /// The shared 429 gate.
    pub fn gate(&self) -> &BackoffGate {
        &self.gate
    }

    /// The shared token cache.
    pub fn tokens(&self) -> &TokenCache {
        &self.tokens
    }

    /// The process-wide share of Genesys' allowance.
    pub fn allowance(&self) -> &UpstreamAllowance {
        &self.allowance
    }

    /// The token, allowance and gate at this instant, read without I/O.
    pub fn status(&self) -> UpstreamStatus {
        let now = Instant::now();
        UpstreamStatus {
            token: self.tokens.state(now),
            budget_left: self.allowance.budget_left(),
            window_remaining: self.allowance.reported_remaining(now),
            in_flight: self.allowance.in_flight(),
            gate_open: Operation::API
                .iter()
                .all(|route| self.gate.closed_until(*route, now).is_none()),
        }
    }
}

/// One actix worker's Genesys client. Not `Send` (awc's client is not): build it inside
/// `HttpServer::new`'s closure, once per worker, never per request.
pub struct GenesysClient {
    shared: Arc<GenesysShared>,
    http: awc::Client,
}

impl fmt::Debug for GenesysClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenesysClient")
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

/// How a request authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// `Authorization: Bearer <cached access token>`.
    Bearer,
    /// `Authorization: Basic <client id:secret>` (token endpoint only).
    ClientCredentials,
    /// No credentials: routes that do not take the OAuth client, and other hosts.
    Anonymous,
}

/// One upstream request, resent as is on each attempt.
struct Call<'a> {
    operation: Operation,
    method: Method,
    url: &'a str,
    body: Option<(&'static str, Vec<u8>)>,
    auth: Auth,
}

/// A complete HTTP answer.
struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    correlation_id: Option<String>,
    body: Vec<u8>,
}

/// An attempt that produced no usable answer.
enum Failure {
    Timeout,
    Transport(String),
    /// The body exceeded [`RESPONSE_BODY_LIMIT`].
    Oversized {
        correlation_id: Option<String>,
    },
}

impl Failure {
    fn from_send(error: SendRequestError) -> Self {
        match error {
            SendRequestError::Timeout => Self::Timeout,
            SendRequestError::Connect(ConnectError::Timeout) => {
                Self::Transport("connection attempt timed out".to_owned())
            }
            other => Self::Transport(other.to_string()),
        }
    }
}

impl GenesysClient {
    /// A client for this worker: its own connection pool (`max_connections_per_worker`), the
    /// shared TLS configuration, connect timeout, attempt timeout, no redirects.
    pub fn new(shared: Arc<GenesysShared>) -> Self {
        let settings = &shared.config.retry;
        let connector = awc::Connector::new()
            .rustls_0_23(Arc::clone(&shared.tls))
            .timeout(settings.connect_timeout)
            .handshake_timeout(settings.connect_timeout)
            .limit(shared.config.max_connections_per_worker);
        let http = awc::Client::builder()
            .connector(connector)
            .timeout(settings.attempt_timeout)
            .disable_redirects()
            .add_default_header((header::USER_AGENT, USER_AGENT))
            .add_default_header((header::ACCEPT, "application/json"))
            .finish();
        Self { shared, http }
    }

    /// The state shared with the other workers.
    pub fn shared(&self) -> &Arc<GenesysShared> {
        &self.shared
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.shared.config.retry.budget
    }

    /// A usable token from the cache, fetched on this worker if this caller is the one to fetch.
    /// A token due for refresh is still used; its refresh runs on a detached task.
    async fn token(&self, force: bool, deadline: Instant) -> Result<AccessToken, GenesysError> {
        self.shared
            .tokens
            .get(
                force,
                deadline,
                || self.request_token(deadline),
                |refresh| self.refresh_in_background(refresh),
            )
            .await
    }

    /// Runs `refresh` as a detached task on this worker, under a budget of its own: the caller
    /// that started it goes on with the current token and never waits for the login host.
    fn refresh_in_background(&self, refresh: Refresh) {
        if actix_rt::Arbiter::try_current().is_none() {
            // Nowhere to run a `!Send` task: dropping frees the slot; the token is fetched once expired.
            tracing::debug!("no actix arbiter on this thread; skipping the background token refresh");
            return;
        }
        // awc's client is `Rc`-based: the clone shares this worker's pool and stays on this thread.
        let worker = GenesysClient {
            shared: Arc::clone(&self.shared),
            http: self.http.clone(),
        };
        let deadline = self.deadline();
        actix_rt::spawn(async move { refresh.run(deadline, worker.request_token(deadline)).await });
    }

    /// One client-credentials grant, with retries for transient failures within `deadline`.
    async fn request_token(&self, deadline: Instant) -> Result<FreshToken, GenesysError> {
        let requested_at = Instant::now();
        let form = ClientCredentialsForm {
            grant_type: Some(ClientCredentialsForm::GRANT_TYPE.to_owned()),
            ..ClientCredentialsForm::default()
        };
        let call = Call {
            operation: Operation::FetchToken,
            method: Method::POST,
            url: &self.shared.token_url,
            body: Some((
                "application/x-www-form-urlencoded",
                serde_urlencoded::to_string(&form)
                    .unwrap_or_default()
                    .into_bytes(),
            )),
            auth: Auth::ClientCredentials,
        };
        // Boxed: `execute` reaches this function again through `token` (for bearer calls).
        let result = match Box::pin(self.execute(&call, deadline)).await {
            Ok(answer) => token_from_answer(answer, requested_at),
            Err(error) => Err(error),
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) => error.kind(),
        };
        self.shared.observer.token_refresh(outcome);
        result
    }

    /// Runs `call` until it gets a final answer (2xx or a status that is not retried), or fails.
    async fn execute(&self, call: &Call<'_>, deadline: Instant) -> Result<Answer, GenesysError> {
        let shared = &*self.shared;
        let operation = call.operation;
        let mut policy = RetryPolicy::new(&shared.config.retry);
        let mut counted_attempts = 0u32;
        let mut sent = 0u32;
        let mut token_refreshed = false;
        let mut last_correlation_id = None;
        loop {
            if let Err(wait) = shared.gate.wait_open(operation, deadline).await {
                return Err(GenesysError::RateLimited {
                    retry_after: wait,
                    correlation_id: last_correlation_id,
                });
            }
            let token = match call.auth {
                Auth::Bearer => Some(self.token(false, deadline).await?),
                Auth::ClientCredentials | Auth::Anonymous => None,
            };
            // Every API call spends Genesys' allowance; the token endpoint has its own.
            let permit = match call.auth {
                Auth::Bearer => match shared.allowance.try_acquire(Instant::now()) {
                    Ok(permit) => Some(permit),
                    Err(no_room) => {
                        let reason = match no_room.reason {
                            NoRoomReason::Budget => "budget",
                            NoRoomReason::Window => "window",
                        };
                        shared.observer.allowance_refused(operation, reason);
                        return Err(GenesysError::RateLimited {
                            retry_after: no_room.retry_after,
                            correlation_id: last_correlation_id,
                        });
                    }
                },
                Auth::ClientCredentials | Auth::Anonymous => None,
            };
            counted_attempts += 1;
            sent += 1;
            let result = self.attempt(call, token.as_ref(), deadline, sent).await;
            drop(permit);
            let outcome = match &result {
                Ok(answer) => {
                    last_correlation_id.clone_from(&answer.correlation_id);
                    Outcome::Status {
                        status: answer.status,
                        retry_after: answer.retry_after,
                    }
                }
                Err(Failure::Timeout) => Outcome::Timeout,
                Err(Failure::Transport(_)) => Outcome::Transport,
                // Genesys answered; reading it again would not make it smaller.
                Err(Failure::Oversized { .. }) => return settle(result, last_correlation_id),
            };
            let decision = match (operation, &outcome) {
                // The exchange's 500 and 502 are the identity provider failing or refusing (this
                // very service, usually): asking again would only ask it again.
                (
                    Operation::ExchangeCode,
                    Outcome::Status {
                        status: 500 | 502, ..
                    },
                ) => Decision::Fail,
                _ => classify(&outcome),
            };
            match decision {
                Decision::Done | Decision::Fail => return settle(result, last_correlation_id),
                Decision::RefreshToken => match token {
                    Some(token) if !token_refreshed => {
                        token_refreshed = true;
                        // The retry with a fresh token is the one 401 allowance, not a transient retry.
                        counted_attempts -= 1;
                        shared.tokens.invalidate(token.generation());
                        shared.observer.retry(operation, "401");
                        tracing::info!(
                            operation = operation.as_str(),
                            "access token refused; retrying once with a new one"
                        );
                        continue;
                    }
                    _ => return settle(result, last_correlation_id),
                },
                Decision::RetryAfter(wait) => shared.gate.close_for(operation, Instant::now(), wait),
                Decision::Backoff => {}
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            match policy.next_wait(decision, counted_attempts, remaining) {
                Ok(wait) => {
                    let reason = outcome.label();
                    shared.observer.retry(operation, &reason);
                    tracing::info!(
                        operation = operation.as_str(),
                        reason = %reason,
                        wait_ms = wait.as_millis() as u64,
                        "retrying Genesys call"
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(GiveUp::AttemptsExhausted { wait } | GiveUp::OverBudget { wait }) => {
                    return Err(give_up(result, wait, last_correlation_id));
                }
                Err(GiveUp::Final) => return settle(result, last_correlation_id),
            }
        }
    }

    /// One HTTP attempt, bounded by the attempt timeout and what is left of the budget.
    async fn attempt(
        &self,
        call: &Call<'_>,
        token: Option<&AccessToken>,
        deadline: Instant,
        number: u32,
    ) -> Result<Answer, Failure> {
        let operation = call.operation;
        let started = Instant::now();
        let limit = self
            .shared
            .config
            .retry
            .attempt_timeout
            .min(deadline.saturating_duration_since(started));
        if limit.is_zero() {
            return Err(Failure::Timeout);
        }
        let span = tracing::debug_span!(
            "genesys_call",
            operation = operation.as_str(),
            attempt = number,
            status = tracing::field::Empty,
            correlation_id = tracing::field::Empty,
        );
        let exchange = async {
            let mut request = self.http.request(call.method.clone(), call.url).timeout(limit);
            request = match (call.auth, token) {
                (Auth::Bearer, Some(token)) => request.bearer_auth(token.secret()),
                (Auth::ClientCredentials, _) => {
                    let config = &self.shared.config;
                    request.basic_auth(&config.client_id, config.client_secret.expose_secret())
                }
                (Auth::Bearer, None) | (Auth::Anonymous, _) => request,
            };
            let sent = match &call.body {
                Some((content_type, body)) => {
                    request.content_type(*content_type).send_body(body.clone()).await
                }
                None => request.send().await,
            };
            let mut response = sent.map_err(Failure::from_send)?;
            let status = response.status().as_u16();
            let headers = response.headers();
            let correlation_id = headers
                .get(CORRELATION_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let retry_after = headers
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            // Only the OAuth client's API calls report its window: the token endpoint, the
            // unauthenticated web-messaging routes and other hosts (a site's JWKS) count
            // elsewhere, or not at all.
            if let (Auth::Bearer, Some((allowed, count, reset))) = (&call.auth, reported_window(headers)) {
                self.shared
                    .allowance
                    .observe(allowed, count, reset, Instant::now());
            }
            let body = match response.body().limit(RESPONSE_BODY_LIMIT).await {
                Ok(body) => body.to_vec(),
                Err(PayloadError::Overflow) => return Err(Failure::Oversized { correlation_id }),
                Err(error) => return Err(Failure::Transport(error.to_string())),
            };
            Ok(Answer {
                status,
                retry_after,
                correlation_id,
                body,
            })
        };
        let result = match tokio::time::timeout(limit, exchange.instrument(span.clone())).await {
            Ok(result) => result,
            Err(_elapsed) => Err(Failure::Timeout),
        };
        let label = match &result {
            Ok(answer) => {
                span.record("status", answer.status);
                if let Some(id) = &answer.correlation_id {
                    span.record("correlation_id", id.as_str());
                    self.shared.observer.correlation_id(operation, id);
                }
                answer.status.to_string()
            }
            Err(Failure::Timeout) => "timeout".to_owned(),
            Err(Failure::Transport(message)) => {
                span.in_scope(|| tracing::debug!(error = %message, "Genesys attempt failed"));
                "transport".to_owned()
            }
            Err(Failure::Oversized { .. }) => "decode".to_owned(),
        };
        let elapsed = started.elapsed();
        span.in_scope(
            || tracing::debug!(outcome = %label, elapsed_ms = elapsed.as_millis() as u64, "Genesys attempt"),
        );
        self.shared.observer.attempt(operation, &label, elapsed);
        result
    }
}

/// Genesys' `inin-ratelimit-allowed`, `-count` and `-reset` (seconds), when all three are there.
fn reported_window(headers: &awc::http::header::HeaderMap) -> Option<(u32, u32, Duration)> {
    let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
    let allowed = u32::try_from(number(RATELIMIT_ALLOWED_HEADER)?).ok()?;
    let count = u32::try_from(number(RATELIMIT_COUNT_HEADER)?).unwrap_or(u32::MAX);
    let reset = Duration::from_secs(number(RATELIMIT_RESET_HEADER)?);
    Some((allowed, count, reset))
}

/// The answer of a final attempt; a failed one (only an oversized body is final) maps like a last one.
fn settle(result: Result<Answer, Failure>, correlation_id: Option<String>) -> Result<Answer, GenesysError> {
    result.map_err(|failure| give_up(Err(failure), Duration::ZERO, correlation_id))
}

/// The error for the last attempt once no further attempt is allowed.
fn give_up(result: Result<Answer, Failure>, wait: Duration, correlation_id: Option<String>) -> GenesysError {
    match result {
        Ok(answer) if answer.status == 429 => GenesysError::RateLimited {
            // Without Retry-After, name the backoff step, but never "retry after 0 s".
            retry_after: answer.retry_after.unwrap_or(wait.max(Duration::from_secs(1))),
            correlation_id: answer.correlation_id,
        },
        Ok(answer) => GenesysError::Upstream {
            status: answer.status,
            correlation_id: answer.correlation_id,
        },
        Err(Failure::Timeout) => GenesysError::Timeout { correlation_id },
        Err(Failure::Transport(message)) => GenesysError::Transport {
            message,
            correlation_id,
        },
        Err(Failure::Oversized { correlation_id }) => GenesysError::Decode {
            message: format!("response body larger than {RESPONSE_BODY_LIMIT} bytes"),
            correlation_id,
        },
    }
}

fn decode<T: DeserializeOwned>(answer: &Answer, what: &str) -> Result<T, GenesysError> {
    serde_json::from_slice(&answer.body).map_err(|error| GenesysError::Decode {
        message: format!("{what}: {error}"),
        correlation_id: answer.correlation_id.clone(),
    })
}

fn token_from_answer(answer: Answer, requested_at: Instant) -> Result<FreshToken, GenesysError> {
    match answer.status {
        200..=299 => {
            let token: OAuthTokenResponse = decode(&answer, "token response")?;
            if !token.token_type.eq_ignore_ascii_case("bearer") || token.access_token.is_empty() {
                return Err(GenesysError::Decode {
                    message: format!("token response: unusable token of type {:?}", token.token_type),
                    correlation_id: answer.correlation_id,
                });
            }
            Ok(FreshToken {
                value: token.access_token,
                lifetime: Duration::from_secs(token.expires_in),
                requested_at,
            })
        }
        400 | 401 => {
            let reason = serde_json::from_slice::<OAuthErrorResponse>(&answer.body)
                .map(|body| body.error)
                .unwrap_or_else(|_| format!("token endpoint answered HTTP {}", answer.status));
            Err(GenesysError::UpstreamAuth {
                status: answer.status,
                reason,
                correlation_id: answer.correlation_id,
            })
        }
        status => Err(GenesysError::Upstream {
            status,
            correlation_id: answer.correlation_id,
        }),
    }
}

/// Maps a final API answer to the operation's result.
fn api_result<T: DeserializeOwned>(
    answer: Answer,
    what: &str,
    queue_id: &QueueId,
) -> Result<T, GenesysError> {
    if (200..300).contains(&answer.status) {
        return decode(&answer, what);
    }
    let body = serde_json::from_slice::<GenesysErrorBody>(&answer.body).ok();
    let correlation_id = answer.correlation_id;
    match answer.status {
        400 => {
            let mut details: Vec<String> = body
                .iter()
                .flat_map(|b| &b.details)
                .map(|d| match &d.field_name {
                    Some(field) => format!("{field}: {}", d.error_message),
                    None => d.error_message.clone(),
                })
                .collect();
            if details.is_empty() {
                details.push(
                    body.map(|b| b.message)
                        .filter(|m| !m.is_empty())
                        .unwrap_or_else(|| "Genesys rejected the request".to_owned()),
                );
            }
            Err(GenesysError::InvalidRequest {
                details,
                correlation_id,
            })
        }
        404 if body.as_ref().is_some_and(|b| says_queue_not_found(b, queue_id)) => {
            Err(GenesysError::UnknownQueue {
                queue_id: *queue_id,
                correlation_id,
            })
        }
        status @ (401 | 403) => Err(GenesysError::UpstreamAuth {
            status,
            reason: body
                .map(|b| b.code)
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| format!("HTTP {status}")),
            correlation_id,
        }),
        status => Err(GenesysError::Upstream {
            status,
            correlation_id,
        }),
    }
}

/// A final answer of a web-messaging route: its JSON on 2xx, else Genesys' refusal with its code.
fn webmessaging_result<T: DeserializeOwned>(answer: Answer, what: &str) -> Result<T, GenesysError> {
    if (200..300).contains(&answer.status) {
        return decode(&answer, what);
    }
    let body = serde_json::from_slice::<GenesysErrorBody>(&answer.body).ok();
    match answer.status {
        status @ (401 | 403)
            if body.as_ref().is_some_and(|b| {
                b.code == error_codes::BAD_CREDENTIALS || b.code == error_codes::MISSING_PERMISSIONS
            }) =>
        {
            Err(GenesysError::UpstreamAuth {
                status,
                reason: body.map(|b| b.code).unwrap_or_default(),
                correlation_id: answer.correlation_id,
            })
        }
        status => Err(GenesysError::Rejected {
            status,
            code: body
                .map(|b| b.code)
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| format!("HTTP {status}")),
            correlation_id: answer.correlation_id,
        }),
    }
}

/// Whether a 404's body is Genesys saying that `queue_id` does not exist (`not.found`, naming the
/// queue), rather than a 404 of a route that does not exist (a wrong base URL or path), which is
/// an upstream failure to alert on, not the caller's mistake.
fn says_queue_not_found(body: &GenesysErrorBody, queue_id: &QueueId) -> bool {
    says_not_found(body, &queue_id.to_string())
}

/// Whether a 404's body is Genesys saying that the entity `id` does not exist.
/// A text names the entity when it holds its id but no path: a route's 404 ("No resource matches
/// GET /api/v2/...") quotes the path, id included.
fn says_not_found(body: &GenesysErrorBody, id: &str) -> bool {
    let id = id.to_ascii_lowercase();
    let names = |text: &str| {
        let text = text.to_ascii_lowercase();
        text.contains(&id) && !text.contains('/')
    };
    body.code == error_codes::NOT_FOUND
        && (names(&body.message) || body.details.iter().any(|d| names(&d.error_message)))
}

#[async_trait(?Send)]
impl GenesysApi for GenesysClient {
    async fn create_guest(&self, request: &CreateGuestRequest) -> Result<CreateGuestResponse, GenesysError> {
        let deadline = self.deadline();
        let body = serde_json::to_vec(request).map_err(|error| GenesysError::Decode {
            message: format!("guest request could not be encoded: {error}"),
            correlation_id: None,
        })?;
        let call = Call {
            operation: Operation::CreateGuest,
            method: Method::POST,
            url: &self.shared.guests_url,
            body: Some(("application/json", body)),
            auth: Auth::Bearer,
        };
        let answer = self.execute(&call, deadline).await?;
        api_result(answer, "guest response", &request.routing.queue_id)
    }

    async fn get_queue(&self, queue_id: &QueueId) -> Result<Queue, GenesysError> {
        let deadline = self.deadline();
        let url = format!(
            "{}{QUEUES_PATH_PREFIX}{queue_id}",
            self.shared.config.endpoints.api_base
        );
        let call = Call {
            operation: Operation::GetQueue,
            method: Method::GET,
            url: &url,
            body: None,
            auth: Auth::Bearer,
        };
        let answer = self.execute(&call, deadline).await?;
        api_result(answer, "queue response", queue_id)
    }

    async fn get_deployment(&self, deployment_id: &str) -> Result<WebDeployment, GenesysError> {
        let deadline = self.deadline();
        let url = format!(
            "{}{DEPLOYMENTS_PATH_PREFIX}{deployment_id}",
            self.shared.config.endpoints.api_base
        );
        let call = Call {
            operation: Operation::GetDeployment,
            method: Method::GET,
            url: &url,
            body: None,
            auth: Auth::Bearer,
        };
        let answer = self.execute(&call, deadline).await?;
        if answer.status == 404 {
            // Only Genesys naming the deployment means it does not exist; any other 404 is a
            // route that does not (a wrong base URL), an upstream failure.
            let named = serde_json::from_slice::<GenesysErrorBody>(&answer.body)
                .is_ok_and(|body| says_not_found(&body, deployment_id));
            if !named {
                return Err(GenesysError::Upstream {
                    status: 404,
                    correlation_id: answer.correlation_id,
                });
            }
        }
        webmessaging_result(answer, "deployment")
    }

    async fn exchange_code(
        &self,
        request: &OAuthExchangeRequest,
    ) -> Result<AuthorizationResponse, GenesysError> {
        let deadline = self.deadline();
        let body = serde_json::to_vec(request).map_err(|error| GenesysError::Decode {
            message: format!("exchange request could not be encoded: {error}"),
            correlation_id: None,
        })?;
        let call = Call {
            operation: Operation::ExchangeCode,
            method: Method::POST,
            url: &self.shared.exchange_url,
            body: Some(("application/json", body)),
            auth: Auth::Anonymous,
        };
        let answer = self.execute(&call, deadline).await?;
        webmessaging_result(answer, "exchange answer")
    }

    async fn fetch_document(&self, url: &str) -> Result<serde_json::Value, GenesysError> {
        let deadline = self.deadline();
        let call = Call {
            operation: Operation::FetchDocument,
            method: Method::GET,
            url,
            body: None,
            auth: Auth::Anonymous,
        };
        let answer = self.execute(&call, deadline).await?;
        if (200..300).contains(&answer.status) {
            decode(&answer, "document")
        } else {
            Err(GenesysError::Upstream {
                status: answer.status,
                correlation_id: answer.correlation_id,
            })
        }
    }

    async fn fetch_token(&self) -> Result<TokenStatus, GenesysError> {
        let token = self.token(true, self.deadline()).await?;
        Ok(TokenStatus {
            expires_in: token.lifetime(),
        })
    }

    fn status(&self) -> UpstreamStatus {
        self.shared.status()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const QUEUE: &str = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";

    fn answer(status: u16, body: serde_json::Value) -> Answer {
        Answer {
            status,
            retry_after: None,
            correlation_id: Some("corr-1".to_owned()),
            body: serde_json::to_vec(&body).unwrap(),
        }
    }

    fn queue() -> QueueId {
        QUEUE.parse().unwrap()
    }

    #[test]
    fn shared_state_can_cross_worker_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<GenesysShared>();
        assert_send_sync::<Arc<GenesysShared>>();
    }

    #[actix_rt::test]
    async fn debug_output_never_shows_the_client_secret() {
        let config = GenesysConfig {
            endpoints: crate::Endpoints::from_urls("http://127.0.0.1:9", None).unwrap(),
            client_id: "the-client".to_owned(),
            client_secret: "very-secret-value".to_owned().into(),
            retry: crate::RetrySettings::default(),
            max_connections_per_worker: 1,
            allowance: crate::AllowanceSettings::default(),
        };
        let shared = GenesysShared::new(config, Arc::new(crate::NoopObserver));
        let client = GenesysClient::new(shared.clone());
        for shown in [
            format!("{shared:?}"),
            format!("{client:?}"),
            format!("{:?}", shared.config()),
        ] {
            assert!(shown.contains("the-client"), "{shown}");
            assert!(!shown.contains("very-secret-value"), "{shown}");
        }
    }

    #[test]
    fn a_400_becomes_invalid_request_with_one_line_per_field() {
        let body = json!({"message": "bad", "code": "bad.request", "status": 400,
            "details": [{"fieldName": "routing.queueId", "errorMessage": "must be a UUID"},
                        {"errorMessage": "something else"}]});
        let err = api_result::<Queue>(answer(400, body), "queue", &queue()).unwrap_err();
        assert_eq!(
            err,
            GenesysError::InvalidRequest {
                details: vec!["routing.queueId: must be a UUID".into(), "something else".into()],
                correlation_id: Some("corr-1".into()),
            }
        );
    }

    #[test]
    fn a_400_without_details_keeps_the_message() {
        let err =
            api_result::<Queue>(answer(400, json!({"message": "no good"})), "queue", &queue()).unwrap_err();
        assert!(matches!(err, GenesysError::InvalidRequest { details, .. } if details == ["no good"]));
    }

    #[test]
    fn a_404_is_an_unknown_queue_only_when_genesys_names_the_queue() {
        let unknown = json!({"code": "not.found", "message": format!("Queue {QUEUE} not found")});
        let err = api_result::<Queue>(answer(404, unknown), "queue", &queue()).unwrap_err();
        assert!(matches!(err, GenesysError::UnknownQueue { .. }), "{err:?}");
        for misrouted in [
            json!({"code": "not.found", "message": "No resource matches POST /x/api/v2/webchat/instances/guests"}),
            json!({"code": "not.found", "message": format!("No resource matches GET /x/api/v2/routing/queues/{QUEUE}")}),
            json!({"code": "not.found", "message": "Queue 0f8e2c7a-3b1d-4c5e-9a6f-112233445566 not found"}),
            json!({"message": format!("Queue {QUEUE} not found")}),
            json!("<html>404</html>"),
        ] {
            let err = api_result::<Queue>(answer(404, misrouted.clone()), "queue", &queue()).unwrap_err();
            assert!(
                matches!(err, GenesysError::Upstream { status: 404, .. }),
                "{misrouted}: {err:?}"
            );
        }
    }

    #[test]
    fn a_404_names_the_queue_and_401_403_are_auth_failures() {
        let err = api_result::<Queue>(
            answer(
                404,
                json!({"code": "not.found", "message": format!("Queue {QUEUE} not found")}),
            ),
            "queue",
            &queue(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            GenesysError::UnknownQueue {
                queue_id: queue(),
                correlation_id: Some("corr-1".into())
            }
        );
        for status in [401, 403] {
            let err = api_result::<Queue>(
                answer(status, json!({"code": "missing.permissions"})),
                "queue",
                &queue(),
            )
            .unwrap_err();
            assert!(
                matches!(&err, GenesysError::UpstreamAuth { status: s, reason, .. } if *s == status && reason == "missing.permissions"),
                "{err:?}"
            );
        }
    }

    #[test]
    fn a_2xx_with_a_foreign_body_is_a_decode_error() {
        let err =
            api_result::<Queue>(answer(200, json!({"nope": 1})), "queue response", &queue()).unwrap_err();
        assert!(
            matches!(err, GenesysError::Decode { message, correlation_id: Some(_) } if message.starts_with("queue response"))
        );
    }

    #[test]
    fn token_endpoint_rejections_are_auth_failures_with_the_oauth_code() {
        let body = json!({"error": "invalid_client", "error_description": "wrong secret"});
        let err = token_from_answer(answer(401, body), Instant::now())
            .err()
            .unwrap();
        assert_eq!(
            err,
            GenesysError::UpstreamAuth {
                status: 401,
                reason: "invalid_client".into(),
                correlation_id: Some("corr-1".into())
            }
        );
        let err = token_from_answer(answer(500, json!({})), Instant::now())
            .err()
            .unwrap();
        assert!(matches!(err, GenesysError::Upstream { status: 500, .. }));
    }

    #[test]
    fn a_token_answer_gives_its_lifetime() {
        let body = json!({"access_token": "abc", "token_type": "bearer", "expires_in": 3});
        let fresh = token_from_answer(answer(200, body), Instant::now()).ok().unwrap();
        assert_eq!(fresh.lifetime, Duration::from_secs(3));
        let body = json!({"access_token": "abc", "token_type": "mac", "expires_in": 3});
        assert!(matches!(
            token_from_answer(answer(200, body), Instant::now()),
            Err(GenesysError::Decode { .. })
        ));
    }

    #[test]
    fn giving_up_reports_the_last_outcome() {
        let mut limited = answer(429, json!({}));
        limited.retry_after = Some(Duration::from_secs(120));
        assert_eq!(
            give_up(Ok(limited), Duration::from_secs(120), None),
            GenesysError::RateLimited {
                retry_after: Duration::from_secs(120),
                correlation_id: Some("corr-1".into())
            }
        );
        // A 429 without Retry-After names the backoff step, at least a second.
        assert!(matches!(
            give_up(Ok(answer(429, json!({}))), Duration::from_millis(10), None),
            GenesysError::RateLimited { retry_after, .. } if retry_after == Duration::from_secs(1)
        ));
        assert!(matches!(
            give_up(Ok(answer(503, json!({}))), Duration::ZERO, None),
            GenesysError::Upstream { status: 503, .. }
        ));
        assert!(matches!(
            give_up(Err(Failure::Timeout), Duration::ZERO, None),
            GenesysError::Timeout { .. }
        ));
        assert_eq!(
            give_up(Err(Failure::Transport("reset".into())), Duration::ZERO, None),
            GenesysError::Transport {
                message: "reset".into(),
                correlation_id: None
            }
        );
        // A connection that fails after an earlier answer keeps that answer's correlation id.
        let error = give_up(
            Err(Failure::Transport("reset".into())),
            Duration::ZERO,
            Some("corr-503".into()),
        );
        assert_eq!(error.correlation_id(), Some("corr-503"));
    }
}
