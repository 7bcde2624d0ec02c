//! `ci`: everything CI runs, in order, stopping at the first failure.
//!
//! One debug build and one release build. Every debug cargo invocation selects the whole workspace:
//! cargo resolves dependency features per selection, so `--exclude contract-tests` followed by
//! `-p contract-tests` would build tokio, rustls, awc and ~90 other crates twice.

use crate::process::{self, Result, cmd};
use crate::{compose, deny, image, oidc, schemathesis};

/// The `ci` task: lock file, dependency policy, format, lints, test build, images, all tests
/// (unit, integration and containers), schemathesis and the OpenID Connect check against the
/// running API, then e2e against the compose stack.
pub fn ci() -> Result {
    // Before the long builds: the last steps need a Docker engine.
    compose::require_docker()?;
    // Fails if Cargo.lock is out of date with the manifests (and fetches everything once).
    process::run(&mut cmd("cargo", &["fetch", "--locked"]))?;
    // Reads only the lock file and the manifests: a refused dependency fails before any build.
    deny::deny()?;
    process::run(&mut cmd("cargo", &["fmt", "--all", "--", "--check"]))?;
    process::run(&mut cmd(
        "cargo",
        &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"],
    ))?;
    // Compile errors surface before the release build; the container tests need the images to run.
    process::run(&mut cmd("cargo", &["test", "--workspace", "--no-run"]))?;
    image::image()?;
    process::run(&mut cmd("cargo", &["test", "--workspace"]))?;
    // Runs the debug binaries the tests just built.
    schemathesis::schemathesis(&[])?;
    oidc::oidc()?;
    compose::e2e()
}
