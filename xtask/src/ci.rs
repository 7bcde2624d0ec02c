//! `ci`: everything CI runs, in order, stopping at the first failure.

use crate::compose;
use crate::image;
use crate::process::{self, Result, cmd};

/// The `ci` task: lock file, format, lints, unit and integration tests, images, container tests, e2e.
pub fn ci() -> Result {
    // Before the long builds: the last steps need a Docker engine.
    compose::require_docker()?;
    // Fails if Cargo.lock is out of date with the manifests (and fetches everything once).
    process::run(&mut cmd("cargo", &["fetch", "--locked"]))?;
    process::run(&mut cmd("cargo", &["fmt", "--all", "--", "--check"]))?;
    process::run(&mut cmd(
        "cargo",
        &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"],
    ))?;
    process::run(&mut cmd(
        "cargo",
        &["test", "--workspace", "--exclude", "contract-tests"],
    ))?;
    image::image()?;
    process::run(&mut cmd("cargo", &["test", "-p", "contract-tests"]))?;
    compose::e2e()
}
