//! HTTP/1.1 request framing without a socket: from the bytes a connection has buffered so
//! far, either "need more", one complete request (head and body) and how many bytes it took,
//! or a rejection with its status.
//!
//! Only `httparse` and std, so the fuzz targets (`fuzz/`) and the stable property test
//! (`tests/delivery_parse.rs`) include this very file with `#[path]`: the code fuzzed is the
//! code served.
//!
//! The answer depends only on the bytes, never on how they were split into reads: a head is
//! judged on its first `max_head` bytes whether they came at once or one by one.

/// Most headers in one request; more is answered 431.
pub(crate) const MAX_HEADERS: usize = 48;

/// The sizes a request must stay within.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ParseLimits {
    /// Largest head (request line and headers, with the blank line); bigger is 431.
    pub(crate) max_head: usize,
    /// Largest body; a bigger Content-Length is 413, answered before the body is read.
    pub(crate) max_body: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// The path without the query.
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) body: Vec<u8>,
    /// The client asked to close after this request.
    pub(crate) close: bool,
}

/// How far the buffered bytes got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// The head is not complete yet.
    NeedHead,
    /// The head is complete and acceptable; its body is not. The connection owes the client a
    /// `100 Continue` now if it asked for one, since it waits for that before sending.
    NeedBody { expect_continue: bool },
    /// A whole request; the bytes after `consumed` belong to the next one (pipelining).
    Complete { request: Request, consumed: usize },
    /// Answer this status and message, then close: the framing of what follows is unknown.
    Reject { status: u16, message: String },
}

fn reject(status: u16, message: impl Into<String>) -> Parsed {
    Parsed::Reject {
        status,
        message: message.into(),
    }
}

/// Parses the request at the start of `buf`.
pub(crate) fn parse_request(buf: &[u8], limits: ParseLimits) -> Parsed {
    if buf.is_empty() {
        return Parsed::NeedHead;
    }
    // Only the first `max_head` bytes are ever looked at for the head, so a long head is 431
    // however it arrives, and a malformed byte past the limit cannot turn that into a 400.
    let window = &buf[..buf.len().min(limits.max_head)];
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= limits.max_head => {
            return reject(431, "request head too large")
        }
        Ok(httparse::Status::Partial) => return Parsed::NeedHead,
        Err(httparse::Error::TooManyHeaders) => return reject(431, "too many headers"),
        Err(e) => return reject(400, format!("malformed request: {e}")),
    };
    let mut content_length: Option<usize> = None;
    let mut wants_close = false;
    let mut wants_keep_alive = false;
    let mut expect_continue = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            // Two lengths, even equal ones, would let a proxy in front frame the message
            // differently from us (request smuggling, RFC 9112 §6.3); no real client sends two.
            if content_length.is_some() {
                return reject(400, "more than one Content-Length");
            }
            content_length = match parse_content_length(h.value) {
                Ok(n) => Some(n),
                Err(LengthError::TooLarge) => return reject(413, "body is over the limit"),
                Err(LengthError::NotDigits) => return reject(400, "invalid Content-Length"),
            };
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return reject(
                501,
                "Transfer-Encoding is not supported; send a Content-Length",
            );
        } else if h.name.eq_ignore_ascii_case("expect") {
            expect_continue |= h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                wants_close |= token.eq_ignore_ascii_case(b"close");
                wants_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    let content_length = content_length.unwrap_or(0);
    if content_length > limits.max_body {
        return reject(
            413,
            format!(
                "body of {content_length} bytes is over the limit of {} bytes",
                limits.max_body
            ),
        );
    }
    let Some(end) = head_len.checked_add(content_length) else {
        return reject(413, "body is over the limit");
    };
    if buf.len() < end {
        return Parsed::NeedBody { expect_continue };
    }
    // HTTP/1.0 closes unless asked to keep alive; 1.1 keeps alive unless asked to close, and
    // a `close` anywhere wins, so a later header cannot take it back.
    let close = wants_close || (req.version == Some(0) && !wants_keep_alive);
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Parsed::Complete {
        request: Request {
            method: req.method.unwrap_or("GET").to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            body: buf[head_len..end].to_vec(),
            close,
        },
        consumed: end,
    }
}

/// Why a Content-Length value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LengthError {
    /// Not `1*DIGIT` (RFC 9110 §8.6): empty, a sign, a list, spaces inside, non-ASCII.
    NotDigits,
    /// Digits, but more than any body we could hold.
    TooLarge,
}

/// A Content-Length field value: ASCII digits only, around optional whitespace.
///
/// `usize::from_str` alone would take `+5`, which a proxy in front may read differently.
pub(crate) fn parse_content_length(value: &[u8]) -> Result<usize, LengthError> {
    let digits = value.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(LengthError::NotDigits);
    }
    digits.iter().try_fold(0usize, |n, &d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(usize::from(d - b'0')))
            .ok_or(LengthError::TooLarge)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ParseLimits = ParseLimits {
        max_head: 1024,
        max_body: 100,
    };

    fn status(buf: &[u8]) -> u16 {
        match parse_request(buf, LIMITS) {
            Parsed::Reject { status, .. } => status,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    fn complete(buf: &[u8]) -> (Request, usize) {
        match parse_request(buf, LIMITS) {
            Parsed::Complete { request, consumed } => (request, consumed),
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn two_content_lengths_with_different_values_are_rejected_400() {
        let req = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(status(req), 400);
    }

    #[test]
    fn two_equal_content_lengths_are_rejected_400() {
        let req = b"POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(status(req), 400);
    }

    #[test]
    fn a_content_length_with_a_sign_is_rejected_400() {
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello"),
            400
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: -0\r\n\r\n"),
            400
        );
    }

    #[test]
    fn a_content_length_that_is_not_only_digits_is_rejected_400() {
        for value in ["", "5,5", "5 5", "0x5", "5.0", "٥"] {
            let req = format!("POST / HTTP/1.1\r\nContent-Length: {value}\r\n\r\nhello");
            assert_eq!(status(req.as_bytes()), 400, "{value:?}");
        }
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 5\xff\r\n\r\nhello"),
            400
        );
    }

    #[test]
    fn a_content_length_with_surrounding_whitespace_is_accepted() {
        let (request, consumed) = complete(b"POST / HTTP/1.1\r\nContent-Length:  5 \r\n\r\nhello");
        assert_eq!(request.body, b"hello");
        assert_eq!(consumed, 45);
    }

    #[test]
    fn a_content_length_too_large_for_usize_is_413_not_an_overflow() {
        let req = b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n";
        assert_eq!(status(req), 413);
        // The largest usize passes parsing; adding the head length to it must not wrap.
        let req = format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", usize::MAX);
        let unlimited = ParseLimits {
            max_head: 1024,
            max_body: usize::MAX,
        };
        assert!(matches!(
            parse_request(req.as_bytes(), unlimited),
            Parsed::Reject { status: 413, .. }
        ));
    }

    #[test]
    fn a_body_over_the_limit_is_rejected_413_before_it_arrives() {
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n"),
            413
        );
    }

    #[test]
    fn transfer_encoding_is_rejected_501_even_with_a_content_length() {
        let req = b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(status(req), 501);
    }

    #[test]
    fn connection_close_is_a_token_not_a_substring() {
        let (request, _) = complete(b"GET / HTTP/1.1\r\nConnection: xclose\r\n\r\n");
        assert!(!request.close);
        let (request, _) = complete(b"GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n\r\n");
        assert!(request.close);
    }

    #[test]
    fn a_later_keep_alive_does_not_undo_connection_close() {
        let req = b"GET / HTTP/1.1\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n";
        assert!(complete(req).0.close);
    }

    #[test]
    fn http_1_0_closes_unless_it_asks_for_keep_alive() {
        assert!(complete(b"GET / HTTP/1.0\r\n\r\n").0.close);
        assert!(
            !complete(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                .0
                .close
        );
    }

    #[test]
    fn a_head_over_the_limit_is_431_whether_it_arrives_at_once_or_in_pieces() {
        let mut req = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        req.resize(LIMITS.max_head + 10, b'a');
        req.extend_from_slice(b"\r\n\r\n");
        assert_eq!(status(&req), 431);
        assert_eq!(status(&req[..LIMITS.max_head]), 431);
        assert_eq!(
            parse_request(&req[..LIMITS.max_head - 1], LIMITS),
            Parsed::NeedHead
        );
    }

    #[test]
    fn a_malformed_byte_past_the_head_limit_is_still_431() {
        let mut req = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        req.resize(LIMITS.max_head + 10, b'a');
        req.extend_from_slice(b"\x00\r\n\r\n");
        assert_eq!(status(&req), 431);
    }

    #[test]
    fn pipelined_bytes_after_a_request_are_not_consumed() {
        let first = b"POST /orders?x=1 HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi";
        let mut buf = first.to_vec();
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let (request, consumed) = complete(&buf);
        assert_eq!(consumed, first.len());
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/orders");
        assert_eq!(request.query, "x=1");
        assert_eq!(request.body, b"hi");
        assert_eq!(parse_request(&buf[consumed..], LIMITS), Parsed::NeedHead);
    }

    #[test]
    fn a_complete_head_waiting_for_its_body_reports_expect_continue() {
        let head = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(
            parse_request(head, LIMITS),
            Parsed::NeedBody {
                expect_continue: true
            }
        );
        let mut full = head.to_vec();
        full.extend_from_slice(b"abc");
        assert_eq!(complete(&full).0.body, b"abc");
    }
}
