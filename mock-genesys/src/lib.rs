//! A standalone emulator of the slice of Genesys Cloud the guest-token service talks to.
//!
//! It serves the OAuth client-credentials grant, guest creation with Ed25519-signed guest JWTs and
//! the queue lookup, with Genesys' error bodies, correlation ids, rate-limit headers and a
//! per-client fixed-window rate limit. It speaks Genesys web messaging too: web deployments, the
//! authorization-code exchange (redeemed for real at the deployment's identity provider, every ID
//! token check included), refresh and revoke with their CORS, and the WebSocket at `/v1` with an
//! agent that answers. A WireMock-style `/__admin` API (optionally on a listener of its own)
//! journals requests in and out, injects faults (statuses, delays, dropped connections, malformed
//! bodies), revokes tokens, manages deployments and changes settings at run time. State is in
//! memory, every table is bounded, and the request path never blocks.
//!
//! The binary `mock-genesys` runs it standalone (local development, containers); tests start it
//! in-process with [`MockServer::start`] on a random port and drive it through the typed accessors
//! or the HTTP admin API, which share the same state.

mod admin;
mod connection;
mod correlation;
mod deployments;
mod error_body;
mod faults;
mod genesys;
mod healthcheck;
mod identity;
mod journal;
mod listeners;
mod pipeline;
mod rate_limit;
mod server;
mod sessions;
mod settings;
mod signing;
mod state;
mod webmessaging;
mod websocket;

pub use deployments::{AuthenticationConfig, DEFAULT_DEPLOYMENT_ID, DeploymentConfig, MAX_DEPLOYMENTS};
pub use faults::{ActiveFault, ConnectionFault, FaultSpec, MAX_FAULTS};
pub use healthcheck::{admin_address, healthcheck};
pub use journal::{JOURNAL_BODY_MAX_BYTES, JournalEntry, REDACTED, RequestDirection};
pub use server::{MockServer, bind_admin_listener, run, run_with_admin};
pub use settings::{
    ClientConfig, DEFAULT_CONFIG_PATH, DEFAULT_HOST, DEFAULT_PORT, ENV_PREFIX, FlagOverrides, InvalidSetting,
    Latency, LogFormat, MockSettings, QueueConfig, RateLimit, RuntimeSettings, SettingsError, SettingsPatch,
};

/// Path prefix of the admin API; never journaled, never faulted.
pub const ADMIN_PREFIX: &str = "/__admin";
