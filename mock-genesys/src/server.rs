//! The HTTP server: [`run`] for the binary, [`MockServer`] for in-process tests.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use domain::webmessaging::WEBSOCKET_PATH;
use serde_json::Value;

use crate::deployments::DeploymentConfig;
use crate::faults::FaultSpec;
use crate::identity::IdentityProviderClient;
use crate::journal::{JournalEntry, RequestDirection};
use crate::listeners::AdminListener;
use crate::settings::{MockSettings, SettingsPatch};
use crate::state::MockState;

fn build(
    state: Arc<MockState>,
    listener: TcpListener,
    admin_listener: Option<TcpListener>,
    workers: Option<usize>,
) -> std::io::Result<Server> {
    let admin = admin_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?
        .map(|address| web::Data::new(AdminListener(address)));
    let identity_provider_timeout = state.limits.identity_provider_timeout;
    let data = web::Data::from(state);
    let mut server = HttpServer::new(move || {
        let mut app = App::new()
            .app_data(data.clone())
            // awc is not Send: each worker calls identity providers with its own client.
            .app_data(web::Data::new(IdentityProviderClient::new(
                identity_provider_timeout,
            )))
            .app_data(web::PayloadConfig::new(crate::pipeline::BODY_LIMIT_BYTES));
        if let Some(admin) = &admin {
            app = app.app_data(admin.clone());
        }
        app.wrap(from_fn(crate::listeners::serve_on_its_listener))
            .wrap(from_fn(crate::correlation::with_correlation_id))
            .configure(crate::admin::configure)
            .service(
                web::resource(WEBSOCKET_PATH)
                    .route(web::get().to(crate::websocket::upgrade))
                    .default_service(web::to(crate::pipeline::handle)),
            )
            .default_service(web::to(crate::pipeline::handle))
    })
    .on_connect(crate::connection::remember_socket)
    .listen(listener)?;
    if let Some(admin_listener) = admin_listener {
        server = server.listen(admin_listener)?;
    }
    Ok(match workers {
        // In-process servers leave signals to the test harness and stop at once.
        Some(workers) => server
            .workers(workers)
            .disable_signals()
            .shutdown_timeout(0)
            .run(),
        None => server.run(),
    })
}

/// Binds the admin listener the settings ask for (`admin_port`, on `admin_host` or `host`).
pub fn bind_admin_listener(settings: &MockSettings) -> std::io::Result<Option<TcpListener>> {
    settings
        .admin_port
        .map(|port| {
            let host = settings.admin_host.as_deref().unwrap_or(&settings.host);
            TcpListener::bind((host, port))
        })
        .transpose()
}

/// Serves the emulator on `listener` (and on the admin listener the settings ask for) until
/// SIGINT/SIGTERM, with one worker per core.
///
/// Must run inside an actix system (`actix_web::rt::System::new().block_on(run(..))`).
pub async fn run(settings: MockSettings, listener: TcpListener) -> std::io::Result<()> {
    let admin_listener = bind_admin_listener(&settings)?;
    run_with_admin(settings, listener, admin_listener).await
}

/// Serves the emulator on `listener`, and `/__admin` only on `admin_listener` when there is one,
/// until SIGINT/SIGTERM.
pub async fn run_with_admin(
    settings: MockSettings,
    listener: TcpListener,
    admin_listener: Option<TcpListener>,
) -> std::io::Result<()> {
    let state = Arc::new(MockState::new(&settings)?);
    let address = listener.local_addr()?;
    let admin_address = admin_listener.as_ref().map(TcpListener::local_addr).transpose()?;
    let server = build(state, listener, admin_listener, None)?;
    match admin_address {
        Some(admin_address) => tracing::info!(%address, %admin_address, "mock-genesys listening"),
        None => tracing::info!(%address, "mock-genesys listening"),
    }
    server.await
}

/// The emulator running in-process on 127.0.0.1, on its own thread with its own actix system.
///
/// The typed accessors share state with the HTTP admin API. Dropping it stops the server.
pub struct MockServer {
    port: u16,
    admin_port: Option<u16>,
    state: Arc<MockState>,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Starts on 127.0.0.1 with `settings.port` (0 = random), and a separate admin listener on
    /// 127.0.0.1 when `settings.admin_port` is set, on its own thread with its own actix system;
    /// returns once listening.
    pub fn start(settings: MockSettings) -> std::io::Result<MockServer> {
        let state = Arc::new(MockState::new(&settings)?);
        let listener = TcpListener::bind(("127.0.0.1", settings.port))?;
        let port = listener.local_addr()?.port();
        let admin_listener = settings
            .admin_port
            .map(|admin_port| TcpListener::bind(("127.0.0.1", admin_port)))
            .transpose()?;
        let admin_port = admin_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?
            .as_ref()
            .map(SocketAddr::port);
        let (sender, receiver) = std::sync::mpsc::channel();
        let server_state = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name(format!("mock-genesys-{port}"))
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    match build(server_state, listener, admin_listener, Some(1)) {
                        Ok(server) => {
                            let _ = sender.send(Ok(server.handle()));
                            if let Err(e) = server.await {
                                tracing::error!(error = %e, "mock-genesys stopped with an error");
                            }
                        }
                        Err(e) => {
                            let _ = sender.send(Err(e));
                        }
                    }
                });
            })?;
        let handle = receiver
            .recv()
            .map_err(|_| std::io::Error::other("mock-genesys thread ended before listening"))??;
        Ok(MockServer {
            port,
            admin_port,
            state,
            handle,
            thread: Some(thread),
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`, usable as both the login and the API base URL.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The admin listener's port, when it has its own.
    pub fn admin_port(&self) -> Option<u16> {
        self.admin_port
    }

    /// Where `/__admin` is served: the admin listener's base URL, or [`MockServer::base_url`].
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port.unwrap_or(self.port))
    }

    /// `ws://127.0.0.1:<port>/v1?deploymentId=<id>`, the web-messaging WebSocket of a deployment.
    pub fn websocket_url(&self, deployment_id: &str) -> String {
        format!(
            "ws://127.0.0.1:{}{WEBSOCKET_PATH}?deploymentId={deployment_id}",
            self.port
        )
    }

    /// The journal, oldest first, optionally only one exact path (as `GET /__admin/requests`).
    pub fn requests(&self, path: Option<&str>) -> Vec<JournalEntry> {
        self.requests_by(path, None)
    }

    /// The journal, oldest first, optionally only one exact path and one direction (as
    /// `GET /__admin/requests?path=..&direction=..`).
    pub fn requests_by(&self, path: Option<&str>, direction: Option<RequestDirection>) -> Vec<JournalEntry> {
        self.state
            .requests(path, direction)
            .iter()
            .map(|entry| JournalEntry::clone(entry))
            .collect()
    }

    /// The bytes the journal is charged for now, which stay within `journal_max_bytes`.
    pub fn journal_bytes(&self) -> usize {
        self.state.journal_bytes()
    }

    /// Creates or replaces a deployment (as `PUT /__admin/deployments/{id}`).
    ///
    /// # Panics
    /// If the deployment is invalid or the emulator holds the most deployments it allows.
    pub fn put_deployment(&self, deployment: DeploymentConfig) {
        if let Err(e) = self.state.put_deployment(deployment) {
            panic!("invalid deployment: {e:?}");
        }
    }

    /// Authenticated web-messaging sessions held now.
    pub fn session_count(&self) -> usize {
        crate::state::lock(&self.state.sessions).len()
    }

    /// WebSockets open now.
    pub fn open_websockets(&self) -> usize {
        self.state.open_websocket_count()
    }

    /// Adds a fault (as `POST /__admin/faults`) and returns its id.
    ///
    /// # Panics
    /// If the spec is invalid or the list is full (the admin API would answer 400).
    pub fn add_fault(&self, fault: FaultSpec) -> String {
        if let Err(message) = fault.validate() {
            panic!("invalid fault: {message}");
        }
        match self.state.add_fault(fault) {
            Ok(id) => id,
            Err(_) => panic!("the fault list is full ({} faults)", crate::faults::MAX_FAULTS),
        }
    }

    /// Every access token issued so far gets 401 from now on.
    pub fn revoke_tokens(&self) {
        self.state.revoke_tokens();
    }

    /// Changes run-time settings (as `PATCH /__admin/settings`).
    ///
    /// # Panics
    /// If the patch is invalid (the admin API would answer 400).
    pub fn update_settings(&self, patch: SettingsPatch) {
        if let Err(e) = self.state.patch_settings(&patch) {
            panic!("{e}");
        }
    }

    /// Clears journal, faults, rate-limit windows and web-messaging sessions, revokes tokens,
    /// restores start-up settings and deployments.
    pub fn reset(&self) {
        self.state.reset();
    }

    /// The JWKS that verifies guest tokens (as `GET /__admin/jwks.json`).
    pub fn jwks(&self) -> Value {
        self.state.signer.jwks()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        // `stop` sends its command eagerly; the thread ends once the server has stopped.
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("port", &self.port)
            .field("admin_port", &self.admin_port)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::MockServer;

    #[test]
    fn a_mock_server_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<MockServer>();
    }
}
