//! Instructions per request of the API, counted by callgrind: a fixed number of requests on one
//! kept-alive connection, minus an idle stretch as long, and the functions that cost the most.
//!
//! `perf stat -e instructions` needs hardware counters that virtual machines often lack;
//! callgrind counts the same on any machine, so before/after figures compare.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::Plan;
use super::client::Connection;
use super::report::{Section, Table, number};
use super::stack::{self, UNLIMITED, guest_token_request};
use crate::image::API;
use crate::process::{self, Result, Services, cmd, free_port, target_dir};

/// Requests before the count starts (connection pools, caches, the token).
const WARM_UP_REQUESTS: u32 = 200;
/// Functions listed.
const TOP: usize = 25;
/// Crates whose functions are on the guest-token path (the runtime's own are left out).
const REQUEST_PATH: [&str; 7] = [
    "api::",
    "genesys_client::",
    "domain::",
    "jose::",
    "awc::",
    "actix_http::",
    "actix_web::",
];

/// The release API with its symbols (the release profile strips them), in a target directory of
/// its own so that neither build undoes the other.
fn build_with_symbols() -> Result<PathBuf> {
    let target = target_dir().join("bench-symbols");
    process::run(
        cmd("cargo", &["build", "--release", "-p", "api"])
            .env("CARGO_TARGET_DIR", &target)
            .env("CARGO_PROFILE_RELEASE_STRIP", "none"),
    )?;
    Ok(target.join("release").join(API.binary))
}

/// One callgrind_annotate line: inclusive instructions and the function.
#[derive(Debug, PartialEq)]
pub struct Cost {
    /// Instructions (Ir).
    pub instructions: u64,
    /// `file:function [object]` as callgrind_annotate prints it.
    pub function: String,
}

/// The `PROGRAM TOTALS` or `summary:` figure of a callgrind report or dump.
pub fn total_instructions(text: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let line = line.trim();
        if let Some(total) = line
            .strip_prefix("summary:")
            .or_else(|| line.strip_prefix("totals:"))
        {
            total.split_whitespace().next()?.parse().ok()
        } else if line.ends_with("PROGRAM TOTALS") {
            line.split_whitespace().next()?.replace(',', "").parse().ok()
        } else {
            None
        }
    })
}

/// The function lines of `callgrind_annotate --inclusive=yes` (`12,345 (67.8%)  file:function`).
pub fn annotated_costs(text: &str) -> Vec<Cost> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let (number, rest) = line.split_once(char::is_whitespace)?;
            let instructions = number.replace(',', "").parse().ok()?;
            let rest = rest.trim_start();
            let function = match rest.strip_prefix('(') {
                Some(after) => after.split_once(')')?.1.trim(),
                None => rest,
            };
            (!function.is_empty() && function != "PROGRAM TOTALS").then(|| Cost {
                instructions,
                function: function.to_owned(),
            })
        })
        .collect()
}

/// A function without callgrind_annotate's unknown file (`???:`) and object (` [/path/binary]`).
pub fn short_name(function: &str) -> &str {
    let function = function.strip_prefix("???:").unwrap_or(function);
    match function.rfind(" [") {
        Some(at) if function.ends_with(']') => &function[..at],
        _ => function,
    }
}

/// Runs `callgrind_control <flag> <pid>`.
fn control(flag: &str, pid: u32) -> Result {
    process::read(&mut cmd("callgrind_control", &[flag, &pid.to_string()])).map(drop)
}

/// The newest dump callgrind wrote in `directory`, which holds more than `before` dumps.
fn newest_dump(directory: &Path, before: usize) -> Result<PathBuf> {
    let mut dumps: Vec<PathBuf> = fs::read_dir(directory)
        .map_err(|e| format!("{}: {e}", directory.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("callgrind.out."))
        })
        .collect();
    if dumps.len() <= before {
        return Err(format!("callgrind wrote no dump in {}", directory.display()));
    }
    dumps.sort_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).ok());
    Ok(dumps.pop().expect("checked above"))
}

fn dump_total(path: &Path) -> Result<u64> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    total_instructions(&text).ok_or_else(|| format!("{}: no instruction total", path.display()))
}

/// How the profiled API logs.
struct Logging {
    /// A name for the dumps and the figures.
    key: &'static str,
    /// Its settings over the scenario's.
    env: &'static [(&'static str, &'static str)],
}

/// The bench's own setting (warnings only, as load tests usually run), then production's: one
/// JSON line per request at `info`, written to a file as a pipe to a log shipper would take it.
const LOGGING: [Logging; 2] = [
    Logging {
        key: "warn",
        env: &[],
    },
    Logging {
        key: "info_json",
        env: &[("RUST_LOG", "info"), ("APP__LOG__FORMAT", "json")],
    },
];

/// One callgrind run: the loaded and the idle dump, and how long the requests took.
struct Counted {
    loaded: PathBuf,
    loaded_total: u64,
    idle_total: u64,
    took: Duration,
}

impl Counted {
    fn per_request(&self, requests: u32) -> f64 {
        self.loaded_total.saturating_sub(self.idle_total) as f64 / f64::from(requests)
    }
}

/// Runs `binary` under callgrind with `logging`, sends the warm-up and `requests` counted
/// requests, then counts an idle stretch as long.
fn count(binary: &Path, directory: &Path, logging: &Logging, requests: u32) -> Result<Counted> {
    let dumps = directory.join(logging.key);
    fs::create_dir_all(&dumps).map_err(|e| format!("{}: {e}", dumps.display()))?;
    let mut services = Services::default();
    let emulator = stack::start_emulator(&mut services, &[("MOCK__RATE_LIMIT__ENABLED", "false")])?;
    let port = free_port()?;
    let mut api = stack::api_command("valgrind".into(), &emulator, port);
    let log_file = dumps.join("api.log");
    let log = fs::File::create(&log_file).map_err(|e| format!("{}: {e}", log_file.display()))?;
    api.arg("--tool=callgrind")
        .arg(format!(
            "--callgrind-out-file={}/callgrind.out.%p",
            dumps.display()
        ))
        .arg(binary)
        .envs(UNLIMITED.iter().copied())
        .env("APP__SERVER__WORKERS", "1")
        .envs(logging.env.iter().copied())
        .stdout(log);
    let pid = services.start(API.service, &mut api)?;
    let address = format!("127.0.0.1:{port}");
    services.wait_until_ok(API.service, &address, "/readyz")?;

    let request = guest_token_request();
    let mut connection = Connection::new(&address);
    let mut send = |count: u32| -> Result<Duration> {
        let started = Instant::now();
        for _ in 0..count {
            let status = connection.send(&request).map_err(|e| format!("profile: {e}"))?;
            if status != 201 {
                return Err(format!("profile: the API answered {status}"));
            }
        }
        Ok(started.elapsed())
    };
    send(WARM_UP_REQUESTS)?;
    control("--zero", pid)?;
    let took = send(requests)?;
    control("--dump", pid)?;
    let loaded = newest_dump(&dumps, 0)?;
    control("--zero", pid)?;
    std::thread::sleep(took);
    control("--dump", pid)?;
    let idle = newest_dump(&dumps, 1)?;
    drop(services);
    Ok(Counted {
        loaded_total: dump_total(&loaded)?,
        idle_total: dump_total(&idle)?,
        loaded,
        took,
    })
}

/// Instructions per guest-token request of the release API under callgrind, one worker.
pub fn profile(plan: &Plan) -> Result<Section> {
    for tool in ["valgrind", "callgrind_control", "callgrind_annotate"] {
        if !process::on_path(tool) {
            return Err(format!("{tool} is not installed: apt-get install -y valgrind"));
        }
    }
    let binary = build_with_symbols()?;
    let directory = target_dir().join("bench-profile");
    let _ = fs::remove_dir_all(&directory);
    fs::create_dir_all(&directory).map_err(|e| format!("{}: {e}", directory.display()))?;
    let requests = plan.profile_requests;
    let quiet = count(&binary, &directory, &LOGGING[0], requests)?;
    let with_json_log = count(&binary, &directory, &LOGGING[1], requests)?.per_request(requests);
    let per_request = quiet.per_request(requests);
    let Counted {
        loaded,
        loaded_total,
        idle_total,
        took,
    } = quiet;
    let annotated = process::read_quietly(&mut cmd(
        "callgrind_annotate",
        &["--inclusive=yes", &loaded.to_string_lossy()],
    ))?;
    let costs = annotated_costs(&annotated);

    let mut section = Section::new(
        "Profile",
        format!(
            "The release API (symbols kept) under `valgrind --tool=callgrind`, one worker, \
             emulator latency 0. After {WARM_UP_REQUESTS} warm-up requests the counters are \
             zeroed, {requests} `POST /api/webchat/guest-token` go one after another on one \
             kept-alive connection ({:.1} s under callgrind) and are dumped; then an idle stretch \
             as long is dumped. Instructions per request = (loaded - idle) / {requests}. The API \
             logs warnings only; a second run logs as production does (`RUST_LOG=info`, \
             `APP__LOG__FORMAT=json`: one JSON line per request, to a file). Dumps: \
             `target/bench-profile/`.",
            took.as_secs_f64(),
        ),
    );
    section.headline(
        "API instructions per guest-token request (callgrind)",
        &[per_request],
    );
    section.headline(
        "API instructions per request with production's JSON log at info",
        &[with_json_log],
    );
    section.figure("instructions_per_request", per_request);
    section.figure("instructions_per_request_info_json", with_json_log);
    section.figure("loaded_instructions", loaded_total as f64);
    section.figure("idle_instructions", idle_total as f64);
    let mut figures = Table::new(&["Figure", "Instructions"]);
    figures.row(vec![format!("{requests} requests"), loaded_total.to_string()]);
    figures.row(vec!["idle stretch as long".into(), idle_total.to_string()]);
    figures.row(vec!["per request".into(), number(per_request)]);
    figures.row(vec![
        "per request, JSON log at info".into(),
        number(with_json_log),
    ]);
    section.tables.push(figures);
    let row = |cost: &Cost| {
        vec![
            number(cost.instructions as f64 / f64::from(requests)),
            format!("{:.1} %", cost.instructions as f64 * 100.0 / loaded_total as f64),
            format!("`{}`", short_name(&cost.function).replace('|', "\\|")),
        ]
    };
    let mut path = Table::new(&["Inclusive instr./request", "share", "function (request path)"]);
    costs
        .iter()
        .filter(|c| REQUEST_PATH.iter().any(|krate| c.function.contains(krate)))
        .take(TOP)
        .for_each(|c| path.row(row(c)));
    section.tables.push(path);
    let mut all = Table::new(&["Inclusive instr./request", "share", "function (any)"]);
    costs.iter().take(TOP).for_each(|c| all.row(row(c)));
    section.tables.push(all);
    section.notes.push(format!(
        "Reproduce: `cargo xtask bench --profile`, then `callgrind_annotate --inclusive=yes \
         target/bench-profile/warn/{}` (the JSON run's dumps are in `target/bench-profile/info_json/`).",
        loaded
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    ));
    Ok(section)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANNOTATED: &str = "\
--------------------------------------------------------------------------------
Ir
--------------------------------------------------------------------------------
812,345,678 (100.0%)  PROGRAM TOTALS

--------------------------------------------------------------------------------
Ir                    file:function
--------------------------------------------------------------------------------
700,000,000 (86.17%)  ???:std::sys::pal::unix::thread::Thread::new::thread_start [/x/guest-token-api]
 90,000,000 (11.08%)  ???:api::routes::guest_token::guest_token::{{closure}} [/x/guest-token-api]
";

    #[test]
    fn short_names_drop_the_unknown_file_and_the_object() {
        assert_eq!(
            short_name("???:api::routes::guest_token::guest_token [/x/guest-token-api]"),
            "api::routes::guest_token::guest_token"
        );
        assert_eq!(short_name("boxed.rs:thread_start"), "boxed.rs:thread_start");
    }

    #[test]
    fn reads_totals_of_reports_and_dumps() {
        assert_eq!(total_instructions(ANNOTATED), Some(812_345_678));
        assert_eq!(total_instructions("events: Ir\nsummary: 4242\n"), Some(4242));
        assert_eq!(total_instructions("totals: 17\n"), Some(17));
        assert_eq!(total_instructions("nothing"), None);
    }

    #[test]
    fn reads_each_function_with_its_inclusive_cost() {
        let costs = annotated_costs(ANNOTATED);
        assert_eq!(costs.len(), 2);
        assert_eq!(costs[1].instructions, 90_000_000);
        assert_eq!(
            costs[1].function,
            "???:api::routes::guest_token::guest_token::{{closure}} [/x/guest-token-api]"
        );
    }
}
