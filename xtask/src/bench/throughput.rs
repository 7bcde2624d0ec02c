//! The wrk scenarios: overhead, realistic latency, web messaging (each a comparison of sides run
//! in turn, round after round) and memory under a sustained load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::Plan;
use super::client::{Connection, Request};
use super::report::{Bound, Section, Table, number};
use super::stack::{
    self, DEPLOYMENT_ID, GUEST_PATH, GUEST_TOKEN_PATH, UNLIMITED, guest_token_request, memory_kib,
};
use super::stats::{median, median_difference, median_ratio, ratio};
use super::wrk::{self, WrkRun};
use crate::compose::MESSAGING_API_SERVICE;
use crate::image::API;
use crate::process::{Result, Services, free_port};

const API_SCRIPT: &str = "xtask/bench/guest-token.lua";
const DIRECT_SCRIPT: &str = "mock-genesys/bench/create-guest.lua";
/// Connection counts of the throughput comparisons.
const LEVELS: [u32; 3] = [16, 64, 256];
/// The emulator's delay in the realistic scenario.
const REALISTIC_LATENCY_MS: u32 = 80;
/// Upstream connections per worker tried against the default's cap at 256 connections.
const RAISED_POOL: &str = "256";

/// One side of a comparison: a wrk script against a target.
struct Side {
    label: String,
    script: &'static str,
    address: String,
    env: Vec<(String, String)>,
    /// Run at this connection count only (`None`: at every level).
    only_at: Option<u32>,
}

impl Side {
    fn new(label: &str, script: &'static str, address: &str) -> Self {
        Side {
            label: label.to_owned(),
            script,
            address: address.to_owned(),
            env: Vec::new(),
            only_at: None,
        }
    }

    fn runs_at(&self, connections: u32) -> bool {
        self.only_at.is_none_or(|c| c == connections)
    }

    fn load(&self, connections: u32, seconds: u32) -> wrk::Load<'_> {
        wrk::Load {
            script: self.script,
            address: &self.address,
            connections,
            seconds,
            env: &self.env,
        }
    }
}

/// The medians of one side at one connection count.
struct Medians {
    rps: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    errors: u64,
}

fn medians(runs: &[WrkRun]) -> Medians {
    let of = |f: fn(&WrkRun) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    Medians {
        rps: of(|r| r.requests_per_second),
        p50: of(|r| r.p50_ms),
        p90: of(|r| r.p90_ms),
        p99: of(|r| r.p99_ms),
        max: of(|r| r.max_ms),
        errors: runs.iter().map(|r| r.errors).sum(),
    }
}

/// Runs every side at every level, interleaved: round 1 of A, B, ..., then round 2, ...; one
/// warm-up run per side first. Returns `runs[level][side]`, one run per round.
fn interleave(plan: &Plan, levels: &[u32], sides: &[Side]) -> Result<Vec<Vec<Vec<WrkRun>>>> {
    for side in sides {
        eprintln!("warm-up: {}", side.label);
        wrk::run(&side.load(side.only_at.unwrap_or(levels[0]), plan.warmup_seconds))?;
    }
    let mut runs = vec![vec![Vec::new(); sides.len()]; levels.len()];
    for round in 1..=plan.rounds {
        for (l, &connections) in levels.iter().enumerate() {
            for (s, side) in sides.iter().enumerate().filter(|(_, s)| s.runs_at(connections)) {
                eprintln!(
                    "round {round}/{}: {} at {connections} connections",
                    plan.rounds, side.label
                );
                runs[l][s].push(wrk::run(&side.load(connections, plan.seconds))?);
            }
        }
    }
    Ok(runs)
}

/// Sends one request and fails unless it is answered 2xx: a misconfigured side fails in a second,
/// not after the whole run.
fn probe(address: &str, request: &Request, what: &str) -> Result {
    let status = Connection::new(address)
        .send(request)
        .map_err(|e| format!("{what}: {e}"))?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("{what}: answered {status} to a single request"))
    }
}

/// The emulator's guest route called directly, as `create-guest.lua` does, with its token.
fn direct_side(label: &str, emulator: &stack::Emulator) -> Result<Side> {
    let token = emulator.access_token()?;
    let request = Request {
        method: "POST",
        path: GUEST_PATH.to_owned(),
        headers: vec![("Authorization".into(), format!("Bearer {token}"))],
        body: r#"{"routing":{"queueId":"a1b2c3d4-e5f6-7890-abcd-ef1234567890","language":"en-us"}}"#.into(),
    };
    probe(&emulator.address, &request, "the emulator's guest route")?;
    let mut side = Side::new(label, DIRECT_SCRIPT, &emulator.address);
    side.env.push(("TOKEN".into(), token));
    Ok(side)
}

fn api_side(label: &str, api: &stack::Api) -> Result<Side> {
    probe(&api.address, &guest_token_request(), label)?;
    Ok(Side::new(label, API_SCRIPT, &api.address))
}

fn latency_row(connections: u32, side: &str, m: &Medians) -> Vec<String> {
    vec![
        connections.to_string(),
        side.to_owned(),
        number(m.rps),
        number(m.p50),
        number(m.p90),
        number(m.p99),
        number(m.max),
        m.errors.to_string(),
    ]
}

const LATENCY_COLUMNS: [&str; 8] = [
    "Connections",
    "Side",
    "req/s",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    "errors",
];

/// Compares `sides[1]` against `sides[0]` at each level: throughput ratio, added p50 and p99.
fn comparison(
    section: &mut Section,
    levels: &[u32],
    sides: &[Side],
    runs: &[Vec<Vec<WrkRun>>],
    ratio_name: &str,
    key: &str,
) {
    let mut table = Table::new(&LATENCY_COLUMNS);
    let mut ratios = Table::new(&["Connections", ratio_name, "added p50 ms", "added p99 ms"]);
    for (l, &connections) in levels.iter().enumerate() {
        for (s, side) in sides.iter().enumerate().filter(|(_, s)| s.runs_at(connections)) {
            let m = medians(&runs[l][s]);
            table.row(latency_row(connections, &side.label, &m));
            let prefix = format!("c{connections}.{}", side.label.to_lowercase().replace(' ', "_"));
            section.figure(format!("{prefix}.rps"), m.rps);
            section.figure(format!("{prefix}.p50_ms"), m.p50);
            section.figure(format!("{prefix}.p99_ms"), m.p99);
            section.figure(format!("{prefix}.errors"), m.errors as f64);
        }
        let (base, other) = (&runs[l][0], &runs[l][1]);
        let rps = |runs: &[WrkRun]| runs.iter().map(|r| r.requests_per_second).collect::<Vec<_>>();
        let p50 = |runs: &[WrkRun]| runs.iter().map(|r| r.p50_ms).collect::<Vec<_>>();
        let p99 = |runs: &[WrkRun]| runs.iter().map(|r| r.p99_ms).collect::<Vec<_>>();
        let throughput = median_ratio(&rps(other), &rps(base));
        let added_p50 = median_difference(&p50(other), &p50(base));
        let added_p99 = median_difference(&p99(other), &p99(base));
        section.figure(format!("c{connections}.{key}"), throughput);
        section.figure(format!("c{connections}.added_p50_ms"), added_p50);
        section.figure(format!("c{connections}.added_p99_ms"), added_p99);
        ratios.row(vec![
            connections.to_string(),
            number(throughput),
            number(added_p50),
            number(added_p99),
        ]);
    }
    section.tables.push(table);
    section.tables.push(ratios);
    let each = |name: &str| -> Vec<f64> {
        levels
            .iter()
            .map(|c| figure(section, &format!("c{c}.{name}")))
            .collect()
    };
    let at = levels.iter().map(u32::to_string).collect::<Vec<_>>().join(" / ");
    let (throughput, p50, p99) = (each(key), each("added_p50_ms"), each("added_p99_ms"));
    section.headline(format!("{ratio_name} at {at} connections"), &throughput);
    section.headline(format!("added p50 ms at {at} connections"), &p50);
    section.headline(format!("added p99 ms at {at} connections"), &p99);
}

fn figure(section: &Section, name: &str) -> f64 {
    section
        .figures
        .iter()
        .find(|(n, _)| n == name)
        .map_or(f64::NAN, |(_, v)| *v)
}

/// Emulator latency 0, limits off: what the API adds to the emulator's own guest route.
pub fn overhead(plan: &Plan) -> Result<Section> {
    let mut services = Services::default();
    let emulator = stack::start_emulator(&mut services, &[("MOCK__RATE_LIMIT__ENABLED", "false")])?;
    let api = stack::start_api(&mut services, API.service, &emulator, UNLIMITED)?;
    let sides = [direct_side("direct", &emulator)?, api_side("API", &api)?];
    let runs = interleave(plan, &LEVELS, &sides)?;
    let mut section = Section::new(
        "Overhead",
        format!(
            "Emulator latency 0, every limit off. wrk (2 threads) against the emulator's guest route \
             (`direct`) and the API's `POST {GUEST_TOKEN_PATH}` in turn, {} rounds of {} s each; \
             medians over rounds, ratios and differences taken round by round. Then each side once \
             more at 64 connections, with the CPU time (user + system, all threads, \
             `/proc/<pid>/stat`) each process used per answered request.",
            plan.rounds, plan.seconds
        ),
    );
    comparison(
        &mut section,
        &LEVELS,
        &sides,
        &runs,
        "API/direct throughput",
        "api_over_direct",
    );
    let at_64 = figure(&section, "c64.api_over_direct");
    section.goal(
        "API/direct throughput at 64 connections",
        at_64,
        Bound::AtLeast,
        0.75,
    );
    cpu_per_request(plan, &mut section, &sides, &[emulator.pid, api.pid])?;
    Ok(section)
}

/// Where the cores go: each side once more at 64 connections, with the CPU time (user and system,
/// all threads) the emulator and the API used per answered request. On a machine whose cores wrk,
/// the emulator and the API share, the throughput ratio cannot beat what these allow.
fn cpu_per_request(plan: &Plan, section: &mut Section, sides: &[Side], pids: &[u32; 2]) -> Result {
    const CONNECTIONS: u32 = 64;
    let mut table = Table::new(&[
        "Side",
        "requests",
        "emulator CPU µs/request",
        "API CPU µs/request",
    ]);
    let mut used = Vec::new();
    for side in sides {
        eprintln!("CPU time: {} at {CONNECTIONS} connections", side.label);
        let before = [stack::cpu_seconds(pids[0])?, stack::cpu_seconds(pids[1])?];
        let run = wrk::run(&side.load(CONNECTIONS, plan.seconds))?;
        let after = [stack::cpu_seconds(pids[0])?, stack::cpu_seconds(pids[1])?];
        // Every answer cost CPU, refusals too (a clean run has none).
        let requests = run.answered as f64;
        let per_request = |i: usize| (after[i] - before[i]) / requests * 1e6;
        let (emulator, api) = (per_request(0), per_request(1));
        let key = side.label.to_lowercase();
        section.figure(format!("cpu.{key}.emulator_us_per_request"), emulator);
        section.figure(format!("cpu.{key}.api_us_per_request"), api);
        table.row(vec![
            side.label.clone(),
            number(requests),
            number(emulator),
            number(api),
        ]);
        used.push((emulator, api));
    }
    section.tables.push(table);
    if let [(direct_emulator, _), (emulator, api)] = used[..] {
        section.headline(
            "CPU µs/request at 64 connections: emulator (direct) / emulator (behind the API) / API",
            &[direct_emulator, emulator, api],
        );
    }
    Ok(())
}

/// Emulator latency 80 ms: throughput against what the connections allow (connections / latency).
pub fn realistic_latency(plan: &Plan) -> Result<Section> {
    let mut services = Services::default();
    let emulator = stack::start_emulator(&mut services, &[("MOCK__RATE_LIMIT__ENABLED", "false")])?;
    emulator.patch_settings(&format!("{{\"latencyMs\": {REALISTIC_LATENCY_MS}}}"))?;
    let api = stack::start_api(&mut services, API.service, &emulator, UNLIMITED)?;
    let mut raised_env = UNLIMITED.to_vec();
    raised_env.push(("APP__GENESYS__MAX_CONNECTIONS_PER_WORKER", RAISED_POOL));
    let raised = stack::start_api(&mut services, "api-pool-256", &emulator, &raised_env)?;
    let mut raised_side = api_side("API pool 256", &raised)?;
    raised_side.only_at = Some(256);
    let sides = [
        direct_side("direct", &emulator)?,
        api_side("API", &api)?,
        raised_side,
    ];
    let runs = interleave(plan, &LEVELS, &sides)?;
    let mut section = Section::new(
        "Realistic latency",
        format!(
            "Emulator latency {REALISTIC_LATENCY_MS} ms on every route, limits off. Ideal req/s = \
             connections / {REALISTIC_LATENCY_MS} ms. `API` has the default \
             genesys.max_connections_per_worker (64, one worker per CPU); `API pool 256` sets \
             APP__GENESYS__MAX_CONNECTIONS_PER_WORKER={RAISED_POOL} (256 connections only). {} \
             rounds of {} s, interleaved; medians.",
            plan.rounds, plan.seconds
        ),
    );
    let mut table = Table::new(&[
        "Connections",
        "Side",
        "req/s",
        "ideal req/s",
        "share of ideal",
        "p50 ms",
        "p99 ms",
        "errors",
    ]);
    for (l, &connections) in LEVELS.iter().enumerate() {
        let ideal = f64::from(connections) * 1_000.0 / f64::from(REALISTIC_LATENCY_MS);
        for (s, side) in sides.iter().enumerate().filter(|(_, s)| s.runs_at(connections)) {
            let m = medians(&runs[l][s]);
            let key = format!("c{connections}.{}", side.label.to_lowercase().replace(' ', "_"));
            section.figure(format!("{key}.rps"), m.rps);
            section.figure(format!("{key}.share_of_ideal"), ratio(m.rps, ideal));
            section.figure(format!("{key}.p99_ms"), m.p99);
            table.row(vec![
                connections.to_string(),
                side.label.clone(),
                number(m.rps),
                number(ideal),
                number(ratio(m.rps, ideal)),
                number(m.p50),
                number(m.p99),
                m.errors.to_string(),
            ]);
        }
    }
    section.tables.push(table);
    for side in ["direct", "api"] {
        let scaling = ratio(
            figure(&section, &format!("c256.{side}.rps")),
            figure(&section, &format!("c16.{side}.rps")),
        ) / 16.0;
        section.figure(format!("{side}.scaling_16_to_256_vs_ideal"), scaling);
    }
    let shares = |side: &str| -> Vec<f64> {
        LEVELS
            .iter()
            .map(|c| figure(&section, &format!("c{c}.{side}.share_of_ideal")))
            .collect()
    };
    let (api_shares, direct_shares) = (shares("api"), shares("direct"));
    section.headline("API req/s / ideal at 16 / 64 / 256 connections", &api_shares);
    section.headline(
        "direct req/s / ideal at 16 / 64 / 256 connections",
        &direct_shares,
    );
    let capped = figure(&section, "c256.api.share_of_ideal");
    let raised = figure(&section, "c256.api_pool_256.share_of_ideal");
    section.notes.push(format!(
        "Scaling from 16 to 256 connections against the ideal 16x: API {}, direct {}. At 256 \
         connections the API reaches {} of the ideal with the default pool and {} with {RAISED_POOL} \
         connections per worker.",
        number(figure(&section, "api.scaling_16_to_256_vs_ideal")),
        number(figure(&section, "direct.scaling_16_to_256_vs_ideal")),
        number(capped),
        number(raised),
    ));
    section.headline(
        format!("API req/s / ideal at 256 connections, {RAISED_POOL} upstream connections per worker"),
        &[raised],
    );
    Ok(section)
}

/// Web-messaging mode (a code of the API's, redeemed by the emulator at the API's `/oidc/token`)
/// against the tutorial route, both APIs on one emulator.
pub fn web_messaging(plan: &Plan) -> Result<Section> {
    let mut services = Services::default();
    // Every exchange opens a session that lives a day; at the default bound (10,000) a full run
    // would be refused half-way.
    let emulator = stack::start_emulator(
        &mut services,
        &[
            ("MOCK__RATE_LIMIT__ENABLED", "false"),
            ("MOCK__MAX_SESSIONS", "10000000"),
        ],
    )?;
    let tutorial = stack::start_api(&mut services, API.service, &emulator, UNLIMITED)?;
    let port = free_port()?;
    let issuer = format!("http://127.0.0.1:{port}");
    // config/mock-genesys.toml's deployment with this run's API as its identity provider.
    emulator.put_deployment(
        DEPLOYMENT_ID,
        &format!(
            r#"{{"name":"Local demo","status":"Active","allowedDomains":["http://localhost:8080"],
              "authentication":{{"discoveryUri":"{issuer}/.well-known/openid-configuration",
              "clientId":"genesys-local","clientSecret":"genesys-local-secret"}}}}"#
        ),
    )?;
    let mut env = UNLIMITED.to_vec();
    // config/local.toml holds the deployment, the signing key and allow_anonymous.
    env.extend([
        ("APP__GUEST__UPSTREAM", "web-messaging"),
        ("APP__OIDC__ISSUER", issuer.as_str()),
    ]);
    let messaging = stack::start_api_on(&mut services, MESSAGING_API_SERVICE, &emulator, port, &env)?;
    let sides = [
        api_side("tutorial", &tutorial)?,
        api_side("web messaging", &messaging)?,
    ];
    let levels = [64];
    let runs = interleave(plan, &levels, &sides)?;
    let mut section = Section::new(
        "Web messaging",
        format!(
            "`POST {GUEST_TOKEN_PATH}` of an API with guest.upstream = \"web-messaging\" (anonymous \
             visitors, a code of its own redeemed by the emulator at its /oidc/token over HTTP, a \
             messaging JWT back) against the tutorial route, emulator latency 0, limits off; {} \
             rounds of {} s, interleaved; medians.",
            plan.rounds, plan.seconds
        ),
    );
    comparison(
        &mut section,
        &levels,
        &sides,
        &runs,
        "web messaging/tutorial throughput",
        "messaging_over_tutorial",
    );
    Ok(section)
}

/// The API's resident memory idle, then under a sustained load at 256 connections.
pub fn memory(plan: &Plan) -> Result<Section> {
    const CONNECTIONS: u32 = 256;
    let mut services = Services::default();
    let emulator = stack::start_emulator(&mut services, &[("MOCK__RATE_LIMIT__ENABLED", "false")])?;
    let api = stack::start_api(&mut services, API.service, &emulator, UNLIMITED)?;
    std::thread::sleep(Duration::from_secs(1));
    let (idle_rss, idle_hwm) = memory_kib(api.pid)?;
    let side = api_side("API", &api)?;
    let done = AtomicBool::new(false);
    let seconds = plan.sustained_seconds;
    let (run, samples) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut samples = Vec::new();
            while !done.load(Ordering::SeqCst) {
                if let Ok((rss, _)) = memory_kib(api.pid) {
                    samples.push(rss);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            samples
        });
        let run = wrk::run(&side.load(CONNECTIONS, seconds));
        done.store(true, Ordering::SeqCst);
        (run, sampler.join().expect("the sampler does not panic"))
    });
    let run = run?;
    let (end_rss, peak_hwm) = memory_kib(api.pid)?;
    std::thread::sleep(Duration::from_secs(2));
    let (after_rss, _) = memory_kib(api.pid)?;
    let steady: Vec<f64> = samples[samples.len() / 2..].iter().map(|&k| k as f64).collect();
    let warm = samples.get(samples.len() / 4).copied().unwrap_or(end_rss);
    let growth = end_rss as f64 - warm as f64;
    let growth_window = f64::from(seconds) * 0.75;
    let mib = |kib: f64| kib / 1024.0;

    let mut section = Section::new(
        "Memory",
        format!(
            "VmRSS and VmHWM of the API from /proc/<pid>/status: idle after start-up, then during \
             {seconds} s of wrk at {CONNECTIONS} connections (emulator latency 0, limits off), \
             sampled every 0.5 s. Growth: VmRSS at the end minus VmRSS a quarter into the run."
        ),
    );
    let mut table = Table::new(&["Moment", "VmRSS MiB", "VmHWM MiB"]);
    table.row(vec![
        "idle".into(),
        number(mib(idle_rss as f64)),
        number(mib(idle_hwm as f64)),
    ]);
    table.row(vec![
        format!("{CONNECTIONS} connections (median of the second half)"),
        number(mib(median(&steady))),
        "".into(),
    ]);
    table.row(vec![
        format!("end of the {seconds} s run"),
        number(mib(end_rss as f64)),
        number(mib(peak_hwm as f64)),
    ]);
    table.row(vec![
        "2 s after the run".into(),
        number(mib(after_rss as f64)),
        "".into(),
    ]);
    section.tables.push(table);
    section.figure("idle_rss_mib", mib(idle_rss as f64));
    section.figure("idle_hwm_mib", mib(idle_hwm as f64));
    section.figure("steady_rss_mib_256", mib(median(&steady)));
    section.figure("peak_hwm_mib_256", mib(peak_hwm as f64));
    section.figure("growth_kib", growth);
    section.figure("growth_kib_per_minute", growth / growth_window * 60.0);
    section.figure("rps", run.requests_per_second);
    section.notes.push(format!(
        "Load: {} req/s, {} errors. Growth over the last {:.0} s: {} KiB ({} KiB a minute).",
        number(run.requests_per_second),
        run.errors,
        growth_window,
        number(growth),
        number(growth / growth_window * 60.0)
    ));
    section.headline(
        "API RSS MiB: idle / steady at 256 connections / peak (VmHWM)",
        &[mib(idle_rss as f64), mib(median(&steady)), mib(peak_hwm as f64)],
    );
    section.headline(
        format!("RSS growth KiB a minute ({seconds} s at 256 connections)"),
        &[growth / growth_window * 60.0],
    );
    section.goal(
        "API peak RSS (VmHWM) at 256 connections, MiB",
        mib(peak_hwm as f64),
        Bound::AtMost,
        20.0,
    );
    Ok(section)
}
