//! `cargo xtask <task>`: the project's development tasks as one small, dependency-free binary.
//!
//! Every task prints each command before it runs it and stops at the first failure with a message
//! saying what failed, exiting non-zero.

mod bench;
mod ci;
mod compose;
mod deny;
mod dev;
mod http;
#[cfg(test)]
mod hygiene;
mod image;
mod local;
mod oidc;
mod process;
mod python;
mod schemathesis;

use std::process::ExitCode;

const HELP: &str = "\
Usage: cargo xtask <task> [args]

Tasks:
  ci           cargo-deny, fmt check, clippy, test build, images, unit + integration + container
               tests, schemathesis, oidc, e2e
  mock [args]  run the Genesys emulator: cargo run -p mock-genesys -- [args]
  dev          emulator + API + demo page as local processes (APP_ENV=local), until Ctrl-C
  image        release build, then the images guest-token-api, mock-genesys and guest-token-demo (FROM scratch)
  up           the stack in containers (docker-compose.yml), waits until healthy
  down         removes the stack's containers, networks and volumes
  e2e          up, the contract suite through the published ports, down
  bench        API vs emulator on 127.0.0.1, interleaved rounds, medians and ratios, results in
               bench/results/ [--quick] [--profile | --only overhead,latency,memory,allowance,
               churn,messaging,profile]
  deny         cargo-deny: licences, advisories (RustSec snapshot in ../shared), bans, sources
  schemathesis the running API against its OpenAPI document [--seed N] [--max-examples N]
  oidc         the API's OpenID Connect provider checked by Authlib and joserfc (Python)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((task, rest)) = args.split_first() else {
        eprintln!("{HELP}");
        return ExitCode::from(2);
    };
    let no_arguments = |run: fn() -> process::Result| {
        if rest.is_empty() {
            run()
        } else {
            Err(format!("`{task}` takes no arguments: {rest:?}"))
        }
    };
    let outcome = match task.as_str() {
        "ci" => no_arguments(ci::ci),
        "mock" => dev::mock(rest),
        "dev" => no_arguments(dev::dev),
        "image" => no_arguments(image::image),
        "up" => no_arguments(compose::up),
        "down" => no_arguments(compose::down),
        "e2e" => no_arguments(compose::e2e),
        "bench" => bench::bench(rest),
        "deny" => no_arguments(deny::deny),
        "schemathesis" => schemathesis::schemathesis(rest),
        "oidc" => no_arguments(oidc::oidc),
        "help" | "-h" | "--help" => {
            println!("{HELP}");
            Ok(())
        }
        other => {
            eprintln!("xtask: unknown task {other:?}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: error: {message}");
            ExitCode::FAILURE
        }
    }
}
