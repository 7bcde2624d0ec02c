//! `bench`: bounded load on 127.0.0.1 with `wrk`, first the emulator alone, then API -> emulator.

use crate::http;
use crate::image::{self, API, MOCK};
use crate::process::{self, Result, Services, cmd, free_port, target_dir};

const MAX_SECONDS: u32 = 60;
const MAX_CONNECTIONS: u32 = 256;

/// How hard and how long to push.
#[derive(Debug, PartialEq)]
struct Load {
    seconds: u32,
    connections: u32,
}

impl Load {
    fn from_args(args: &[String]) -> Result<Self> {
        let mut load = Load {
            seconds: 10,
            connections: 32,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let (target, max) = match flag.as_str() {
                "--seconds" => (&mut load.seconds, MAX_SECONDS),
                "--connections" => (&mut load.connections, MAX_CONNECTIONS),
                other => {
                    return Err(format!(
                        "bench: unknown argument {other:?} (--seconds N, --connections N)"
                    ));
                }
            };
            let value = args
                .next()
                .ok_or_else(|| format!("bench: {flag} needs a value"))?;
            *target = value
                .parse()
                .ok()
                .filter(|v| (1..=max).contains(v))
                .ok_or_else(|| {
                    format!("bench: {flag} must be a whole number from 1 to {max}, not {value:?}")
                })?;
        }
        Ok(load)
    }
}

/// What one wrk run measured.
#[derive(Debug, PartialEq)]
struct WrkSummary {
    requests_per_second: String,
    percentiles: Vec<(String, String)>,
    non_2xx: u64,
}

/// The `bench` task.
pub fn bench(args: &[String]) -> Result {
    let load = Load::from_args(args)?;
    if !process::on_path("wrk") {
        return Err("wrk is not installed: apt-get install -y wrk".into());
    }
    process::catch_interrupt();
    image::build_release()?;
    let release = target_dir().join("release");
    let mut services = Services::default();

    let mock_port = free_port()?.to_string();
    let mock_address = format!("127.0.0.1:{mock_port}");
    let mut mock = cmd(
        release.join(MOCK.binary),
        &["--host", "127.0.0.1", "--port", &mock_port],
    );
    mock.env("MOCK__RATE_LIMIT__ENABLED", "false")
        .env("RUST_LOG", "warn");
    services.start(MOCK.service, &mut mock)?;
    services.wait_until_ok(MOCK.service, &mock_address, "/__admin/health")?;

    let token = access_token(&mock_address)?;
    let emulator = wrk(
        &load,
        "mock-genesys/bench/create-guest.lua",
        &mock_address,
        &[("TOKEN", &token)],
    )?;

    let api_port = free_port()?.to_string();
    let api_address = format!("127.0.0.1:{api_port}");
    let mut api = cmd(release.join(API.binary), &[]);
    api.env("APP_ENV", "local")
        .env("GENESYS_BASE_URL", format!("http://{mock_address}"))
        .env("PORT", &api_port)
        .env("APP__SERVER__HOST", "127.0.0.1")
        // The per-IP limiter would refuse almost all of one client's load.
        .env("APP__RATE_LIMIT__ENABLED", "false")
        .env("RUST_LOG", "warn");
    let api_pid = services.start(API.service, &mut api)?;
    services.wait_until_ok(API.service, &api_address, "/readyz")?;
    let end_to_end = wrk(&load, "xtask/bench/guest-token.lua", &api_address, &[])?;
    let api_rss = resident_memory(api_pid)?;
    drop(services);

    println!(
        "\nBenchmark: {} s, {} connections, 2 threads, 127.0.0.1",
        load.seconds, load.connections
    );
    for (what, summary) in [
        ("emulator POST /api/v2/webchat/instances/guests", &emulator),
        ("API -> emulator POST /api/webchat/guest-token", &end_to_end),
    ] {
        let percentiles: Vec<String> = summary
            .percentiles
            .iter()
            .map(|(p, v)| format!("p{p} {v}"))
            .collect();
        println!(
            "  {what}: {} req/s, latency {}",
            summary.requests_per_second,
            percentiles.join(", ")
        );
        if summary.non_2xx > 0 {
            println!("    WARNING: {} responses were not 2xx", summary.non_2xx);
        }
    }
    println!("  API resident memory after the run (VmRSS): {api_rss}");
    Ok(())
}

fn access_token(mock_address: &str) -> Result<String> {
    let body = "grant_type=client_credentials&client_id=local-client&client_secret=local-secret";
    let headers = [("Content-Type", "application/x-www-form-urlencoded")];
    let response = http::request(mock_address, "POST", "/oauth/token", &headers, body)
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

/// Runs wrk with `script` (relative to the workspace root) against `http://{address}`.
fn wrk(load: &Load, script: &str, address: &str, env: &[(&str, &str)]) -> Result<WrkSummary> {
    let (seconds, connections) = (format!("{}s", load.seconds), load.connections.to_string());
    let url = format!("http://{address}");
    let mut command = cmd(
        "wrk",
        &[
            "-t2",
            "-c",
            &connections,
            "-d",
            &seconds,
            "--latency",
            "-s",
            script,
            &url,
        ],
    );
    command.envs(env.iter().copied());
    let output = process::read(&mut command)?;
    println!("{output}");
    parse_wrk(&output).ok_or_else(|| format!("cannot read wrk's report for {url}"))
}

fn parse_wrk(output: &str) -> Option<WrkSummary> {
    let mut requests_per_second = None;
    let mut percentiles = Vec::new();
    let mut non_2xx = 0;
    for line in output.lines().map(str::trim) {
        if let Some(value) = line.strip_prefix("Requests/sec:") {
            requests_per_second = Some(value.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = value.trim().parse().ok()?;
        } else if let Some((percent, latency)) = line.split_once("% ")
            && percent.parse::<f64>().is_ok()
        {
            percentiles.push((percent.to_owned(), latency.trim().to_owned()));
        }
    }
    Some(WrkSummary {
        requests_per_second: requests_per_second?,
        percentiles,
        non_2xx,
    })
}

fn resident_memory(pid: u32) -> Result<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .map(|v| v.trim().to_owned())
        .ok_or_else(|| format!("/proc/{pid}/status has no VmRSS"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK_OUTPUT: &str = "Running 10s test @ http://127.0.0.1:3000/api/webchat/guest-token
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms    1.02ms  20.31ms   80.00%
    Req/Sec     7.70k   500.00     8.80k    70.00%
  Latency Distribution
     50%    1.90ms
     75%    2.50ms
     90%    3.20ms
     99%    6.10ms
  153421 requests in 10.00s, 80.12MB read
  Non-2xx or 3xx responses: 12
Requests/sec:  15342.10
Transfer/sec:      8.01MB";

    #[test]
    fn reads_throughput_percentiles_and_failures_from_wrk() {
        let summary = parse_wrk(WRK_OUTPUT).unwrap();
        assert_eq!(summary.requests_per_second, "15342.10");
        assert_eq!(summary.non_2xx, 12);
        let expected = [
            ("50", "1.90ms"),
            ("75", "2.50ms"),
            ("90", "3.20ms"),
            ("99", "6.10ms"),
        ];
        assert_eq!(
            summary.percentiles,
            expected.map(|(p, v)| (p.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn a_report_without_throughput_is_unreadable() {
        assert_eq!(
            parse_wrk("unable to connect to 127.0.0.1:1 Connection refused"),
            None
        );
    }

    #[test]
    fn load_is_bounded() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            Load::from_args(&[]).unwrap(),
            Load {
                seconds: 10,
                connections: 32
            }
        );
        assert_eq!(
            Load::from_args(&args(&["--seconds", "5", "--connections", "8"])).unwrap(),
            Load {
                seconds: 5,
                connections: 8
            }
        );
        assert!(Load::from_args(&args(&["--seconds", "61"])).is_err());
        assert!(Load::from_args(&args(&["--connections", "0"])).is_err());
        assert!(Load::from_args(&args(&["--threads", "4"])).is_err());
    }
}
