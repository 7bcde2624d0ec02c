//! `up`, `down` and `e2e`: the full stack in containers through docker-compose.

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::image::{self, API, DEMO, MOCK};
use crate::process::{self, Result, cmd};

/// Compose project name, so the stack is found whatever the checkout's directory is called.
const PROJECT: &str = "guest-token";
/// The API's image again, in web-messaging mode (`guest.upstream = "web-messaging"`).
pub const MESSAGING_API_SERVICE: &str = "api-messaging";
/// Where the messaging API is published (compose) or listens (`cargo xtask dev`).
pub const MESSAGING_API_PORT: u16 = 3001;
/// Every service of `docker-compose.yml`, in start-up order.
const SERVICES: [&str; 4] = [MOCK.service, API.service, MESSAGING_API_SERVICE, DEMO.service];

/// The example request of the README, against the published API port.
fn example_curl(api_base: &str) -> String {
    format!(
        "curl -i -X POST {api_base}/api/webchat/guest-token -H 'Content-Type: application/json' \
         -H 'Origin: http://localhost:8080' \
         -d '{{\"queueId\":\"a1b2c3d4-e5f6-7890-abcd-ef1234567890\",\"language\":\"en-us\",\"customerId\":\"cust_99887766\"}}'"
    )
}

/// Prints where the demo page, the API and the emulator answer and the README's example request,
/// under `heading`.
pub fn print_endpoints(heading: &str) {
    println!("\n{heading}");
    println!(
        "  demo           http://localhost:{} (open it in a browser: a guest token, and a chat after the \
         stand-in login, which is for local use only)",
        DEMO.port
    );
    println!(
        "  API            http://localhost:{} (/livez, /readyz, /metrics, /openapi.json)",
        API.port
    );
    println!("  messaging API  http://localhost:{MESSAGING_API_PORT} (the API in web-messaging mode)");
    println!(
        "  emulator       http://localhost:{} (/__admin/health, /__admin/requests)",
        MOCK.port
    );
    println!(
        "\nTry:\n  {}\n",
        example_curl(&format!("http://localhost:{}", API.port))
    );
}

/// Fails with a clear message, Docker's own reason included, unless a Docker engine answers.
pub fn require_docker() -> Result {
    let mut info = Command::new("docker");
    info.args(["info", "--format", "{{.ServerVersion}}"]);
    eprintln!("$ {}", process::display(&info));
    let reason = match info.output() {
        Ok(output) if output.status.success() => return Ok(()),
        Ok(output) => String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        Err(e) => format!("the docker CLI cannot run: {e}"),
    };
    Err(format!(
        "no Docker engine answers ({reason}): start dockerd or point DOCKER_HOST at one"
    ))
}

/// `docker compose` (v2) if the plugin exists, else `docker-compose` (v1), with the project name set.
fn compose(args: &[&str]) -> Result<Command> {
    // Asked once per run: each probe starts a process.
    static PROGRAM: OnceLock<Option<&'static [&'static str]>> = OnceLock::new();
    let program = PROGRAM.get_or_init(|| {
        if process::succeeds(Command::new("docker").args(["compose", "version"])) {
            Some(&["docker", "compose"])
        } else if process::succeeds(Command::new("docker-compose").arg("version")) {
            Some(&["docker-compose"])
        } else {
            None
        }
    });
    let Some((first, rest)) = program.and_then(|p| p.split_first()) else {
        return Err(
            "neither `docker compose` nor `docker-compose` is installed: apt-get install -y docker-compose"
                .into(),
        );
    };
    let mut command = cmd(first, rest);
    command.args(["-p", PROJECT]).args(args);
    Ok(command)
}

/// The `up` task: current images, a fresh stack, every service healthy, then how to call it.
pub fn up() -> Result {
    require_docker()?;
    image::build_release()?;
    image::ensure_current()?;
    // docker-compose 1.29 on a newer engine fails when it *recreates* containers: always start fresh.
    down()?;
    process::run(&mut compose(&["up", "-d"])?)?;
    if let Err(e) = wait_until_healthy() {
        let _ = process::run(&mut compose(&["logs", "--tail", "50"])?);
        return Err(e);
    }
    print_endpoints("The stack is up:");
    println!("Stop it with `cargo xtask down`.");
    Ok(())
}

/// The `down` task: removes the stack's containers, networks and volumes.
pub fn down() -> Result {
    process::run(&mut compose(&["down", "--volumes", "--remove-orphans"])?)
}

fn wait_until_healthy() -> Result {
    for service in SERVICES {
        let id = process::read(&mut compose(&["ps", "-q", service])?)?;
        if id.is_empty() {
            return Err(format!("compose started no container for {service}"));
        }
        eprintln!("waiting for {service} to be healthy");
        process::wait_for(service, Duration::from_secs(90), || {
            let state = process::read_quietly(Command::new("docker").args([
                "inspect",
                "-f",
                "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
                &id,
            ]))?;
            match state.as_str() {
                "running healthy" => Ok(true),
                "running starting" => Ok(false),
                other => Err(format!("{service} is {other:?} instead of healthy")),
            }
        })?;
    }
    Ok(())
}

/// Brings the stack down when dropped: on success, on error and while unwinding from a panic.
struct StackGuard;

impl Drop for StackGuard {
    fn drop(&mut self) {
        if let Err(e) = down() {
            eprintln!("xtask: could not bring the stack down: {e}");
        }
    }
}

/// The `e2e` task: `up`, the contract suite through the published ports and the demo page in a
/// browser, then `down` whatever happened.
pub fn e2e() -> Result {
    process::catch_interrupt();
    let _stack = StackGuard;
    up()?;
    let api_url = format!("http://localhost:{}", API.port);
    let mock_url = format!("http://localhost:{}", MOCK.port);
    let demo_url = format!("http://localhost:{}", DEMO.port);
    // `--workspace`: the same dependency features as `cargo test --workspace`, so `ci` builds nothing anew.
    let mut tests = cmd(
        "cargo",
        &[
            "test",
            "--workspace",
            "--test",
            "compose",
            "--test",
            "browser",
            "--",
            "--ignored",
        ],
    );
    tests
        .env("CONTRACT_API_URL", &api_url)
        .env("CONTRACT_MOCK_URL", &mock_url)
        .env("CONTRACT_DEMO_URL", &demo_url);
    process::run(&mut tests)
}
