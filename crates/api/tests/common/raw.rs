//! Raw HTTP/1.1 over `std::net` for the tests that need what a normal client will not do: send
//! from a chosen loopback address (127.0.0.0/8 is all ours), pipeline thousands of requests, or
//! trickle a body.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

/// A connection to `127.0.0.1:port` whose local address is `from` (any 127.x.y.z).
pub fn connect_from(from: IpAddr, port: u16) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::new(from, 0).into()).unwrap();
    socket
        .connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], port)).into(),
            Duration::from_secs(5),
        )
        .unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream
}

/// The text of a `POST` of `body` to `path`, with `extra` header lines (each ending in `\r\n`).
pub fn post_text(path: &str, body: &str, extra: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
}

/// Reads one response and returns its status (`None` if the connection closed first).
pub fn read_status(reader: &mut BufReader<TcpStream>) -> Option<u16> {
    read_answer(reader).map(|(status, _)| status)
}

/// Reads one response: its status and its whole text, head and body (`None` if the connection
/// closed first).
pub fn read_answer(reader: &mut BufReader<TcpStream>) -> Option<(u16, String)> {
    let mut text = String::new();
    if reader.read_line(&mut text).ok()? == 0 {
        return None;
    }
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        text.push_str(&line);
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    text.push_str(&String::from_utf8_lossy(&body));
    Some((status, text))
}

/// Sends `request` once from `from` on a fresh connection and returns the status.
pub fn send_from(from: IpAddr, port: u16, request: &str) -> Option<u16> {
    let mut stream = connect_from(from, port);
    stream.write_all(request.as_bytes()).ok()?;
    read_status(&mut BufReader::new(stream))
}

/// Sends every request of `requests` on one connection, pipelined (HTTP/1.1) in windows of 64
/// so the server's read buffer never overflows, and returns the statuses in order.
pub fn pipeline(port: u16, requests: impl Iterator<Item = String>) -> Vec<u16> {
    const WINDOW: usize = 64;
    let stream = connect_from(IpAddr::from([127, 0, 0, 1]), port);
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut statuses = Vec::new();
    let requests: Vec<String> = requests.collect();
    for window in requests.chunks(WINDOW) {
        if writer.write_all(window.concat().as_bytes()).is_err() {
            break;
        }
        for _ in window {
            match read_status(&mut reader) {
                Some(status) => statuses.push(status),
                None => return statuses,
            }
        }
    }
    statuses
}
