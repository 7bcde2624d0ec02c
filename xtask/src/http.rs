//! Just enough HTTP/1.1 over `TcpStream` to poll health routes and fetch a token (no dependencies).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A response: status code and body as text.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body (assumed not chunked: the servers polled here send `Content-Length`).
    pub body: String,
}

/// Sends one request to `http://{host_port}{path}` and reads the whole response.
pub fn request(
    host_port: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Response> {
    let timeout = Duration::from_secs(2);
    let address = host_port
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{host_port}: no address")))?;
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host_port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&String::from_utf8_lossy(&raw))
        .ok_or_else(|| std::io::Error::other(format!("{host_port}{path}: not an HTTP response")))
}

/// The status code of `GET http://{host_port}{path}`, or `None` if nothing answered.
pub fn status(host_port: &str, path: &str) -> Option<u16> {
    request(host_port, "GET", path, &[], "").ok().map(|r| r.status)
}

/// Whether anything accepts TCP connections at `host_port`.
pub fn is_listening(host_port: &str) -> bool {
    host_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .is_some_and(|address| TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_ok())
}

fn parse_response(raw: &str) -> Option<Response> {
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status_line = head.lines().next()?;
    let mut words = status_line.split_whitespace();
    if !words.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status = words.next()?.parse().ok()?;
    Some(Response {
        status,
        body: body.to_owned(),
    })
}

/// The value of a top-level string field in a flat JSON object (enough for `access_token`).
pub fn json_string_field(json: &str, field: &str) -> Option<String> {
    let key = format!("\"{field}\"");
    let after_key = &json[json.find(&key)? + key.len()..];
    let value = after_key
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    Some(value[..value.find('"')?].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_body() {
        let r = parse_response("HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.body, "{}");
    }

    #[test]
    fn rejects_what_is_not_http() {
        assert!(parse_response("SSH-2.0-OpenSSH\r\n\r\n").is_none());
        assert!(parse_response("HTTP/1.1 200 OK").is_none());
    }

    #[test]
    fn reads_a_string_field_of_a_json_object() {
        let json = r#"{"token_type":"bearer", "access_token" : "abc.def", "expires_in":86400}"#;
        assert_eq!(
            json_string_field(json, "access_token").as_deref(),
            Some("abc.def")
        );
        assert_eq!(json_string_field(json, "expires_in"), None);
        assert_eq!(json_string_field(json, "missing"), None);
    }
}
