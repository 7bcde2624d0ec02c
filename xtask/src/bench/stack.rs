//! The release emulator and API as processes on free 127.0.0.1 ports, the emulator's admin API
//! (settings, deployments, journal) and the API's memory as `/proc` shows it.

use std::path::PathBuf;
use std::process::Command;

use super::client::Request;
use crate::http;
use crate::image::{API, MOCK};
use crate::process::{Result, Services, cmd, free_port, target_dir};

/// The emulator's guest route (the seed tutorial's), as its journal names it.
pub const GUEST_PATH: &str = "/api/v2/webchat/instances/guests";
/// The emulator's token endpoint.
pub const TOKEN_PATH: &str = "/oauth/token";
/// The deployment of `config/mock-genesys.toml` and `config/local.toml`.
pub const DEPLOYMENT_ID: &str = "7f6e5d4c-3b2a-4190-8a7b-6c5d4e3f2a1b";
/// The API's route under test.
pub const GUEST_TOKEN_PATH: &str = "/api/webchat/guest-token";
/// The body of `xtask/bench/guest-token.lua`.
pub const GUEST_TOKEN_BODY: &str =
    r#"{"queueId":"a1b2c3d4-e5f6-7890-abcd-ef1234567890","language":"en-us","customerId":"cust_99887766"}"#;

/// Settings of an API that only throughput limits: per-IP limit off, and an allowance far above any
/// run's pace, all of it open to the one client that sends everything (as `crate::local` does).
pub const UNLIMITED: &[(&str, &str)] = &[
    ("APP__RATE_LIMIT__ENABLED", "false"),
    // 1,000,000 a minute (crate::local's figure) is 16,333 a second at the 0.98 share: below what
    // the emulator serves here, so the budget would refuse most of the load.
    ("APP__GENESYS__REQUESTS_PER_MINUTE", "1000000000"),
    ("APP__GENESYS__MAX_CLIENT_SHARE", "1"),
    // The default burst of 5 would refuse the 6th of requests arriving in the same microseconds.
    ("APP__GENESYS__BUDGET_BURST", "100000"),
];

/// `POST /api/webchat/guest-token` with the body of `xtask/bench/guest-token.lua`.
pub fn guest_token_request() -> Request {
    Request {
        method: "POST",
        path: GUEST_TOKEN_PATH.to_owned(),
        headers: Vec::new(),
        body: GUEST_TOKEN_BODY.to_owned(),
    }
}

/// The release binaries' folder.
pub fn release_dir() -> PathBuf {
    target_dir().join("release")
}

/// A running emulator.
pub struct Emulator {
    /// `127.0.0.1:<port>`.
    pub address: String,
    /// Its process id, for `/proc/<pid>/stat`.
    pub pid: u32,
}

/// A running API.
pub struct Api {
    /// `127.0.0.1:<port>`.
    pub address: String,
    /// Its process id, for `/proc/<pid>/status`.
    pub pid: u32,
}

/// Starts the release emulator (its default configuration file, `env` over it) and waits for it.
pub fn start_emulator(services: &mut Services, env: &[(&str, &str)]) -> Result<Emulator> {
    let port = free_port()?.to_string();
    let address = format!("127.0.0.1:{port}");
    let mut mock = cmd(
        release_dir().join(MOCK.binary),
        &["--host", "127.0.0.1", "--port", &port],
    );
    mock.env("RUST_LOG", "warn").envs(env.iter().copied());
    let pid = services.start(MOCK.service, &mut mock)?;
    services.wait_until_ok(MOCK.service, &address, "/__admin/health")?;
    Ok(Emulator { address, pid })
}

/// The API's command (`APP_ENV=local` against `emulator` on `port`), before its own settings.
pub fn api_command(program: PathBuf, emulator: &Emulator, port: u16) -> Command {
    let mut api = Command::new(program);
    api.current_dir(crate::process::root())
        .env("APP_ENV", "local")
        .env("GENESYS_BASE_URL", format!("http://{}", emulator.address))
        .env("PORT", port.to_string())
        .env("APP__SERVER__HOST", "127.0.0.1")
        .env("RUST_LOG", "warn");
    api
}

/// Starts the release API against `emulator` with `env` and waits until it is ready.
pub fn start_api(
    services: &mut Services,
    name: &'static str,
    emulator: &Emulator,
    env: &[(&str, &str)],
) -> Result<Api> {
    start_api_on(services, name, emulator, free_port()?, env)
}

/// [`start_api`] on a given port (when the emulator must know it first).
pub fn start_api_on(
    services: &mut Services,
    name: &'static str,
    emulator: &Emulator,
    port: u16,
    env: &[(&str, &str)],
) -> Result<Api> {
    let mut api = api_command(release_dir().join(API.binary), emulator, port);
    api.envs(env.iter().copied());
    let pid = services.start(name, &mut api)?;
    let address = format!("127.0.0.1:{port}");
    services.wait_until_ok(name, &address, "/readyz")?;
    Ok(Api { address, pid })
}

impl Emulator {
    fn admin(&self, method: &str, path: &str, body: &str, expected: &[u16]) -> Result<String> {
        let headers = [("Content-Type", "application/json")];
        let response = http::request(&self.address, method, path, &headers, body)
            .map_err(|e| format!("{method} {path} on the emulator: {e}"))?;
        if !expected.contains(&response.status) {
            return Err(format!(
                "{method} {path} on the emulator answered {}: {}",
                response.status, response.body
            ));
        }
        Ok(response.body)
    }

    /// `PATCH /__admin/settings` with a JSON object (`{"latencyMs": 80}`).
    pub fn patch_settings(&self, patch: &str) -> Result {
        eprintln!("emulator settings: {patch}");
        self.admin("PATCH", "/__admin/settings", patch, &[200]).map(drop)
    }

    /// `PUT /__admin/deployments/{id}`.
    pub fn put_deployment(&self, id: &str, spec: &str) -> Result {
        let path = format!("/__admin/deployments/{id}");
        self.admin("PUT", &path, spec, &[200, 201]).map(drop)
    }

    /// Empties the journal.
    pub fn clear_journal(&self) -> Result {
        self.admin("DELETE", "/__admin/requests", "", &[200, 204])
            .map(drop)
    }

    /// The journal's entries received on `path` (every path when `None`), oldest first.
    pub fn journal(&self, path: Option<&str>) -> Result<Vec<JournalEntry>> {
        let query = path.map_or_else(String::new, |p| format!("?path={p}"));
        let body = self.admin("GET", &format!("/__admin/requests{query}"), "", &[200])?;
        let mut entries = journal_entries(&body)?;
        entries.sort_by_key(|e| e.id);
        Ok(entries)
    }

    /// A bearer token of the emulator's public test client.
    pub fn access_token(&self) -> Result<String> {
        let body = "grant_type=client_credentials&client_id=local-client&client_secret=local-secret";
        let headers = [("Content-Type", "application/x-www-form-urlencoded")];
        let response = http::request(&self.address, "POST", TOKEN_PATH, &headers, body)
            .map_err(|e| format!("token request to the emulator failed: {e}"))?;
        if response.status != 200 {
            return Err(format!(
                "the emulator refused the test client: {}",
                response.status
            ));
        }
        http::json_string_field(&response.body, "access_token")
            .ok_or_else(|| "the emulator's token response has no access_token".to_owned())
    }
}

/// What the benchmark reads of a journal entry.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    /// The journal's sequence number.
    pub id: u64,
    /// `inbound` (to the emulator) or `outbound` (to an identity provider).
    pub direction: String,
    /// The status the emulator answered.
    pub status: u16,
    /// Seconds since the Unix epoch.
    pub received_at: f64,
}

/// The entries of `GET /__admin/requests`. Every quote inside a JSON string is escaped, so an
/// unescaped `"status":` can only be an entry's own field; fields come in the journal's order.
pub fn journal_entries(json: &str) -> Result<Vec<JournalEntry>> {
    let ids = field_values(json, "id");
    let directions = field_values(json, "direction");
    let statuses = field_values(json, "status");
    let times = field_values(json, "receivedAt");
    if [directions.len(), statuses.len(), times.len()] != [ids.len(); 3] {
        return Err("the emulator's journal does not read as expected".into());
    }
    let bad = |what: &str, value: &str| format!("journal: {what} {value:?} does not read");
    (0..ids.len())
        .map(|i| {
            Ok(JournalEntry {
                id: ids[i].parse().map_err(|_| bad("id", ids[i]))?,
                direction: directions[i].to_owned(),
                status: statuses[i].parse().map_err(|_| bad("status", statuses[i]))?,
                received_at: unix_seconds(times[i]).ok_or_else(|| bad("receivedAt", times[i]))?,
            })
        })
        .collect()
}

/// The raw values (a string's contents, or a number) of every `"field":` in `json`.
fn field_values<'a>(json: &'a str, field: &str) -> Vec<&'a str> {
    let key = format!("\"{field}\":");
    let mut values = Vec::new();
    let mut rest = json;
    while let Some(at) = rest.find(&key) {
        let after = rest[at + key.len()..].trim_start();
        let value = if let Some(text) = after.strip_prefix('"') {
            &text[..text.find('"').unwrap_or(text.len())]
        } else {
            let end = after.find([',', '}', ']']).unwrap_or(after.len());
            after[..end].trim()
        };
        values.push(value);
        rest = &rest[at + key.len()..];
    }
    values
}

/// An RFC 3339 UTC time (`2026-12-01T18:40:12.123456789Z`) as seconds since the Unix epoch.
pub fn unix_seconds(time: &str) -> Option<f64> {
    let time = time.strip_suffix('Z')?;
    let (date, clock) = time.split_once('T')?;
    let mut ymd = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let mut hms = clock.splitn(3, ':');
    let hours = hms.next()?.parse::<f64>().ok()?;
    let minutes = hms.next()?.parse::<f64>().ok()?;
    let seconds = hms.next()?.parse::<f64>().ok()?;
    // Days from civil (H. Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days as f64 * 86_400.0 + hours * 3_600.0 + minutes * 60.0 + seconds)
}

/// CPU time the process `pid` has used so far, all threads, user and system (`/proc/<pid>/stat`,
/// in clock ticks of `getconf CLK_TCK`).
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    let ticks = cpu_ticks(&stat).ok_or_else(|| format!("/proc/{pid}/stat is unreadable"))?;
    Ok(ticks as f64 / clock_ticks_per_second())
}

/// utime + stime of a `/proc/<pid>/stat` line (fields 14 and 15; the name in parentheses may
/// hold spaces, so fields are counted after its closing parenthesis).
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// `getconf CLK_TCK`, asked once per run.
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Resident memory of a process in KiB: (VmRSS now, VmHWM the peak so far).
pub fn memory_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .ok_or_else(|| format!("/proc/{pid}/status has no {name}"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_ticks_are_user_plus_system_after_a_name_with_spaces() {
        let stat = "4242 (guest token) S 1 4242 4242 0 -1 4194560 1617 0 0 0 250 31 0 0 20 0 3 0";
        assert_eq!(super::cpu_ticks(stat), Some(281));
        assert_eq!(super::cpu_ticks("4242 (x) S 1"), None);
    }

    use super::*;

    const JOURNAL: &str = r#"{"requests":[{"id":7,"receivedAt":"2026-12-01T18:40:12.5Z","direction":"inbound","method":"POST","path":"/oauth/token","status":200,"headers":{"content-type":"application/x-www-form-urlencoded"},"body":"grant_type=client_credentials&client_secret=[redacted]","bodyTruncated":false,"bodyLength":80},
{"id":8,"receivedAt":"2026-12-01T18:40:13.25Z","direction":"inbound","method":"POST","path":"/api/v2/webchat/instances/guests","status":429,"headers":{},"body":"{\"status\":201,\"id\":99}","bodyTruncated":false,"bodyLength":22}]}"#;

    #[test]
    fn reads_id_status_direction_and_time_of_each_entry_not_of_bodies() {
        let entries = journal_entries(JOURNAL).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!((entries[0].id, entries[0].status), (7, 200));
        assert_eq!((entries[1].id, entries[1].status), (8, 429));
        assert_eq!(entries[1].direction, "inbound");
        assert_eq!(entries[1].received_at - entries[0].received_at, 0.75);
        assert!(journal_entries(r#"{"requests":[]}"#).unwrap().is_empty());
    }

    #[test]
    fn a_journal_of_another_shape_is_an_error() {
        assert!(journal_entries(r#"{"requests":[{"id":1,"status":200}]}"#).is_err());
    }

    #[test]
    fn rfc3339_times_become_unix_seconds() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(unix_seconds("2000-03-01T00:00:01.5Z"), Some(951_868_801.5));
        assert_eq!(unix_seconds("2026-12-01T18:40:12Z"), Some(1_796_150_412.0));
        assert_eq!(unix_seconds("2026-12-01 18:40:12"), None);
    }
}
