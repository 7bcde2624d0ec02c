//! The emulator and the API as local processes from the debug binaries, on free 127.0.0.1 ports,
//! for tasks that test the running service from outside (schemathesis, the OpenID Connect check).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::image::{API, MOCK};
use crate::process::{self, Result, Services, cmd, free_port, root, target_dir};

/// The page origin the API allows in these runs.
pub const ORIGIN: &str = "http://localhost:8080";

/// A running emulator and API; both stop when this is dropped.
pub struct Stack {
    /// `127.0.0.1:<port>` of the API.
    pub api: String,
    _services: Services,
}

/// Starts the emulator (rate limit off) and the API against it (`APP_ENV=local`, allowing
/// [`ORIGIN`], the Genesys allowance out of the way), with `configure` adding the task's own settings given the API's address, and
/// waits until the API is ready.
pub fn start(configure: impl FnOnce(&mut Command, &str)) -> Result<Stack> {
    let bin = debug_binaries()?;
    let mut services = Services::default();

    let mock_port = free_port()?.to_string();
    let mock_address = format!("127.0.0.1:{mock_port}");
    let mut mock = cmd(
        bin.join(MOCK.binary),
        &["--host", "127.0.0.1", "--port", &mock_port],
    );
    mock.env("MOCK__RATE_LIMIT__ENABLED", "false")
        .env("RUST_LOG", "warn");
    services.start(MOCK.service, &mut mock)?;
    services.wait_until_ok(MOCK.service, &mock_address, "/__admin/health")?;

    let api_port = free_port()?.to_string();
    let api_address = format!("127.0.0.1:{api_port}");
    let mut api = cmd(bin.join(API.binary), &[]);
    api.env("APP_ENV", "local")
        .env("GENESYS_BASE_URL", format!("http://{mock_address}"))
        .env("PORT", &api_port)
        .env("APP__SERVER__HOST", "127.0.0.1")
        .env("FRONTEND_ORIGIN", ORIGIN)
        // The emulator's limit is off: an allowance far above any run's pace, all of it open to
        // the one client that sends everything, so no request is refused for the budget.
        .env("APP__GENESYS__REQUESTS_PER_MINUTE", "1000000")
        .env("APP__GENESYS__MAX_CLIENT_SHARE", "1")
        .env("RUST_LOG", "warn");
    configure(&mut api, &api_address);
    services.start(API.service, &mut api)?;
    services.wait_until_ok(API.service, &api_address, "/readyz")?;
    Ok(Stack {
        api: api_address,
        _services: services,
    })
}

/// `target/debug`, holding both binaries no older than their sources. `cargo xtask ci` has built
/// them with the tests, so only a stale or missing binary costs a build here.
fn debug_binaries() -> Result<PathBuf> {
    let bin = target_dir().join("debug");
    let built = [MOCK.binary, API.binary]
        .map(|name| modified(&bin.join(name)))
        .into_iter()
        .min()
        .flatten();
    let sources = newest_source();
    if built.is_none_or(|built| sources.is_some_and(|newest| newest > built)) {
        process::run(&mut cmd("cargo", &["build", "-p", "mock-genesys", "-p", "api"]))?;
    }
    Ok(bin)
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// When the newest input of the two binaries changed: manifests, lock file, sources, build scripts.
fn newest_source() -> Option<SystemTime> {
    let root = root();
    let mut newest = [root.join("Cargo.toml"), root.join("Cargo.lock")]
        .iter()
        .filter_map(|p| modified(p))
        .max();
    for package in [
        "crates/domain",
        "crates/jose",
        "crates/genesys-client",
        "crates/api",
        "mock-genesys",
    ] {
        let package = root.join(package);
        newest = newest.max(modified(&package.join("Cargo.toml")));
        newest = newest.max(modified(&package.join("build.rs")));
        newest = newest.max(newest_in(&package.join("src")));
    }
    newest
}

fn newest_in(dir: &Path) -> Option<SystemTime> {
    let entries = fs::read_dir(dir).ok()?;
    entries
        .filter_map(std::result::Result::ok)
        .filter_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                newest_in(&path)
            } else {
                modified(&path)
            }
        })
        .max()
}
