//! A standalone emulator of the slice of Genesys Cloud the guest-token service talks to.
//!
//! It serves the OAuth client-credentials grant, guest creation with Ed25519-signed guest JWTs and
//! the queue lookup on one listener, with Genesys' error bodies, correlation ids, rate-limit headers
//! and a per-client fixed-window rate limit. A WireMock-style `/__admin` API journals requests,
//! injects faults (statuses, delays, dropped connections, malformed bodies), revokes tokens and
//! changes settings at run time. State is in memory and the request path never blocks, so the
//! emulator is never the bottleneck of a benchmark.
//!
//! The binary `mock-genesys` runs it standalone (local development, containers); tests start it
//! in-process with [`MockServer::start`] on a random port and drive it through the typed accessors
//! or the HTTP admin API, which share the same state.

mod admin;
mod connection;
mod correlation;
mod error_body;
mod faults;
mod genesys;
mod healthcheck;
mod journal;
mod server;
mod settings;
mod signing;
mod state;

pub use faults::{ActiveFault, ConnectionFault, FaultSpec};
pub use healthcheck::healthcheck;
pub use journal::{JournalEntry, REDACTED};
pub use server::{MockServer, run};
pub use settings::{
    ClientConfig, DEFAULT_CONFIG_PATH, DEFAULT_HOST, DEFAULT_PORT, ENV_PREFIX, FlagOverrides, InvalidSetting,
    Latency, LogFormat, MockSettings, QueueConfig, RateLimit, RuntimeSettings, SettingsError, SettingsPatch,
};

/// Path prefix of the admin API; never journaled, never faulted.
pub const ADMIN_PREFIX: &str = "/__admin";
