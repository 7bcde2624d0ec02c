//! `bench`: comparative, repeatable measurements on 127.0.0.1. Every scenario runs its sides
//! interleaved, round after round, and reports medians and ratios to a baseline measured in the
//! same run; the results (with machine, commit and command) go to `bench/results/`.

mod client;
mod pressure;
mod profile;
mod report;
mod stack;
mod stats;
mod throughput;
mod wrk;

use std::fs;
use std::time::Instant;

use crate::image;
use crate::process::{self, Result, cmd, root};
use report::{Json, Section, goals_table, headlines_table};

/// How many rounds and how long: `--quick` or the full run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Rounds of each comparison.
    pub rounds: usize,
    /// Seconds of each side in a round.
    pub seconds: u32,
    /// Seconds of each side's warm-up run.
    pub warmup_seconds: u32,
    /// Seconds of the memory scenario's sustained load.
    pub sustained_seconds: u32,
    /// Seconds of the allowance scenario (longer than Genesys' 60 s window even when quick).
    pub allowance_seconds: u32,
    /// Seconds of the token-churn scenario.
    pub churn_seconds: u32,
    /// Requests counted by the profile, after its warm-up.
    pub profile_requests: u32,
}

impl Plan {
    const QUICK: Plan = Plan {
        rounds: 3,
        seconds: 3,
        warmup_seconds: 1,
        sustained_seconds: 20,
        allowance_seconds: 62,
        churn_seconds: 20,
        profile_requests: 2_000,
    };
    const FULL: Plan = Plan {
        rounds: 5,
        seconds: 10,
        warmup_seconds: 2,
        sustained_seconds: 180,
        allowance_seconds: 65,
        churn_seconds: 60,
        profile_requests: 2_000,
    };
}

// Genesys' window is 60 s: the allowance scenario must outlast it, quick or not, yet stay near it.
const _: () = assert!(Plan::QUICK.allowance_seconds >= 60 && Plan::QUICK.allowance_seconds <= 65);
const _: () = assert!(Plan::FULL.allowance_seconds >= 60 && Plan::FULL.allowance_seconds <= 65);
// The quick run's load (overhead 3 levels x 2 sides, latency 7 side-levels, messaging 2 sides,
// memory, allowance, churn) stays within 5 minutes, leaving one for start-ups and the profile.
const _: () = assert!(
    (6 + 7 + 2) * Plan::QUICK.rounds as u32 * Plan::QUICK.seconds
        + Plan::QUICK.sustained_seconds
        + Plan::QUICK.allowance_seconds
        + Plan::QUICK.churn_seconds
        <= 300
);

/// A scenario, by its command-line name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Overhead,
    Latency,
    Memory,
    Allowance,
    Churn,
    Messaging,
    Profile,
}

impl Scenario {
    const ALL: [Scenario; 7] = [
        Scenario::Overhead,
        Scenario::Latency,
        Scenario::Memory,
        Scenario::Allowance,
        Scenario::Churn,
        Scenario::Messaging,
        Scenario::Profile,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Overhead => "overhead",
            Scenario::Latency => "latency",
            Scenario::Memory => "memory",
            Scenario::Allowance => "allowance",
            Scenario::Churn => "churn",
            Scenario::Messaging => "messaging",
            Scenario::Profile => "profile",
        }
    }

    fn run(self, plan: &Plan) -> Result<Section> {
        match self {
            Scenario::Overhead => throughput::overhead(plan),
            Scenario::Latency => throughput::realistic_latency(plan),
            Scenario::Memory => throughput::memory(plan),
            Scenario::Allowance => pressure::allowance(plan),
            Scenario::Churn => pressure::token_churn(plan),
            Scenario::Messaging => throughput::web_messaging(plan),
            Scenario::Profile => profile::profile(plan),
        }
    }
}

/// The command line: `[--quick] [--profile | --only a,b]`.
#[derive(Debug, PartialEq)]
struct Options {
    quick: bool,
    scenarios: Vec<Scenario>,
}

const USAGE: &str =
    "bench [--quick] [--profile | --only overhead,latency,memory,allowance,churn,messaging,profile]";

impl Options {
    fn from_args(args: &[String]) -> Result<Self> {
        let mut options = Options {
            quick: false,
            scenarios: Scenario::ALL.to_vec(),
        };
        let mut chosen = false;
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let only = match flag.as_str() {
                "--quick" => {
                    options.quick = true;
                    continue;
                }
                "--profile" => "profile".to_owned(),
                "--only" => args
                    .next()
                    .ok_or("bench: --only needs a list of scenarios")?
                    .clone(),
                other => return Err(format!("bench: unknown argument {other:?}: {USAGE}")),
            };
            if chosen {
                return Err(format!("bench: --profile and --only go alone: {USAGE}"));
            }
            chosen = true;
            options.scenarios = only
                .split(',')
                .map(|name| {
                    Scenario::ALL
                        .into_iter()
                        .find(|s| s.name() == name.trim())
                        .ok_or_else(|| format!("bench: no scenario {name:?}: {USAGE}"))
                })
                .collect::<Result<_>>()?;
        }
        Ok(options)
    }

    fn plan(&self) -> &'static Plan {
        if self.quick { &Plan::QUICK } else { &Plan::FULL }
    }

    /// `2026-12-01`, `2026-12-01-quick`, `2026-12-01-quick-profile` (a subset is named).
    fn file_stem(&self, date: &str) -> String {
        let mut stem = date.to_owned();
        if self.quick {
            stem.push_str("-quick");
        }
        if self.scenarios.len() < Scenario::ALL.len() {
            for scenario in &self.scenarios {
                stem.push('-');
                stem.push_str(scenario.name());
            }
        }
        stem
    }
}

/// The `bench` task.
pub fn bench(args: &[String]) -> Result {
    let options = Options::from_args(args)?;
    let command = format!("cargo xtask bench {}", args.join(" "))
        .trim_end()
        .to_owned();
    process::catch_interrupt();
    let context = RunContext::read(&command)?;
    wrk::ensure_installed()?;
    image::build_release()?;
    let started = Instant::now();
    let mut sections = Vec::new();
    for scenario in &options.scenarios {
        eprintln!("\n=== {} ===", scenario.name());
        sections.push(scenario.run(options.plan())?);
        if process::interrupted() {
            return Err("bench: interrupted".into());
        }
    }
    let wall_seconds = started.elapsed().as_secs_f64();
    let markdown = context.markdown(&sections, wall_seconds);
    println!("\n{markdown}");
    let directory = root().join("bench/results");
    fs::create_dir_all(&directory).map_err(|e| format!("{}: {e}", directory.display()))?;
    let stem = options.file_stem(&context.date);
    for (extension, text) in [
        ("md", markdown),
        ("json", context.json(&sections, wall_seconds).render() + "\n"),
    ] {
        let path = directory.join(format!("{stem}.{extension}"));
        fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if options.scenarios.len() == Scenario::ALL.len() {
        update_summary(&context.summary(&sections, wall_seconds, &stem))?;
    }
    Ok(())
}

const SUMMARY_BEGIN: &str = "<!-- latest summary: written by `cargo xtask bench` -->";
const SUMMARY_END: &str = "<!-- end of the latest summary -->";

/// Puts a complete run's summary into `bench/README.md`, between its markers.
fn update_summary(summary: &str) -> Result {
    let path = root().join("bench/README.md");
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let updated = report::replace_between(&text, SUMMARY_BEGIN, SUMMARY_END, summary)
        .ok_or_else(|| format!("{}: the summary markers are missing", path.display()))?;
    fs::write(&path, updated).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("updated {}", path.display());
    Ok(())
}

/// Where and what was measured.
struct RunContext {
    date: String,
    time: String,
    command: String,
    commit: String,
    dirty: bool,
    cpus: usize,
    cpu_model: String,
    memory: String,
}

impl RunContext {
    fn read(command: &str) -> Result<Self> {
        let git = |args: &[&str]| process::read_quietly(&mut cmd("git", args));
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let field = |text: &str, name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned())
        };
        Ok(RunContext {
            date: process::read_quietly(&mut cmd("date", &["-u", "+%Y-%m-%d"]))?,
            time: process::read_quietly(&mut cmd("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]))?,
            command: command.to_owned(),
            commit: git(&["rev-parse", "HEAD"])?,
            dirty: !git(&["status", "--porcelain", "--untracked-files=no"])?.is_empty(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: field(&cpuinfo, "model name"),
            memory: field(&meminfo, "MemTotal"),
        })
    }

    fn commit_text(&self) -> String {
        format!("{}{}", self.commit, if self.dirty { " (dirty)" } else { "" })
    }

    fn header(&self, wall_seconds: f64) -> String {
        format!(
            "- Command: `{}`\n- Commit: {}\n- Machine: {} CPUs ({}), {} memory\n\
             - Date: {}\n- Wall time: {:.0} s\n",
            self.command,
            self.commit_text(),
            self.cpus,
            self.cpu_model,
            self.memory,
            self.time,
            wall_seconds
        )
    }

    /// The goals and each scenario's headlines, for `bench/README.md`.
    fn summary(&self, sections: &[Section], wall_seconds: f64, stem: &str) -> String {
        format!(
            "{}\n{}\n{}\nEvery figure, with its method: [results/{stem}.md](results/{stem}.md) \
             ([JSON](results/{stem}.json)).\n",
            self.header(wall_seconds),
            goals_table(sections.iter().flat_map(|s| &s.goals)).markdown(),
            headlines_table(sections).markdown(),
        )
    }

    fn markdown(&self, sections: &[Section], wall_seconds: f64) -> String {
        let mut out = format!("# Benchmark {}\n\n{}\n", self.time, self.header(wall_seconds));
        let goals = sections.iter().flat_map(|s| &s.goals);
        if goals.clone().next().is_some() {
            out.push_str("## Goals\n\n");
            out.push_str(&goals_table(goals).markdown());
            out.push('\n');
        }
        out.push_str("## Summary\n\n");
        out.push_str(&headlines_table(sections).markdown());
        out.push('\n');
        for section in sections {
            out.push_str(&section.markdown());
        }
        out
    }

    fn json(&self, sections: &[Section], wall_seconds: f64) -> Json {
        Json::object([
            ("date", Json::text(&self.time)),
            ("command", Json::text(&self.command)),
            ("commit", Json::text(&self.commit)),
            ("dirty", Json::Bool(self.dirty)),
            (
                "machine",
                Json::object([
                    ("cpus", Json::Number(self.cpus as f64)),
                    ("cpu_model", Json::text(&self.cpu_model)),
                    ("memory", Json::text(&self.memory)),
                ]),
            ),
            ("wall_seconds", Json::Number(wall_seconds)),
            (
                "scenarios",
                Json::List(sections.iter().map(Section::json).collect()),
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The options of `cargo xtask bench <words>`.
    fn parse(words: &[&str]) -> Result<Options> {
        let args: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        Options::from_args(&args)
    }

    #[test]
    fn the_default_is_every_scenario_in_full() {
        let options = parse(&[]).unwrap();
        assert!(!options.quick);
        assert_eq!(options.scenarios, Scenario::ALL);
        assert_eq!(options.plan(), &Plan::FULL);
        assert_eq!(options.file_stem("2026-12-01"), "2026-12-01");
    }

    #[test]
    fn quick_profile_and_only_choose_the_plan_and_the_scenarios() {
        let quick = parse(&["--quick"]).unwrap();
        assert_eq!(quick.plan(), &Plan::QUICK);
        assert_eq!(quick.file_stem("2026-12-01"), "2026-12-01-quick");

        let profile = parse(&["--profile"]).unwrap();
        assert_eq!(profile.scenarios, [Scenario::Profile]);
        assert_eq!(profile.file_stem("2026-12-01"), "2026-12-01-profile");

        let only = parse(&["--only", "churn,allowance", "--quick"]).unwrap();
        assert_eq!(only.scenarios, [Scenario::Churn, Scenario::Allowance]);
        assert_eq!(only.file_stem("d"), "d-quick-churn-allowance");
    }

    #[test]
    fn unknown_arguments_and_scenarios_are_refused() {
        assert!(parse(&["--seconds", "5"]).is_err());
        assert!(parse(&["--only", "speed"]).is_err());
        assert!(parse(&["--only"]).is_err());
        assert!(parse(&["--profile", "--only", "memory"]).is_err());
    }
}
