//! The delivery demo's request and API parsers on stable Rust: their unit tests, the fuzz
//! seed corpus, and proptest streams, all through the invariants the fuzz targets check
//! (`fuzz/checks.rs`), so CI covers what `cargo fuzz` covers, minus the search.

// The same files the example serves and the fuzz targets include; each user calls a part.
#[allow(dead_code)]
#[path = "../examples/delivery/api_parse.rs"]
mod api_parse;
#[allow(dead_code)]
#[path = "../fuzz/checks.rs"]
mod checks;
#[allow(dead_code)]
#[path = "../examples/delivery/http_parse.rs"]
mod http_parse;

use std::path::Path;

use proptest::prelude::*;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{} has too few seeds", dir.display());
    files
}

#[test]
fn every_http_request_seed_keeps_the_parser_invariants() {
    for (name, data) in corpus("http_request") {
        eprintln!("seed {name}");
        checks::check_http_input(&data);
    }
}

#[test]
fn every_order_json_seed_keeps_the_parser_invariants() {
    for (name, data) in corpus("order_json") {
        eprintln!("seed {name}");
        checks::check_order_input(&data);
    }
}

/// A request, valid or not: a request line, headers from a pool that holds every case the
/// parser decides on, a body, and now and then a few random bytes spliced in somewhere.
/// Random bytes alone rarely make a head at all.
fn request() -> impl Strategy<Value = Vec<u8>> {
    let line = prop::sample::select(vec![
        "GET / HTTP/1.1\r\n",
        "POST /orders?limit=5 HTTP/1.1\r\n",
        "GET /healthz HTTP/1.0\r\n",
        "GET /x HTTP/2.0\r\n",
    ]);
    let header = prop::sample::select(vec![
        "Host: t\r\n",
        "Content-Length: 3\r\n",
        "Content-Length: 0\r\n",
        "Content-Length: +3\r\n",
        "content-length:  3 \r\n",
        "Content-Length: 3, 3\r\n",
        "Content-Length: 99999999999999999999999\r\n",
        "Transfer-Encoding: chunked\r\n",
        "Connection: close\r\n",
        "Connection: keep-alive\r\n",
        "Connection: xclose\r\n",
        "Expect: 100-continue\r\n",
        "X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
    ]);
    let splice = prop::option::weighted(
        0.2,
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<u8>(), 1..4),
        ),
    );
    (line, prop::collection::vec(header, 0..6), 0usize..6, splice).prop_map(
        |(line, headers, body, splice)| {
            let mut bytes = line.as_bytes().to_vec();
            for header in headers {
                bytes.extend_from_slice(header.as_bytes());
            }
            bytes.extend_from_slice(b"\r\n");
            bytes.extend(std::iter::repeat_n(b'b', body));
            if let Some((at, noise)) = splice {
                let at = at.index(bytes.len() + 1);
                bytes.splice(at..at, noise);
            }
            bytes
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any stream of requests, read in any chunk sizes, gets the same requests and the
    /// same ending as when read at once, and every answer keeps the framing invariants.
    #[test]
    fn http_streams_parse_the_same_in_any_chunks_and_keep_the_invariants(
        requests in prop::collection::vec(request(), 0..4),
        chunks in prop::collection::vec(1usize..40, 1..8),
    ) {
        let stream = requests.concat();
        checks::check_http_stream(&stream, &chunks);
        checks::check_http_input(&stream);
    }

    /// Any bytes as an order body, id or query: no panic, and what is accepted is in range.
    #[test]
    fn order_bodies_ids_and_queries_keep_the_invariants(data in prop::collection::vec(any::<u8>(), 0..64)) {
        checks::check_order_input(&data);
    }

    /// Orders built from JSON values near the limits: accepted ones are in range.
    #[test]
    fn orders_near_the_limits_keep_the_invariants(
        item in prop::sample::select(vec!["book", " pen ", "", "  ", "\u{a0}x\u{a0}"]),
        item_len in 0usize..(api_parse::MAX_TEXT + 3),
        quantity in prop::sample::select(vec![
            "0", "1", "2", "-1", "1.0", "1e2", "1000000", "1000001", "18446744073709551616", "null", "\"5\"",
        ]),
        address_len in 0usize..(api_parse::MAX_TEXT + 3),
    ) {
        let item = if item_len > api_parse::MAX_TEXT - 10 { "x".repeat(item_len) } else { item.to_owned() };
        let body = format!(
            r#"{{"item":{},"quantity":{quantity},"address":"{}"}}"#,
            serde_json::Value::from(item),
            "a".repeat(address_len),
        );
        checks::check_order_input(body.as_bytes());
    }
}
