//! The guest-token API: an actix-web service that hands a web page's chat widget a short-lived
//! Genesys guest token, while the confidential OAuth client stays on the server.
//!
//! [`startup::Application`] builds the service from [`settings::Settings`] (bind, serve while logging in,
//! shut down gracefully). Requests pass through [`context`] (request id, tracing span, metrics,
//! problem bodies for every error), CORS ([`cors`]) and the routes in [`routes`], which refuse
//! callers by rate ([`rate_limit`]), origin and body before anything goes to Genesys through the
//! [`genesys_client::GenesysApi`] trait. Every refusal is an [`error::ApiError`].

pub mod bridge;
pub mod cli;
pub mod context;
pub mod cors;
pub mod error;
pub mod healthcheck;
pub mod metrics;
pub mod observer;
pub mod oidc;
pub mod openapi;
pub mod rate_limit;
pub mod request_scope;
pub mod routes;
pub mod schemas;
pub mod settings;
pub mod site_session;
pub mod startup;
pub mod state;
pub mod telemetry;

pub use settings::Settings;
pub use startup::{Application, ShutdownTrigger, StartupError};
