//! The invariants of the delivery demo's parsers, in one copy: the fuzz targets
//! (`fuzz_targets/*.rs`) and the stable test CI runs (`tests/delivery_parse.rs`) both include
//! this file with `#[path]`, next to the parser files themselves as `crate::http_parse` and
//! `crate::api_parse`.
//!
//! Every check panics on a broken invariant: that is how libFuzzer and proptest see it.

use crate::api_parse::{
    parse_list_query, parse_order, parse_order_id, MAX_LIST, MAX_QUANTITY, MAX_TEXT,
};
use crate::http_parse::{parse_request, ParseLimits, Parsed, Request, MAX_HEADERS};

/// Small limits reach the 413 and 431 answers with short inputs; the server's own are checked
/// too, since a bug may hide behind either.
const LIMITS: [ParseLimits; 2] = [
    ParseLimits {
        max_head: 200,
        max_body: 64,
    },
    ParseLimits {
        max_head: 16 * 1024,
        max_body: 1024 * 1024,
    },
];

/// How a connection fed a byte stream ends, after serving its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// The stream ended between requests, or a request asked to close.
    Clean,
    /// The stream ended inside a request's head or body.
    Truncated,
    Reject(u16, String),
}

/// Feeds `stream` to the parser in reads of `chunks` sizes (cycled; a zero counts as one),
/// the way `Conn::next_request` does, checking each answer; returns the requests served and
/// how it ended.
pub(crate) fn serve(stream: &[u8], chunks: &[usize], limits: ParseLimits) -> (Vec<Request>, End) {
    let mut reads = stream;
    let mut sizes = chunks.iter().copied().cycle();
    let mut buf = Vec::new();
    let mut requests = Vec::new();
    loop {
        match parse_request(&buf, limits) {
            Parsed::Complete { request, consumed } => {
                check_complete(&buf, &request, consumed, limits);
                buf.drain(..consumed);
                let close = request.close;
                requests.push(request);
                if close {
                    return (requests, End::Clean);
                }
                continue;
            }
            Parsed::Reject { status, message } => {
                assert!((400..=599).contains(&status), "status {status}");
                assert!(!message.is_empty());
                return (requests, End::Reject(status, message));
            }
            Parsed::NeedHead => assert!(buf.len() < limits.max_head),
            Parsed::NeedBody { .. } => {}
        }
        if reads.is_empty() {
            let end = if buf.is_empty() {
                End::Clean
            } else {
                End::Truncated
            };
            return (requests, end);
        }
        let n = sizes.next().unwrap_or(usize::MAX).clamp(1, reads.len());
        buf.extend_from_slice(&reads[..n]);
        reads = &reads[n..];
    }
}

/// A complete request's framing, against an independent reading of its head.
fn check_complete(buf: &[u8], request: &Request, consumed: usize, limits: ParseLimits) {
    assert!(consumed > 0 && consumed <= buf.len(), "consumed {consumed}");
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut headers);
    let head_len = match head.parse(&buf[..consumed]) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!("accepted a head httparse reads as {other:?}"),
    };
    assert!(head_len <= limits.max_head, "head of {head_len} bytes");
    assert_eq!(head_len + request.body.len(), consumed);
    assert_eq!(request.body, &buf[head_len..consumed]);
    assert!(request.body.len() <= limits.max_body);
    let lengths: Vec<&[u8]> = head
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| h.value.trim_ascii())
        .collect();
    match lengths[..] {
        [] => assert!(request.body.is_empty()),
        [value] => {
            assert!(value.iter().all(u8::is_ascii_digit), "length {value:?}");
            let value = std::str::from_utf8(value).unwrap();
            assert_eq!(value.parse::<usize>().ok(), Some(request.body.len()));
        }
        _ => panic!("accepted {} Content-Length headers", lengths.len()),
    }
    assert!(!head
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("transfer-encoding")));
    assert_eq!(head.method, Some(request.method.as_str()));
    assert!(!request.path.contains('?'));
}

/// Checks `stream` read in `chunks` against the same stream read at once: the answer must not
/// depend on how the bytes were split into reads.
pub(crate) fn check_http_stream(stream: &[u8], chunks: &[usize]) {
    for limits in LIMITS {
        let at_once = serve(stream, &[usize::MAX], limits);
        let in_pieces = serve(stream, chunks, limits);
        assert_eq!(at_once, in_pieces, "read in chunks of {chunks:?}");
    }
}

/// The `http_request` fuzz target: `data` is what a client sends, read at once, in reads that
/// end after each CR, LF or colon (the boundaries where a parser keeps state), and in small
/// fixed-size reads.
pub(crate) fn check_http_input(data: &[u8]) {
    let mut at_delimiters = Vec::new();
    let mut last = 0;
    for (i, b) in data.iter().enumerate() {
        if matches!(b, b'\r' | b'\n' | b':') {
            at_delimiters.push(i + 1 - last);
            last = i + 1;
        }
    }
    at_delimiters.push(usize::MAX);
    check_http_stream(data, &at_delimiters);
    check_http_stream(data, &[data.len() % 13 + 1, 1]);
}

/// The `order_json` fuzz target: `data` as a `POST /orders` body, and (if it is text) as an
/// order id and as a `GET /orders` query.
pub(crate) fn check_order_input(data: &[u8]) {
    match parse_order(data) {
        Ok(order) => {
            let value: serde_json::Value = serde_json::from_slice(data).expect("accepted JSON");
            for (field, kept) in [("item", &order.item), ("address", &order.address)] {
                let sent = value[field].as_str().expect("a string field");
                assert!(!kept.is_empty() && sent.len() <= MAX_TEXT);
                assert_eq!(kept, sent.trim());
            }
            assert!((1..=MAX_QUANTITY).contains(&order.quantity));
            assert_eq!(value["quantity"].as_u64(), Some(u64::from(order.quantity)));
        }
        Err(message) => assert!(!message.is_empty()),
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = parse_order_id(text) {
        assert!(!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(text.parse::<u64>(), Ok(id));
    }
    if let Ok(list) = parse_list_query(text, |s| (s == "placed").then_some(())) {
        assert!((1..=MAX_LIST).contains(&list.limit));
    }
}
