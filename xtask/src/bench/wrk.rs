//! `wrk`: installed when missing, run for a fixed time and connection count, its report read.

use crate::process::{self, Result, cmd};

/// What one wrk run measured; latencies in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct WrkRun {
    /// Requests answered 2xx or 3xx per second (wrk's own figure counts refusals too).
    pub requests_per_second: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest request.
    pub max_ms: f64,
    /// Socket errors (connect, read, write, timeout) plus answers that were not 2xx or 3xx.
    pub errors: u64,
    /// Every answer wrk counted, refusals included.
    pub answered: u64,
}

/// One wrk invocation: script (relative to the workspace root), target, load.
pub struct Load<'a> {
    /// The Lua script.
    pub script: &'a str,
    /// `127.0.0.1:<port>`.
    pub address: &'a str,
    /// Open connections.
    pub connections: u32,
    /// Duration in seconds.
    pub seconds: u32,
    /// Environment the script reads (`TOKEN`).
    pub env: &'a [(String, String)],
}

/// Installs wrk with apt-get (through `sudo -n` when not root) if it is not on `PATH`.
pub fn ensure_installed() -> Result {
    if process::on_path("wrk") {
        return Ok(());
    }
    if !process::on_path("apt-get") {
        return Err("wrk is not installed and there is no apt-get: install wrk and rerun".into());
    }
    let root = process::read_quietly(&mut cmd("id", &["-u"]))? == "0";
    let apt = |args: &[&str]| {
        let mut command = if root {
            cmd("apt-get", args)
        } else {
            let mut sudo = cmd("sudo", &["-n", "apt-get"]);
            sudo.args(args);
            sudo
        };
        command.env("DEBIAN_FRONTEND", "noninteractive");
        process::run(&mut command)
    };
    apt(&["update", "-qq"])?;
    apt(&["install", "-y", "-qq", "--no-install-recommends", "wrk"])
        .map_err(|e| format!("{e}: cannot install wrk (root or passwordless sudo needed)"))
}

/// Runs wrk and reads its report; the command and a one-line summary go to stderr.
pub fn run(load: &Load) -> Result<WrkRun> {
    let url = format!("http://{}", load.address);
    let threads = load.connections.clamp(1, 2).to_string();
    let (connections, seconds) = (load.connections.to_string(), format!("{}s", load.seconds));
    let mut command = cmd(
        "wrk",
        &[
            "-t",
            &threads,
            "-c",
            &connections,
            "-d",
            &seconds,
            "--timeout",
            "5s",
            "--latency",
            "-s",
            load.script,
            &url,
        ],
    );
    command.envs(load.env.iter().map(|(k, v)| (k, v)));
    let output = process::read(&mut command)?;
    let run = parse(&output).ok_or_else(|| format!("cannot read wrk's report for {url}:\n{output}"))?;
    eprintln!(
        "  {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms, {} errors",
        run.requests_per_second, run.p50_ms, run.p99_ms, run.max_ms, run.errors
    );
    Ok(run)
}

/// Reads wrk's report (`--latency`): throughput, percentiles, the slowest request and errors.
pub fn parse(output: &str) -> Option<WrkRun> {
    let (mut p50, mut p90, mut p99, mut max) = (None, None, None, None);
    let (mut completed, mut non_2xx, mut socket_errors) = (None, 0, 0);
    for line in output.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [requests, "requests", "in", seconds, ..] = words[..] {
            // "153421 requests in 10.00s, 80.12MB read"
            let seconds = duration_ms(seconds.trim_end_matches(','))? / 1_000.0;
            completed = Some((requests.parse::<u64>().ok()?, seconds));
        } else if let Some(value) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = value.trim().parse::<u64>().ok()?;
        } else if let Some(counts) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 3, write 0, timeout 2"
            for count in counts.split(',') {
                socket_errors += count.split_whitespace().nth(1)?.parse::<u64>().ok()?;
            }
        } else if words.first() == Some(&"Latency") && words.len() >= 4 && words[1] != "Distribution" {
            // "Latency  avg  stdev  max  +/- stdev"
            max = duration_ms(words[3]);
        } else if let [percent, latency] = words[..] {
            let latency = duration_ms(latency);
            match percent {
                "50%" | "50.000%" => p50 = latency,
                "90%" | "90.000%" => p90 = latency,
                "99%" | "99.000%" => p99 = latency,
                _ => {}
            }
        }
    }
    let (requests, seconds) = completed.filter(|(_, s)| *s > 0.0)?;
    Some(WrkRun {
        requests_per_second: requests.saturating_sub(non_2xx) as f64 / seconds,
        p50_ms: p50?,
        p90_ms: p90?,
        p99_ms: p99?,
        max_ms: max?,
        errors: non_2xx + socket_errors,
        answered: requests,
    })
}

/// A wrk duration (`812.00us`, `1.90ms`, `1.02s`, `1.50m`) in milliseconds.
pub fn duration_ms(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1_000.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000.0)
    } else if let Some(n) = text.strip_suffix('h') {
        (n, 3_600_000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 10s test @ http://127.0.0.1:3000
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms    1.02ms    1.20s    80.00%
    Req/Sec     7.70k   500.00     8.80k    70.00%
  Latency Distribution
     50%  812.00us
     75%    2.50ms
     90%    3.20ms
     99%    6.10ms
  153421 requests in 10.00s, 80.12MB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 12
Requests/sec:  15342.10
Transfer/sec:      8.01MB";

    #[test]
    fn reads_throughput_percentiles_the_slowest_request_and_every_error() {
        let run = parse(REPORT).unwrap();
        assert_eq!(run.requests_per_second, (153_421.0 - 12.0) / 10.0);
        assert_eq!(run.p50_ms, 0.812);
        assert_eq!(run.p90_ms, 3.2);
        assert_eq!(run.p99_ms, 6.1);
        assert_eq!(run.max_ms, 1200.0);
        assert_eq!(run.errors, 3 + 1 + 2 + 12);
        assert_eq!(run.answered, 153_421);
    }

    #[test]
    fn a_clean_run_has_no_errors() {
        let clean: String = REPORT
            .lines()
            .filter(|l| !l.contains("errors") && !l.contains("Non-2xx"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(parse(&clean).unwrap().errors, 0);
    }

    #[test]
    fn a_report_without_throughput_or_percentiles_is_unreadable() {
        assert_eq!(parse("unable to connect to 127.0.0.1:1 Connection refused"), None);
        let no_count = REPORT.replace("153421 requests in 10.00s, 80.12MB read", "");
        assert_eq!(parse(&no_count), None);
        let no_distribution = REPORT.replace("99%", "98%");
        assert_eq!(parse(&no_distribution), None);
    }

    #[test]
    fn durations_convert_to_milliseconds() {
        assert_eq!(duration_ms("250.00us"), Some(0.25));
        assert_eq!(duration_ms("3.5ms"), Some(3.5));
        assert_eq!(duration_ms("2.00s"), Some(2000.0));
        assert_eq!(duration_ms("1.50m"), Some(90_000.0));
        assert_eq!(duration_ms("12"), None);
        assert_eq!(duration_ms("fast"), None);
    }
}
