//! The contract suite against the images `cargo xtask image` builds, each test on its own private
//! network with its own emulator and API (random names, random host ports), so tests run in parallel.

use std::process::Command;
use std::time::Duration;

use contract_tests::{
    ALLOWED_ORIGIN, Endpoints, UPSTREAM_GUESTS_PATH, UPSTREAM_TOKEN_PATH, upstream_statuses,
};
use testcontainers::core::{AccessMode, Healthcheck, IntoContainerPort, Mount, WaitFor};
use testcontainers::{ContainerAsync, GenericImage, ImageExt, runners::AsyncRunner};

const MOCK_PORT: u16 = 8081;
const API_PORT: u16 = 3000;
const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);

/// The committed development keys that `config/local.toml` names. The image carries its config/
/// but never a key, so the local environment needs them mounted, as docker-compose.yml does.
fn dev_keys() -> Mount {
    let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/dev-keys");
    let keys = std::fs::canonicalize(keys).expect("config/dev-keys exists in the repository");
    Mount::bind_mount(keys.to_string_lossy(), "/config/dev-keys").with_access_mode(AccessMode::ReadOnly)
}

/// One emulator and one API on a private network; removed (network included) when dropped.
struct Stack {
    mock: ContainerAsync<GenericImage>,
    api: ContainerAsync<GenericImage>,
    endpoints: Endpoints,
}

fn require_image(name: &str) {
    let found = Command::new("docker")
        .args(["image", "inspect", &format!("{name}:latest")])
        .output()
        .expect("the docker CLI runs")
        .status
        .success();
    assert!(
        found,
        "image {name}:latest is missing: run `cargo xtask image` first"
    );
}

/// When Docker last started the container: a restart changes it.
fn started_at(container: &ContainerAsync<GenericImage>) -> String {
    let output = Command::new("docker")
        .args(["inspect", "-f", "{{.State.StartedAt}}", container.id()])
        .output()
        .expect("the docker CLI runs");
    assert!(output.status.success(), "docker inspect {}", container.id());
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The image's own health check, polled often so that start-up is not held up by Docker's interval.
fn fast_health_check(binary: &str, extra: &[&str]) -> Healthcheck {
    let mut command = vec![binary.to_owned(), "healthcheck".to_owned()];
    command.extend(extra.iter().map(|s| s.to_string()));
    Healthcheck::cmd(command)
        .with_interval(Duration::from_millis(250))
        .with_timeout(Duration::from_secs(3))
        .with_retries(240)
}

async fn host_url(container: &ContainerAsync<GenericImage>, port: u16) -> String {
    let host = container.get_host().await.expect("the container's host");
    let port = container
        .get_host_port_ipv4(port.tcp())
        .await
        .expect("a published port");
    format!("http://{host}:{port}")
}

async fn start_stack() -> Stack {
    require_image("mock-genesys");
    require_image("guest-token-api");
    let suffix = format!("{:016x}", fastrand::u64(..));
    let network = format!("contract-{suffix}");
    let mock_name = format!("mock-genesys-{suffix}");

    let mock = GenericImage::new("mock-genesys", "latest")
        .with_exposed_port(MOCK_PORT.tcp())
        .with_wait_for(WaitFor::healthcheck())
        .with_network(&network)
        .with_container_name(&mock_name)
        .with_health_check(fast_health_check("/mock-genesys", &[]))
        .with_startup_timeout(STARTUP_TIMEOUT)
        .start()
        .await
        .expect("the emulator starts and turns healthy");
    // Healthy means ready: it holds a Genesys access token.
    let api = GenericImage::new("guest-token-api", "latest")
        .with_exposed_port(API_PORT.tcp())
        .with_wait_for(WaitFor::healthcheck())
        .with_network(&network)
        .with_container_name(format!("guest-token-api-{suffix}"))
        .with_env_var("APP_ENV", "local")
        .with_mount(dev_keys())
        .with_env_var("GENESYS_BASE_URL", format!("http://{mock_name}:{MOCK_PORT}"))
        .with_env_var("FRONTEND_ORIGIN", ALLOWED_ORIGIN)
        .with_health_check(fast_health_check("/guest-token-api", &["--ready"]))
        .with_startup_timeout(STARTUP_TIMEOUT)
        .start()
        .await
        .expect("the API starts and turns ready");
    let endpoints = Endpoints {
        api: host_url(&api, API_PORT).await,
        mock: host_url(&mock, MOCK_PORT).await,
    };
    Stack { mock, api, endpoints }
}

#[actix_rt::test]
async fn issues_a_guest_token_with_no_store_caching() {
    let stack = start_stack().await;
    contract_tests::issues_a_guest_token(&stack.endpoints).await;
}

#[actix_rt::test]
async fn answers_preflights_only_for_the_allowed_origin() {
    let stack = start_stack().await;
    contract_tests::answers_preflights_only_for_the_allowed_origin(&stack.endpoints).await;
}

#[actix_rt::test]
async fn refuses_a_disallowed_origin_before_calling_genesys() {
    let stack = start_stack().await;
    contract_tests::refuses_a_disallowed_origin_before_calling_genesys(&stack.endpoints).await;
}

#[actix_rt::test]
async fn waits_out_a_rate_limit_from_genesys() {
    let stack = start_stack().await;
    contract_tests::waits_out_a_rate_limit_from_genesys(&stack.endpoints).await;
}

#[actix_rt::test]
async fn recovers_from_a_revoked_access_token() {
    let stack = start_stack().await;
    contract_tests::recovers_from_a_revoked_access_token(&stack.endpoints).await;
}

#[actix_rt::test]
async fn recovers_from_an_emulator_restart_without_restarting_itself() {
    let mut stack = start_stack().await;
    contract_tests::issues_a_guest_token(&stack.endpoints).await;
    let api_started = started_at(&stack.api);
    let mock_started = started_at(&stack.mock);

    stack.mock.stop().await.expect("the emulator stops");
    stack.mock.start().await.expect("the emulator starts again");
    assert_ne!(
        started_at(&stack.mock),
        mock_started,
        "the emulator was restarted"
    );
    // Docker may publish the port anew on restart.
    stack.endpoints.mock = host_url(&stack.mock, MOCK_PORT).await;
    contract_tests::wait_for_emulator(&stack.endpoints, STARTUP_TIMEOUT).await;

    // The restarted emulator signs with a new key, so it rejects the API's access token: the API
    // must log in again on its own and retry.
    contract_tests::issues_a_guest_token(&stack.endpoints).await;
    assert_eq!(
        upstream_statuses(&stack.endpoints, UPSTREAM_GUESTS_PATH).await,
        [401, 200],
        "the old token refused once, then the call retried"
    );
    assert_eq!(
        upstream_statuses(&stack.endpoints, UPSTREAM_TOKEN_PATH).await,
        [200],
        "one new login"
    );
    assert_eq!(started_at(&stack.api), api_started, "the API was not restarted");
}
