//! `schemathesis`: the running API, tested against its own OpenAPI document.
//!
//! The emulator (rate limit off) and the API (per-IP limit far above the run's pace) run as local
//! processes from the debug binaries, on free 127.0.0.1 ports. schemathesis, pinned with everything
//! it pulls in by `xtask/schemathesis/requirements.txt`, runs from a virtual environment under
//! `target/` (never the system Python) with a fixed seed, a bounded number of examples per
//! operation and every check; any failure fails the task.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::http;
use crate::image::{API, MOCK};
use crate::process::{self, Result, Services, cmd, free_port, root, target_dir};

/// The seed of every run unless `--seed` says otherwise, so CI sees the same cases each time.
const DEFAULT_SEED: u64 = 20_261_201;
/// Examples per operation unless `--max-examples` says otherwise: enough to reach every field's
/// edge cases, few enough for about ten seconds of testing.
const DEFAULT_MAX_EXAMPLES: u32 = 300;
const MAX_MAX_EXAMPLES: u32 = 10_000;
/// The page origin the requests claim, one the API is configured to allow. A generated `Origin`
/// would be refused (403) before the body is read, hiding every body check behind it; refused
/// origins are covered by the API's integration tests.
const ORIGIN: &str = "http://localhost:8080";

/// Seed and size of one run.
#[derive(Debug, PartialEq)]
struct Run {
    seed: u64,
    max_examples: u32,
}

impl Run {
    fn from_args(args: &[String]) -> Result<Self> {
        let mut run = Run {
            seed: DEFAULT_SEED,
            max_examples: DEFAULT_MAX_EXAMPLES,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = |args: &mut std::slice::Iter<'_, String>| {
                args.next()
                    .ok_or_else(|| format!("schemathesis: {flag} needs a value"))
                    .cloned()
            };
            match flag.as_str() {
                "--seed" => {
                    let raw = value(&mut args)?;
                    run.seed = raw
                        .parse()
                        .map_err(|_| format!("schemathesis: --seed must be a whole number, not {raw:?}"))?;
                }
                "--max-examples" => {
                    let raw = value(&mut args)?;
                    run.max_examples = raw
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_MAX_EXAMPLES).contains(n))
                        .ok_or_else(|| {
                            format!(
                                "schemathesis: --max-examples must be a whole number from 1 to {MAX_MAX_EXAMPLES}, not {raw:?}"
                            )
                        })?;
                }
                other => {
                    return Err(format!(
                        "schemathesis: unknown argument {other:?} (--seed N, --max-examples N)"
                    ));
                }
            }
        }
        Ok(run)
    }
}

/// The `schemathesis` task.
pub fn schemathesis(args: &[String]) -> Result {
    let run = Run::from_args(args)?;
    process::catch_interrupt();
    let work = target_dir().join("schemathesis");
    let venv = virtual_environment(&work)?;
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
        // One client sends everything: the limiter stays on, far above the run's pace.
        .env("APP__RATE_LIMIT__PER_SECOND", "10000")
        .env("APP__RATE_LIMIT__BURST", "100000")
        .env("RUST_LOG", "warn");
    services.start(API.service, &mut api)?;
    services.wait_until_ok(API.service, &api_address, "/readyz")?;

    // From a file rather than the URL: schemathesis leaves out the operation that serves the
    // document it was loaded from, and /openapi.json is one of the routes to test.
    let document = work.join("openapi.json");
    let served = http::request(&api_address, "GET", "/openapi.json", &[], "")
        .map_err(|e| format!("GET http://{api_address}/openapi.json failed: {e}"))?;
    if served.status != 200 {
        return Err(format!(
            "GET http://{api_address}/openapi.json answered {}",
            served.status
        ));
    }
    fs::write(&document, &served.body).map_err(|e| format!("{}: {e}", document.display()))?;

    let (seed, max_examples) = (run.seed.to_string(), run.max_examples.to_string());
    let origin = format!("Origin: {ORIGIN}");
    let mut schemathesis = cmd(venv.join("bin").join("schemathesis"), &[]);
    schemathesis
        .arg("--config-file")
        .arg(root().join("xtask/schemathesis/schemathesis.toml"))
        .arg("run")
        .arg(&document)
        .arg("--url")
        .arg(format!("http://{api_address}"))
        .args(["--checks", "all"])
        .args(["--seed", seed.as_str(), "--max-examples", max_examples.as_str()])
        // One worker and no example database: the same seed gives the same cases.
        .args(["--workers", "1", "--generation-database", "none"])
        .arg("--generation-unique-inputs")
        .args(["--header", origin.as_str()])
        .args(["--request-timeout", "10", "--no-color"])
        // Hypothesis and schemathesis keep their caches in the working directory.
        .current_dir(&work);
    process::run(&mut schemathesis)
        .map_err(|e| format!("{e}: schemathesis found failures (seed {seed}, see above)"))
}

/// `target/schemathesis/venv` with the pinned requirements, reused while they are unchanged.
fn virtual_environment(work: &Path) -> Result<PathBuf> {
    let venv = work.join("venv");
    let requirements = root().join("xtask/schemathesis/requirements.txt");
    let wanted = fs::read_to_string(&requirements).map_err(|e| format!("{}: {e}", requirements.display()))?;
    // A copy of the requirements it was built from, written once the install succeeded.
    let stamp = venv.join("requirements.installed.txt");
    if fs::read_to_string(&stamp).is_ok_and(|built| built == wanted)
        && venv.join("bin").join("schemathesis").is_file()
    {
        eprintln!("schemathesis: reusing {}", venv.display());
        return Ok(venv);
    }
    if !process::on_path("python3") {
        return Err("python3 is not installed: apt-get install -y python3 python3-venv".into());
    }
    if venv.exists() {
        // Built from other requirements, or an install that did not finish.
        fs::remove_dir_all(&venv).map_err(|e| format!("{}: {e}", venv.display()))?;
    }
    fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
    process::run(cmd("python3", &["-m", "venv"]).arg(&venv))
        .map_err(|e| format!("{e}: the venv module is missing? apt-get install -y python3-venv"))?;
    process::run(
        cmd(venv.join("bin").join("python"), &["-m", "pip", "install"])
            .args(["--disable-pip-version-check", "--quiet", "--no-input"])
            // Wheels only: no package's own build code runs here.
            .args(["--only-binary", ":all:", "--requirement"])
            .arg(&requirements),
    )?;
    fs::write(&stamp, wanted).map_err(|e| format!("{}: {e}", stamp.display()))?;
    Ok(venv)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn runs_are_seeded_and_bounded() {
        assert_eq!(
            Run::from_args(&[]).unwrap(),
            Run {
                seed: DEFAULT_SEED,
                max_examples: DEFAULT_MAX_EXAMPLES
            }
        );
        assert_eq!(
            Run::from_args(&args(&["--seed", "7", "--max-examples", "20"])).unwrap(),
            Run {
                seed: 7,
                max_examples: 20
            }
        );
        assert!(Run::from_args(&args(&["--max-examples", "0"])).is_err());
        assert!(Run::from_args(&args(&["--max-examples", "10001"])).is_err());
        assert!(Run::from_args(&args(&["--seed", "-1"])).is_err());
        assert!(Run::from_args(&args(&["--seed"])).is_err());
        assert!(Run::from_args(&args(&["--workers", "2"])).is_err());
    }

    #[test]
    fn the_pinned_requirements_pin_every_package_exactly() {
        let requirements = fs::read_to_string(root().join("xtask/schemathesis/requirements.txt")).unwrap();
        let pins: Vec<&str> = requirements
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert!(pins.iter().any(|p| p.starts_with("schemathesis==")), "{pins:?}");
        for pin in pins {
            let (name, version) = pin
                .split_once("==")
                .unwrap_or_else(|| panic!("{pin}: not pinned with =="));
            assert!(
                !name.is_empty() && !version.is_empty() && !version.contains([',', ';', '*', ' ']),
                "{pin}: one exact version"
            );
        }
    }
}
