//! `mock` and `dev`: the emulator alone, or the whole stack as local processes (no Docker).

use std::time::Duration;

use crate::compose::print_endpoints;
use crate::image::{API, DEMO, MOCK};
use crate::process::{self, Result, Services, cmd, target_dir};

/// The `mock` task: `cargo run -p mock-genesys -- <args>`.
pub fn mock(args: &[String]) -> Result {
    // Ctrl-C reaches the emulator, which stops gracefully; xtask waits for it instead of dying first.
    process::catch_interrupt();
    let mut command = cmd("cargo", &["run", "-p", "mock-genesys", "--"]);
    command.args(args);
    process::run(&mut command)
}

/// The `dev` task: debug build, emulator, API against it (`APP_ENV=local`), the demo page calling
/// the API, until Ctrl-C.
pub fn dev() -> Result {
    process::catch_interrupt();
    let mock_address = format!("127.0.0.1:{}", MOCK.port);
    let api_address = format!("127.0.0.1:{}", API.port);
    let demo_address = format!("127.0.0.1:{}", DEMO.port);
    for address in [&mock_address, &api_address, &demo_address] {
        // Otherwise the readiness checks below would be answered by someone else.
        if crate::http::is_listening(address) {
            return Err(format!(
                "something already listens on {address} (the compose stack? `cargo xtask down`)"
            ));
        }
    }
    process::run(&mut cmd(
        "cargo",
        &["build", "-p", "mock-genesys", "-p", "api", "-p", "demo"],
    ))?;
    let bin = target_dir().join("debug");
    let mut services = Services::default();
    // The emulator reads config/mock-genesys.toml (port 8081), which config/local.toml points at.
    services.start(MOCK.service, &mut cmd(bin.join(MOCK.binary), &[]))?;
    services.wait_until_ok(MOCK.service, &mock_address, "/__admin/health")?;
    let mut api = cmd(bin.join(API.binary), &[]);
    api.env("APP_ENV", "local");
    services.start(API.service, &mut api)?;
    services.wait_until_ok(API.service, &api_address, "/readyz")?;
    // Its defaults are the local ones: the site in the source tree, the API on :3000, the emulator on
    // :8081; config/local.toml allows its origin.
    services.start(DEMO.service, &mut cmd(bin.join(DEMO.binary), &[]))?;
    services.wait_until_ok(DEMO.service, &demo_address, "/healthz")?;

    print_endpoints("Running (Ctrl-C stops them all):");
    while !process::interrupted() {
        services.check_running()?;
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("\nstopping");
    Ok(())
}
