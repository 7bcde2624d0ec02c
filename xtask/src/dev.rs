//! `mock` and `dev`: the emulator alone, or the whole stack as local processes (no Docker).

use std::time::Duration;

use crate::compose::{MESSAGING_API_PORT, MESSAGING_API_SERVICE, print_endpoints};
use crate::image::{API, DEMO, MOCK};
use crate::process::{self, Result, Services, cmd, root, target_dir};

/// The `mock` task: `cargo run -p mock-genesys -- <args>`.
pub fn mock(args: &[String]) -> Result {
    // Ctrl-C reaches the emulator, which stops gracefully; xtask waits for it instead of dying first.
    process::catch_interrupt();
    let mut command = cmd("cargo", &["run", "-p", "mock-genesys", "--"]);
    command.args(args);
    process::run(&mut command)
}

/// The `dev` task: debug build, emulator, API against it (`APP_ENV=local`) twice (the second in
/// web-messaging mode), the demo page calling both, until Ctrl-C.
pub fn dev() -> Result {
    process::catch_interrupt();
    let mock_address = format!("127.0.0.1:{}", MOCK.port);
    let api_address = format!("127.0.0.1:{}", API.port);
    let messaging_api_address = format!("127.0.0.1:{MESSAGING_API_PORT}");
    let demo_address = format!("127.0.0.1:{}", DEMO.port);
    for address in [&mock_address, &api_address, &messaging_api_address, &demo_address] {
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
    // The same configuration in web-messaging mode; its codes are redeemed at the first instance,
    // the issuer (http://localhost:3000), which holds the same signing key.
    let mut messaging_api = cmd(bin.join(API.binary), &[]);
    messaging_api
        .env("APP_ENV", "local")
        .env("PORT", MESSAGING_API_PORT.to_string())
        .env("APP__GUEST__UPSTREAM", "web-messaging");
    services.start(MESSAGING_API_SERVICE, &mut messaging_api)?;
    services.wait_until_ok(MESSAGING_API_SERVICE, &messaging_api_address, "/readyz")?;
    // Its defaults are the local ones: the site in the source tree, the APIs on :3000 and :3001, the
    // emulator on :8081; config/local.toml allows its origin and trusts the stand-in login's key
    // (local use only).
    let key = root().join("config/dev-keys/site-session-hs256.key");
    let mut demo = cmd(bin.join(DEMO.binary), &[]);
    demo.arg("--site-session-key-file").arg(key);
    services.start(DEMO.service, &mut demo)?;
    services.wait_until_ok(DEMO.service, &demo_address, "/healthz")?;

    print_endpoints("Running (Ctrl-C stops them all):");
    while !process::interrupted() {
        services.check_running()?;
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("\nstopping");
    Ok(())
}
