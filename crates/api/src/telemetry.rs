//! Tracing set-up: JSON lines or readable text, written to a sink the caller chooses (stdout in
//! the binary, a buffer or nothing in tests).
//!
//! Records of dependencies that log through the `log` crate (actix-web, actix-cors, awc, rustls,
//! mio) are bridged into the same subscriber by [`init`], so they pass the same filter and come
//! out in the same format. Targets whose verbose levels print credentials are capped by
//! [`LOG_CAPS`] whatever the filter asks for.

use tracing::Subscriber;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{FilterExt, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::{SubscriberInitExt, TryInitError};
use tracing_subscriber::{Layer, Registry};

use crate::settings::LogFormat;

/// The most verbose level each listed target may ever log at, applied after the operator's filter
/// (`RUST_LOG` / `log.level`), so no filter can turn these targets up.
///
/// - `awc` at trace prints each HTTP/2 request head with its headers, among them
///   `Authorization: Basic <client id:secret>` and `Authorization: Bearer <access token>`; its
///   warnings and errors (connector and header problems) stay visible.
/// - actix-http's HTTP/1 dispatcher logs every malformed request it answers 400 (a NUL byte in a
///   header, say) at ERROR: any client could fill the error log at will.
pub const LOG_CAPS: &[(&str, LevelFilter)] = &[
    ("awc", LevelFilter::INFO),
    ("actix_http::h1::dispatcher", LevelFilter::OFF),
];

/// The caps in [`LOG_CAPS`] as `target=level` text, for `--help`.
pub fn log_caps_description() -> String {
    LOG_CAPS
        .iter()
        .map(|(target, level)| format!("{target}={}", level.to_string().to_lowercase()))
        .collect::<Vec<_>>()
        .join(",")
}

/// A subscriber writing `format` lines that pass `filter` (an `EnvFilter` directive) and
/// [`LOG_CAPS`] to `sink`.
pub fn subscriber<W>(format: LogFormat, filter: &str, sink: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let user_filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let caps = Targets::new()
        .with_targets(LOG_CAPS.iter().copied())
        .with_default(LevelFilter::TRACE);
    // A per-layer `and` (not a second global layer): a target-scoped, span-scoped or more specific
    // directive cannot get past the caps, and the max-level hint stays the stricter of the two.
    let filter = user_filter.and(caps);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(sink)
        .with_ansi(false)
        .with_target(true);
    match format {
        LogFormat::Json => Box::new(
            Registry::default().with(
                layer
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_filter(filter),
            ),
        ),
        LogFormat::Text => Box::new(Registry::default().with(layer.with_filter(filter))),
    }
}

/// Installs `subscriber` for the whole process and routes `log` crate records into it (at most
/// as verbose as the subscriber lets through, so disabled `log` calls stay cheap). Fails if a
/// subscriber or a `log` logger is installed already.
pub fn init(subscriber: Box<dyn Subscriber + Send + Sync>) -> Result<(), TryInitError> {
    subscriber.try_init()
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A sink the test reads back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// What `filter` lets through of awc's trace line (the one that prints request heads), an awc
    /// error, and a trace line of this crate, all inside a `request` span.
    fn written_with(filter: &str) -> String {
        let sink = Captured::default();
        tracing::subscriber::with_default(subscriber(LogFormat::Json, filter, sink.clone()), || {
            let span = tracing::info_span!("request");
            let _entered = span.enter();
            tracing::trace!(target: "awc::client::h2proto", "Sending client request: Bearer awc-trace-line");
            tracing::error!(target: "awc::client::connector", "awc-error-line");
            tracing::trace!(target: "api::routes", "api-trace-line");
            tracing::error!(target: "actix_http::h1::dispatcher", "stream error: request parse error");
        });
        sink.text()
    }

    #[test]
    fn no_filter_turns_awc_trace_lines_back_on() {
        for filter in [
            "trace",
            "awc=trace",
            "info,awc::client::h2proto=trace",
            "off,awc::client=trace",
            "[request]=trace",
        ] {
            let written = written_with(filter);
            assert!(
                !written.contains("awc-trace-line"),
                "{filter:?} let awc trace through: {written}"
            );
            assert!(
                written.contains("awc-error-line"),
                "{filter:?} hid an awc error: {written}"
            );
        }
    }

    #[test]
    fn a_client_cannot_fill_the_error_log_with_malformed_requests() {
        for filter in ["trace", "info", "actix_http=trace"] {
            let written = written_with(filter);
            assert!(!written.contains("request parse error"), "{filter:?}: {written}");
        }
    }

    #[test]
    fn the_caps_leave_other_targets_at_the_filters_level() {
        assert!(written_with("trace").contains("api-trace-line"));
        assert!(!written_with("info").contains("api-trace-line"));
    }

    #[test]
    fn a_filter_can_still_silence_a_capped_target() {
        let written = written_with("trace,awc=off");
        assert!(!written.contains("awc-error-line"), "{written}");
        assert!(written.contains("api-trace-line"), "{written}");
    }

    #[test]
    fn json_lines_carry_the_target_level_and_message() {
        let written = written_with("info");
        let line: serde_json::Value = serde_json::from_str(written.lines().next().unwrap()).unwrap();
        assert_eq!(line["target"], "awc::client::connector");
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["message"], "awc-error-line");
    }
}
