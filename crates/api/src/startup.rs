//! Building and running the service: bind, serve while logging in to Genesys, shut down gracefully.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use genesys_client::{GenesysApi, GenesysClient, GenesysError, GenesysShared, TokenState, UpstreamObserver};

use crate::bridge::IdentityBridge;
use crate::context::request_context;
use crate::cors::cors;
use crate::metrics::Metrics;
use crate::observer::MetricsObserver;
use crate::rate_limit::ClientIpLimiter;
use crate::routes;
use crate::settings::Settings;
use crate::state::{AppState, GuestPolicy, Lifecycle};

/// Why the service could not start, or stopped on an error.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Genesys rejected the OAuth client: the operator must fix the credentials.
    #[error(
        "Genesys rejected the OAuth client credentials; check GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET ({0})"
    )]
    Credentials(GenesysError),
    /// The listening socket could not be opened.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// `host:port` that was asked for.
        address: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("the server failed: {0}")]
    Serve(std::io::Error),
}

/// The handle on the upstream a worker's handlers use.
pub fn upstream_data(api: impl GenesysApi + 'static) -> web::Data<dyn GenesysApi> {
    // Built per worker: awc's client is not Send, so this Arc never leaves its thread.
    let boxed: Box<dyn GenesysApi> = Box::new(api);
    web::Data::from(Arc::<dyn GenesysApi>::from(boxed))
}

/// The application for one worker: routes, CORS, request context, shared state and upstream.
pub fn app(
    state: web::Data<AppState>,
    genesys: web::Data<dyn GenesysApi>,
    cors: Cors,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let web_messaging = state.bridge.is_some();
    App::new()
        .app_data(state)
        .app_data(genesys)
        .configure(|cfg| routes::configure(cfg, web_messaging))
        .wrap(cors)
        .wrap(from_fn(request_context))
}

/// A bound service, logging in to Genesys in the background, ready to run.
pub struct Application {
    port: u16,
    server: Server,
    shutdown: ShutdownTrigger,
    rejected_login: RejectedLogin,
}

/// Where the start-up login leaves Genesys' refusal of the credentials, for
/// [`Application::run_until_stopped`] to return once the server has stopped.
type RejectedLogin = Arc<Mutex<Option<GenesysError>>>;

/// Starts a graceful shutdown, as Kubernetes expects it: readiness turns 503 at once while every
/// route keeps serving for the drain delay; then the listener closes and in-flight requests get
/// the grace period to finish. Triggered a second time, it stops at once.
#[derive(Clone)]
pub struct ShutdownTrigger {
    lifecycle: Arc<Lifecycle>,
    handle: ServerHandle,
    drain_delay: Duration,
}

impl ShutdownTrigger {
    /// Begins the drain now and returns at once; the server future completes when it is done. A
    /// second call stops the server at once, dropping what is in flight.
    pub fn trigger(&self) {
        if self.lifecycle.is_draining() {
            tracing::warn!("stopping at once: in-flight requests are dropped");
            let handle = self.handle.clone();
            actix_rt::spawn(async move { handle.stop(false).await });
            return;
        }
        self.lifecycle.begin_drain();
        tracing::info!(
            drain_delay_ms = self.drain_delay.as_millis() as u64,
            "draining: /readyz answers 503, requests are still served"
        );
        let handle = self.handle.clone();
        let drain_delay = self.drain_delay;
        actix_rt::spawn(async move {
            actix_rt::time::sleep(drain_delay).await;
            tracing::info!("closing the listener; in-flight requests finish");
            handle.stop(true).await;
        });
    }
}

impl Application {
    /// Binds `settings.server.host:port` (port 0 picks a free one), prepares the server and starts
    /// the Genesys login beside it. Must run inside an actix system.
    ///
    /// Only a bind failure fails the build, at once: the service serves `/livez` while it logs in,
    /// and `not_ready` until the login succeeds. Rejected credentials stop the server, and
    /// [`Application::run_until_stopped`] then returns [`StartupError::Credentials`].
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let bind_error = |source| StartupError::Bind {
            address: address.clone(),
            source,
        };
        let listener = TcpListener::bind(&address).map_err(bind_error)?;
        let port = listener.local_addr().map_err(bind_error)?.port();

        let metrics = Arc::new(Metrics::new());
        let observer: Arc<dyn UpstreamObserver> = Arc::new(MetricsObserver(metrics.clone()));
        let shared = GenesysShared::new(settings.genesys.client_config(), observer);
        let lifecycle = Arc::new(Lifecycle::new());
        let bridge = settings
            .web_messaging
            .as_ref()
            .map(|wm| Arc::new(IdentityBridge::new(wm)));
        let limiter = settings
            .rate_limit
            .enabled
            .then(|| Arc::new(ClientIpLimiter::new(&settings.rate_limit)));
        if let Some(limiter) = &limiter {
            actix_rt::spawn(prune_periodically(
                Arc::downgrade(limiter),
                settings.rate_limit.prune_interval,
            ));
        }
        let state = web::Data::new(AppState {
            policy: Arc::new(GuestPolicy::from_settings(&settings)),
            lifecycle: lifecycle.clone(),
            metrics,
            limiter,
            openapi_json: crate::openapi::document_json().into(),
            bridge: bridge.clone(),
        });

        for note in &settings.notes {
            tracing::warn!("{note}");
        }
        let cors_settings = settings.cors.clone();
        let worker_shared = shared.clone();
        let limits = &settings.server;
        let mut server = HttpServer::new(move || {
            let genesys = upstream_data(GenesysClient::new(worker_shared.clone()));
            app(state.clone(), genesys, cors(&cors_settings))
        })
        .disable_signals()
        .shutdown_timeout(limits.shutdown_timeout.as_secs())
        .client_request_timeout(limits.request_head_timeout)
        .client_disconnect_timeout(limits.client_disconnect_timeout)
        .keep_alive(limits.keep_alive)
        .max_connections(limits.max_connections_per_worker);
        if limits.workers > 0 {
            server = server.workers(limits.workers);
        }
        let server = server.listen(listener).map_err(bind_error)?.run();
        tracing::info!(port, "listening");

        let rejected_login = RejectedLogin::default();
        actix_rt::spawn(log_in_at_startup(
            GenesysClient::new(shared),
            StartupLogin {
                lifecycle: lifecycle.clone(),
                server: server.handle(),
                rejected: rejected_login.clone(),
                retry_initial: settings.genesys.login_retry_initial,
                retry_max: settings.genesys.login_retry_max,
                bridge,
            },
        ));
        let shutdown = ShutdownTrigger {
            lifecycle,
            handle: server.handle(),
            drain_delay: settings.server.drain_delay,
        };
        Ok(Self {
            port,
            server,
            shutdown,
            rejected_login,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that starts the same graceful shutdown SIGTERM does.
    pub fn shutdown_trigger(&self) -> ShutdownTrigger {
        self.shutdown.clone()
    }

    /// Serves until a graceful shutdown (SIGTERM, SIGINT or the trigger) has finished, or until
    /// Genesys rejected the credentials at start-up ([`StartupError::Credentials`]).
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        let trigger = self.shutdown.clone();
        let signals = actix_rt::spawn(async move {
            // The first signal drains; a second one stops at once.
            for _ in 0..2 {
                match wait_for_signal().await {
                    Ok(name) => {
                        tracing::info!(signal = name, "signal received");
                        trigger.trigger();
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot listen for shutdown signals");
                        return;
                    }
                }
            }
        });
        let result = self.server.await;
        signals.abort();
        self.shutdown.lifecycle.mark_stopped();
        tracing::info!("stopped");
        let rejected = self.rejected_login.lock().expect("the login slot").take();
        match rejected {
            Some(e) => Err(StartupError::Credentials(e)),
            None => result.map_err(StartupError::Serve),
        }
    }
}

async fn wait_for_signal() -> std::io::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = terminate.recv() => Ok("SIGTERM"),
            _ = interrupt.recv() => Ok("SIGINT"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await?;
        Ok("ctrl-c")
    }
}

/// What the start-up login reports to, and how it retries.
struct StartupLogin {
    lifecycle: Arc<Lifecycle>,
    server: ServerHandle,
    rejected: RejectedLogin,
    retry_initial: Duration,
    retry_max: Duration,
    /// Web messaging's deployment is read once logged in, and again every cache lifetime.
    bridge: Option<Arc<IdentityBridge>>,
}

/// The first login, beside the running server: success makes the service ready, rejected
/// credentials stop it (the operator must fix them), anything else retries in the background.
/// Once logged in, the token is kept fresh in the background for as long as the server runs.
async fn log_in_at_startup(client: GenesysClient, login: StartupLogin) {
    match client.fetch_token().await {
        Ok(status) => {
            login.lifecycle.mark_logged_in();
            tracing::info!(
                expires_in_s = status.expires_in.as_secs(),
                "logged in to Genesys; ready"
            );
        }
        Err(e @ GenesysError::UpstreamAuth { .. }) => {
            tracing::error!(error = %e, "Genesys rejected GENESYS_CLIENT_ID / GENESYS_CLIENT_SECRET; stopping");
            login.lifecycle.begin_drain();
            *login.rejected.lock().expect("the login slot") = Some(e);
            login.server.stop(true).await;
            return;
        }
        Err(e) => {
            tracing::warn!(
                error = %e,
                "Genesys is unreachable; serving not_ready until a background login succeeds"
            );
            if !background_login(&client, &login.lifecycle, login.retry_initial, login.retry_max).await {
                return;
            }
        }
    }
    if let Some(bridge) = login.bridge {
        let deployment_client = GenesysClient::new(client.shared().clone());
        actix_rt::spawn(keep_deployment_read(
            deployment_client,
            bridge,
            login.lifecycle.clone(),
        ));
    }
    keep_token_fresh(&client, &login.lifecycle).await;
}

/// Reads web messaging's deployment now and then, so readiness can report one that is missing
/// or inactive without calling Genesys itself.
async fn keep_deployment_read(client: GenesysClient, bridge: Arc<IdentityBridge>, lifecycle: Arc<Lifecycle>) {
    let every = bridge.deployment.ttl();
    loop {
        if lifecycle.is_stopped() {
            return;
        }
        if let Some(reason) = bridge
            .deployment
            .refresh(&client)
            .await
            .unready_reason(&bridge.deployment_id)
        {
            tracing::error!("{reason}");
        }
        actix_rt::time::sleep(every).await;
    }
}

/// Retries the login with capped exponential backoff until it succeeds (`true`) or the server
/// stops (`false`).
async fn background_login(
    client: &GenesysClient,
    lifecycle: &Lifecycle,
    initial: Duration,
    max: Duration,
) -> bool {
    let mut wait = initial;
    loop {
        actix_rt::time::sleep(wait).await;
        if lifecycle.is_stopped() {
            return false;
        }
        match client.fetch_token().await {
            Ok(_) => {
                lifecycle.mark_logged_in();
                tracing::info!("logged in to Genesys; ready");
                return true;
            }
            Err(e @ GenesysError::UpstreamAuth { .. }) => tracing::error!(
                error = %e,
                "Genesys rejected GENESYS_CLIENT_ID / GENESYS_CLIENT_SECRET; still not ready"
            ),
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "Genesys login failed")
            }
        }
        wait = (wait * 2).min(max);
    }
}

/// Longest sleep of the token keeper, so it notices the server stopping.
const KEEPER_LONGEST_SLEEP: Duration = Duration::from_secs(30);

/// How long the token keeper waits before looking again at a cache in `token`: until the held
/// token is due, or until the cool-down after a failed request ends; zero when a request is due now.
fn keeper_wait(token: &TokenState) -> Duration {
    match (token.held, token.refresh_in, token.paused_for) {
        (_, _, Some(cooling_down)) => cooling_down,
        (true, Some(due_in), None) => due_in,
        _ => Duration::ZERO,
    }
}

/// Keeps the access token fresh while the service sits idle, so readiness can read state alone:
/// a token due for refresh, or lapsed, is requested again here, never more often than the
/// refresh cool-down allows after a failure. Requests that find the token due refresh it too;
/// both go through the cache's single flight.
async fn keep_token_fresh(client: &GenesysClient, lifecycle: &Lifecycle) {
    loop {
        let wait = keeper_wait(&client.status().token).min(KEEPER_LONGEST_SLEEP);
        if !wait.is_zero() {
            actix_rt::time::sleep(wait).await;
        }
        if lifecycle.is_stopped() {
            return;
        }
        // Looked at again: a request may have refreshed the token meanwhile.
        if keeper_wait(&client.status().token).is_zero() {
            match client.fetch_token().await {
                Ok(status) => tracing::debug!(
                    expires_in_s = status.expires_in.as_secs(),
                    "Genesys access token refreshed in the background"
                ),
                Err(e) => tracing::warn!(
                    error = %e,
                    kind = e.kind(),
                    "background token refresh failed; retrying after the cool-down"
                ),
            }
        }
    }
}

async fn prune_periodically(limiter: std::sync::Weak<ClientIpLimiter>, every: Duration) {
    let mut interval = actix_rt::time::interval(every);
    interval.tick().await;
    loop {
        interval.tick().await;
        // Ends with the last worker: the state holding the limiter is gone.
        let Some(limiter) = limiter.upgrade() else { return };
        limiter.prune();
    }
}
