//! The HTTP server: [`run`] for the binary, [`MockServer`] for in-process tests.

use std::net::TcpListener;
use std::sync::Arc;
use std::thread::JoinHandle;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
use serde_json::Value;

use crate::faults::FaultSpec;
use crate::journal::JournalEntry;
use crate::settings::{MockSettings, SettingsPatch};
use crate::state::MockState;

fn build(state: Arc<MockState>, listener: TcpListener, workers: Option<usize>) -> std::io::Result<Server> {
    let data = web::Data::from(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(crate::genesys::BODY_LIMIT_BYTES))
            .wrap(actix_web::middleware::from_fn(
                crate::correlation::with_correlation_id,
            ))
            .configure(crate::admin::configure)
            .default_service(web::to(crate::genesys::handle))
    })
    .on_connect(crate::connection::remember_socket)
    .listen(listener)?;
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

/// Serves the emulator on `listener` until SIGINT/SIGTERM, with one worker per core.
///
/// Must run inside an actix system (`actix_web::rt::System::new().block_on(run(..))`).
pub async fn run(settings: MockSettings, listener: TcpListener) -> std::io::Result<()> {
    let state = Arc::new(MockState::new(&settings)?);
    let address = listener.local_addr()?;
    let server = build(state, listener, None)?;
    tracing::info!(%address, "mock-genesys listening");
    server.await
}

/// The emulator running in-process on 127.0.0.1, on its own thread with its own actix system.
///
/// The typed accessors share state with the HTTP admin API. Dropping it stops the server.
pub struct MockServer {
    port: u16,
    state: Arc<MockState>,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Starts on 127.0.0.1 with `settings.port` (0 = random) on its own thread with its own actix
    /// system; returns once listening.
    pub fn start(settings: MockSettings) -> std::io::Result<MockServer> {
        let state = Arc::new(MockState::new(&settings)?);
        let listener = TcpListener::bind(("127.0.0.1", settings.port))?;
        let port = listener.local_addr()?.port();
        let (sender, receiver) = std::sync::mpsc::channel();
        let server_state = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name(format!("mock-genesys-{port}"))
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    match build(server_state, listener, Some(1)) {
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

    /// The journal, oldest first, optionally only one exact path (as `GET /__admin/requests`).
    pub fn requests(&self, path: Option<&str>) -> Vec<JournalEntry> {
        self.state.requests(path)
    }

    /// Adds a fault (as `POST /__admin/faults`) and returns its id.
    ///
    /// # Panics
    /// If the spec is invalid (the admin API would answer 400).
    pub fn add_fault(&self, fault: FaultSpec) -> String {
        if let Err(message) = fault.validate() {
            panic!("invalid fault: {message}");
        }
        self.state.add_fault(fault)
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

    /// Clears journal, faults and rate-limit windows, revokes tokens, restores start-up settings.
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
        f.debug_struct("MockServer").field("port", &self.port).finish()
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
