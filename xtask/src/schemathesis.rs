//! `schemathesis`: the running API, tested against its own OpenAPI document.
//!
//! The emulator (rate limit off) and the API (per-IP limit far above the run's pace) run as local
//! processes from the debug binaries, on free 127.0.0.1 ports. schemathesis, pinned with everything
//! it pulls in by `xtask/schemathesis/requirements.txt`, runs from a virtual environment under
//! `target/` (never the system Python) with a fixed seed, a bounded number of examples per
//! operation and every check; any failure fails the task.

use std::fs;

use crate::local::{self, ORIGIN};
use crate::process::{self, Result, cmd, root, target_dir};
use crate::{http, python};

/// The seed of every run unless `--seed` says otherwise, so CI sees the same cases each time.
const DEFAULT_SEED: u64 = 20_261_201;
/// Examples per operation unless `--max-examples` says otherwise: enough to reach every field's
/// edge cases, few enough for about ten seconds of testing.
const DEFAULT_MAX_EXAMPLES: u32 = 300;
const MAX_MAX_EXAMPLES: u32 = 10_000;

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
    let requirements = root().join("xtask/schemathesis/requirements.txt");
    let venv = python::virtual_environment(&work, &requirements, "schemathesis")?;
    let stack = local::start(|api, _| {
        // One client sends everything: the limiter stays on, far above the run's pace.
        api.env("APP__RATE_LIMIT__PER_SECOND", "10000")
            .env("APP__RATE_LIMIT__BURST", "100000");
    })?;
    let api_address = &stack.api;

    // From a file rather than the URL: schemathesis leaves out the operation that serves the
    // document it was loaded from, and /openapi.json is one of the routes to test.
    let document = work.join("openapi.json");
    let served = http::request(api_address, "GET", "/openapi.json", &[], "")
        .map_err(|e| format!("GET http://{api_address}/openapi.json failed: {e}"))?;
    if served.status != 200 {
        return Err(format!(
            "GET http://{api_address}/openapi.json answered {}",
            served.status
        ));
    }
    fs::write(&document, &served.body).map_err(|e| format!("{}: {e}", document.display()))?;

    let (seed, max_examples) = (run.seed.to_string(), run.max_examples.to_string());
    // An origin the API allows: a generated `Origin` would be refused (403) before the body is
    // read, hiding every body check behind it; refused origins are covered by the API's tests.
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
}
