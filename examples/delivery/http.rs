//! HTTP/1.1 on one connection: reading requests (framed by `http_parse.rs`) within the read
//! time limits that keep a bad client from costing more than it should; writing responses.
//!
//! Keep-alive is the default; `Connection: close` or HTTP/1.0 ends the connection after the
//! response. Requests may be pipelined: bytes after one request stay for the next.

use std::io;
use std::time::{Duration, Instant};

use ringloop::net::TcpStream;
use ringloop::time::timeout_at;
use ringloop::IoBufExt;

pub(crate) use crate::http_parse::Request;
use crate::http_parse::{parse_request, ParseLimits, Parsed};

/// Largest request head; a bigger one is answered 431.
const MAX_HEAD: usize = 16 * 1024;
/// A client that does not read what it asked for within this long is dropped, so it cannot
/// hold a connection slot (and, for `/events`, its task) forever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Per-connection limits, from the command line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) body: usize,
    pub(crate) header_timeout: Duration,
}

/// Why no request could be read; the connection ends after answering (if there is an
/// answer).
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer closed between requests: nothing to answer.
    Closed,
    /// The head (or body) did not arrive within the header timeout.
    TimedOut,
    /// Answered with this status and message, then the connection closes.
    Reject(u16, String),
    Io,
}

#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn json(status: u16, value: &impl serde::Serialize) -> Response {
        Response {
            status,
            content_type: "application/json",
            body: serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec()),
        }
    }

    pub(crate) fn error(status: u16, message: &str) -> Response {
        Response::json(status, &serde_json::json!({ "error": message }))
    }

    pub(crate) fn text(
        status: u16,
        content_type: &'static str,
        body: impl Into<Vec<u8>>,
    ) -> Response {
        Response {
            status,
            content_type,
            body: body.into(),
        }
    }
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// One client connection and the bytes it sent that are not consumed yet.
pub(crate) struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Reads the next request: its head within the header timeout, then its body.
    pub(crate) async fn next_request(&mut self, limits: Limits) -> Result<Request, ReadError> {
        let parse_limits = ParseLimits {
            max_head: MAX_HEAD,
            max_body: limits.body,
        };
        let mut deadline = Instant::now() + limits.header_timeout;
        let mut in_body = false;
        loop {
            match parse_request(&self.buf, parse_limits) {
                Parsed::Complete { request, consumed } => {
                    self.buf.drain(..consumed);
                    return Ok(request);
                }
                Parsed::Reject { status, message } => {
                    return Err(ReadError::Reject(status, message))
                }
                Parsed::NeedHead => {}
                Parsed::NeedBody { expect_continue } if !in_body => {
                    in_body = true;
                    // The body gets its own allowance, as long as the head's.
                    deadline = Instant::now() + limits.header_timeout;
                    // curl and others wait (about a second) for this before sending a body.
                    if expect_continue {
                        self.write(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec())
                            .await
                            .map_err(|_| ReadError::Io)?;
                    }
                }
                Parsed::NeedBody { .. } => {}
            }
            if self.read_more(deadline).await? == 0 {
                return Err(if in_body {
                    ReadError::Reject(400, "connection closed inside the body".into())
                } else if self.buf.is_empty() {
                    ReadError::Closed
                } else {
                    ReadError::Reject(400, "connection closed inside the request head".into())
                });
            }
        }
    }

    /// Appends what the socket has to `buf`; `Ok(0)` at end of stream.
    async fn read_more(&mut self, deadline: Instant) -> Result<usize, ReadError> {
        if self.buf.capacity() - self.buf.len() < 2048 {
            self.buf.reserve(8192);
        }
        let len = self.buf.len();
        let buf = std::mem::take(&mut self.buf);
        match timeout_at(deadline, self.stream.read(buf.slice(len..))).await {
            Err(_) => Err(ReadError::TimedOut),
            Ok((res, slice)) => {
                self.buf = slice.into_inner();
                res.map_err(|_| ReadError::Io)
            }
        }
    }

    /// Writes `response`; `close` adds `Connection: close`.
    pub(crate) async fn respond(&self, response: Response, close: bool) -> io::Result<()> {
        let connection = if close { "close" } else { "keep-alive" };
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {connection}\r\nCache-Control: no-store\r\n\r\n",
            response.status,
            reason(response.status),
            response.content_type,
            response.body.len()
        )
        .into_bytes();
        out.extend_from_slice(&response.body);
        self.write(out).await.map(drop)
    }

    /// Writes all of `bytes` within the write timeout; gives the buffer back for reuse.
    pub(crate) async fn write(&self, bytes: Vec<u8>) -> io::Result<Vec<u8>> {
        match ringloop::time::timeout(WRITE_TIMEOUT, self.stream.write_all(bytes)).await {
            Ok((res, bytes)) => res.map(|()| bytes),
            Err(elapsed) => Err(elapsed.into()),
        }
    }

    /// Closes without resetting: stops writing, then reads and discards what the client is
    /// still sending (for a short while), so it gets to read our answer (a 413 sent before
    /// its body) instead of a reset.
    pub(crate) async fn linger_close(self) {
        if self.stream.shutdown(std::net::Shutdown::Write).is_err() {
            return;
        }
        let deadline = Instant::now() + Duration::from_millis(500);
        let mut buf = Vec::with_capacity(16 * 1024);
        for _ in 0..64 {
            match timeout_at(deadline, self.stream.read(buf)).await {
                Ok((Ok(n), back)) if n > 0 => buf = back,
                _ => return,
            }
            buf.clear();
        }
    }
}
