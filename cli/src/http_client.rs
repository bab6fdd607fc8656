//! A small blocking HTTP/1.1 client for the node's JSON API.
//!
//! The CLI talks to a node on a known address with a handful of JSON
//! requests; a full client stack would add more build time than the whole
//! tool. One request per connection (`Connection: close`), bounded reads and
//! timeouts.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Largest response body read.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Could not connect or talk to the node.
    #[error("cannot reach the node at {addr}: {error}")]
    Unreachable {
        /// Address.
        addr: String,
        /// Why.
        error: String,
    },
    /// The node answered with an error status.
    #[error("node answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Error text.
        body: String,
    },
    /// The answer is not what was expected.
    #[error("unexpected answer from the node: {0}")]
    Malformed(String),
}

fn request(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> Result<(u16, Vec<u8>), HttpError> {
    let unreachable = |e: &dyn std::fmt::Display| HttpError::Unreachable {
        addr: addr.to_string(),
        error: e.to_string(),
    };
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| unreachable(&e))?
        .next()
        .ok_or_else(|| unreachable(&"address resolves to nothing"))?;
    let mut stream =
        TcpStream::connect_timeout(&sock, Duration::from_secs(5)).map_err(|e| unreachable(&e))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| unreachable(&e))?;
    let body = body.unwrap_or(&[]);
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .map_err(|e| unreachable(&e))?;
    stream.write_all(body).map_err(|e| unreachable(&e))?;
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE_BYTES)
        .read_to_end(&mut raw)
        .map_err(|e| unreachable(&e))?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), HttpError> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| HttpError::Malformed("no header terminator".into()))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| HttpError::Malformed("bad status line".into()))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = &raw[split + 4..];
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, HttpError> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| HttpError::Malformed("bad chunk".into()))?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| HttpError::Malformed("bad chunk size".into()))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err(HttpError::Malformed("truncated chunk".into()));
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

fn decode<T: DeserializeOwned>(status: u16, body: Vec<u8>) -> Result<T, HttpError> {
    if !(200..300).contains(&status) {
        let text = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        return Err(HttpError::Status { status, body: text });
    }
    serde_json::from_slice(&body).map_err(|e| HttpError::Malformed(e.to_string()))
}

/// `GET path`, decoding a JSON answer.
pub fn get_json<T: DeserializeOwned>(addr: &str, path: &str) -> Result<T, HttpError> {
    let (status, body) = request(addr, "GET", path, None)?;
    decode(status, body)
}

/// `GET path`, returning the body as text.
pub fn get_text(addr: &str, path: &str) -> Result<String, HttpError> {
    let (status, body) = request(addr, "GET", path, None)?;
    if !(200..300).contains(&status) {
        return Err(HttpError::Status {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// `POST path` with a JSON body, decoding a JSON answer.
pub fn post_json<B: Serialize, T: DeserializeOwned>(
    addr: &str,
    path: &str,
    body: &B,
) -> Result<T, HttpError> {
    let bytes = serde_json::to_vec(body).map_err(|e| HttpError::Malformed(e.to_string()))?;
    let (status, body) = request(addr, "POST", path, Some(&bytes))?;
    decode(status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_bodies() {
        let (s, b) = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi").unwrap();
        assert_eq!((s, b.as_slice()), (200, &b"hi"[..]));
        let raw = b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let (s, b) = parse_response(raw).unwrap();
        assert_eq!((s, b.as_slice()), (404, &b"abcde"[..]));
        assert!(parse_response(b"garbage").is_err());
    }
}
