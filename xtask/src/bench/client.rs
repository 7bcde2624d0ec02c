//! A keep-alive HTTP/1.1 client over `TcpStream` for loads that wrk cannot give: a fixed rate
//! (open loop), or an exact number of requests. `crate::http` closes every connection, which would
//! count the API's accept and close in every request.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long one answer may take: above the API's whole upstream budget (10 s).
const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// A request sent again and again.
#[derive(Debug, Clone)]
pub struct Request {
    /// `POST`, `GET`, ...
    pub method: &'static str,
    /// Path and query.
    pub path: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body (with `Content-Type: application/json` when not empty).
    pub body: String,
}

impl Request {
    /// The request head and body as sent on a kept-alive connection to `host`.
    fn encode(&self, host: &str) -> Vec<u8> {
        let mut text = format!(
            "{} {} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n",
            self.method,
            self.path,
            self.body.len()
        );
        if !self.body.is_empty() {
            text.push_str("Content-Type: application/json\r\n");
        }
        for (name, value) in &self.headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("\r\n");
        text.push_str(&self.body);
        text.into_bytes()
    }
}

/// One kept-alive connection to `host_port`, reopened when the server closes it.
pub struct Connection {
    host_port: String,
    stream: Option<BufReader<TcpStream>>,
}

impl Connection {
    /// A connection opened on first use.
    pub fn new(host_port: &str) -> Self {
        Self {
            host_port: host_port.to_owned(),
            stream: None,
        }
    }

    /// Sends `request` and reads the whole answer; returns its status code.
    pub fn send(&mut self, request: &Request) -> std::io::Result<u16> {
        let bytes = request.encode(&self.host_port);
        // A kept-alive connection the server closed meanwhile fails once: retry on a new one.
        let reused = self.stream.is_some();
        match self.exchange(&bytes) {
            Err(_) if reused => {
                self.stream = None;
                self.exchange(&bytes)
            }
            outcome => outcome,
        }
    }

    fn exchange(&mut self, bytes: &[u8]) -> std::io::Result<u16> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.host_port)?;
            stream.set_read_timeout(Some(READ_TIMEOUT))?;
            stream.set_nodelay(true)?;
            self.stream = Some(BufReader::new(stream));
        }
        let reader = self.stream.as_mut().expect("connected above");
        let outcome = write_and_read(reader, bytes);
        if !matches!(outcome, Ok((_, true))) {
            self.stream = None;
        }
        outcome.map(|(status, _)| status)
    }
}

/// Writes the request and reads the answer: status and whether the connection stays open.
fn write_and_read(reader: &mut BufReader<TcpStream>, bytes: &[u8]) -> std::io::Result<(u16, bool)> {
    reader.get_mut().write_all(bytes)?;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = parse_status_line(&line)
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP status line: {line:?}")))?;
    let (mut length, mut keep_alive) = (None, true);
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<u64>().ok();
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
                keep_alive = false;
            }
        }
    }
    let length = length.ok_or_else(|| std::io::Error::other("an answer without Content-Length"))?;
    std::io::copy(&mut reader.by_ref().take(length), &mut std::io::sink())?;
    Ok((status, keep_alive))
}

fn parse_status_line(line: &str) -> Option<u16> {
    let mut words = line.split_whitespace();
    words.next()?.strip_prefix("HTTP/1.")?;
    words.next()?.parse().ok()
}

/// What an open-loop load saw: each answer's latency by status (0: no answer).
#[derive(Debug, Default)]
pub struct PacedOutcome {
    /// Latencies in milliseconds from each request's scheduled start, by status code; 0 holds
    /// requests that got no answer.
    pub answers: BTreeMap<u16, Vec<f64>>,
    /// Requests that started more than 100 ms after their slot (every worker was busy).
    pub late: u64,
    /// Wall time from the first slot to the last answer.
    pub elapsed: Duration,
}

impl PacedOutcome {
    /// Answers with this status.
    pub fn count(&self, status: u16) -> u64 {
        self.answers.get(&status).map_or(0, |l| l.len() as u64)
    }

    /// Every latency, whatever the status.
    pub fn latencies(&self) -> Vec<f64> {
        self.answers.values().flatten().copied().collect()
    }
}

/// Sends `request` to `host_port` at `rate` per second for `duration` (slot i at i / rate), from
/// `workers` threads with a connection each; a late slot is sent at once, never skipped, so the
/// offered load stays fixed whatever the answers' latency.
pub fn paced(
    host_port: &str,
    request: &Request,
    rate: f64,
    duration: Duration,
    workers: usize,
) -> PacedOutcome {
    let slots = (rate * duration.as_secs_f64()).round() as u64;
    let next = AtomicU64::new(0);
    let outcome = Mutex::new(PacedOutcome::default());
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut connection = Connection::new(host_port);
                loop {
                    let slot = next.fetch_add(1, Ordering::SeqCst);
                    if slot >= slots || crate::process::interrupted() {
                        break;
                    }
                    let due = start + Duration::from_secs_f64(slot as f64 / rate);
                    let now = Instant::now();
                    let late = now > due + Duration::from_millis(100);
                    if let Some(wait) = due.checked_duration_since(now) {
                        std::thread::sleep(wait);
                    }
                    let status = connection.send(request).unwrap_or(0);
                    let latency = due.elapsed().as_secs_f64() * 1_000.0;
                    let mut outcome = outcome.lock().expect("no worker panics holding it");
                    outcome.answers.entry(status).or_default().push(latency);
                    outcome.late += u64::from(late);
                }
            });
        }
    });
    let mut outcome = outcome.into_inner().expect("no worker panicked");
    outcome.elapsed = start.elapsed();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn reads_the_status_of_an_http_1_answer_only() {
        assert_eq!(parse_status_line("HTTP/1.1 201 Created\r\n"), Some(201));
        assert_eq!(parse_status_line("HTTP/1.0 429 Too Many Requests\r\n"), Some(429));
        assert_eq!(parse_status_line("SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status_line(""), None);
    }

    #[test]
    fn the_request_carries_its_length_type_and_headers() {
        let request = Request {
            method: "POST",
            path: "/x".into(),
            headers: vec![("Authorization".into(), "Bearer t".into())],
            body: "{}".into(),
        };
        let text = String::from_utf8(request.encode("127.0.0.1:9")).unwrap();
        assert!(
            text.starts_with("POST /x HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"),
            "{text}"
        );
        assert!(text.contains("Content-Length: 2\r\n") && text.contains("Authorization: Bearer t\r\n"));
        assert!(text.ends_with("\r\n\r\n{}"), "{text}");
    }

    /// A server answering `answers` on one connection, then closing it, then doing it again.
    fn server(answers: &'static [&'static str], connections: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for _ in 0..connections {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream);
                for answer in answers {
                    let mut line = String::new();
                    while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                        line.clear();
                    }
                    reader.get_mut().write_all(answer.as_bytes()).unwrap();
                }
            }
        });
        address
    }

    #[test]
    fn keeps_the_connection_and_reopens_it_when_the_server_closed_it() {
        const ANSWERS: &[&str] = &[
            "HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}",
            "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\n\r\n",
        ];
        let address = server(ANSWERS, 2);
        let request = Request {
            method: "GET",
            path: "/".into(),
            headers: vec![],
            body: String::new(),
        };
        let mut connection = Connection::new(&address);
        let statuses: Vec<u16> = (0..4).map(|_| connection.send(&request).unwrap()).collect();
        assert_eq!(statuses, [201, 429, 201, 429]);
    }
}
