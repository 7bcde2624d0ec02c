//! The demo page that plays an embedded chat widget, and the small static file server that serves
//! it from its own origin, as the website embedding the widget would.
//!
//! `site/` holds the page: plain HTML, CSS and JavaScript, no build step. [`server`] serves it with
//! actix-files, puts a Content-Security-Policy and the other security headers on every answer, and
//! answers `GET /config.json` with the page's run-time settings ([`config::PageConfig`]), so the
//! page points at another API without a rebuild. For local use only, [`stand_in_login`] plays the
//! site's own login, so the signed-in chat can be tried. The binary `demo-server` runs it; the
//! browser test in `tests/` drives the page in headless Chromium against the real service and the
//! emulator.

pub mod config;
pub mod healthcheck;
pub mod server;
pub mod stand_in_login;

pub use config::{BaseUrl, PageConfig, WebSocketUrl};
pub use server::{ServeOptions, Site, serve};
pub use stand_in_login::StandInLogin;
