//! The delivery demo's HTTP API over loopback, the demo running as a child process: the happy
//! path with its history and event stream, and every bad-input path answered without harm.

mod delivery_support;
mod support;

use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

use delivery_support::{
    binary, history, order, request_bytes, wait_for_status, Client, Server, TempDir, FULL_PATH,
};

/// Fast simulated world: every stage still runs, with short delays.
const QUICK: [&str; 8] = [
    "--shards",
    "2",
    "--courier-delay-ms",
    "5",
    "--travel-ms",
    "5",
    "--courier-ignore-percent",
    "0",
];

macro_rules! demo_or_skip {
    () => {
        match binary() {
            Some(bin) => bin,
            None => {
                println!("skipped: examples/delivery is not built (run `cargo test`, which builds examples)");
                return;
            }
        }
    };
}

#[test]
fn an_order_placed_over_the_api_is_delivered_with_its_full_history_and_events() {
    let bin = demo_or_skip!();
    support::watchdog("happy path", Duration::from_secs(60), || {
        let dir = TempDir::new("happy");
        let server = Server::start(&bin, &dir.db(), &QUICK);
        let mut c = server.client();

        let items = c.get("/items");
        assert_eq!(items.status, 200);
        let items = items.json();
        let book = items
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == "book")
            .expect("book in the catalogue")
            .clone();
        let stock_before = book["stock"].as_i64().unwrap();

        // Subscribe before placing, so every transition of the order is seen.
        let mut events = std::net::TcpStream::connect(&server.addr).unwrap();
        events
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        events
            .write_all(&request_bytes("GET", "/events", None))
            .unwrap();
        let mut events = BufReader::new(events);
        let mut line = String::new();
        events.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        // The stream's head and its opening comment are there before any order is placed.
        while line != ": stream of order transitions\n" {
            line.clear();
            assert!(events.read_line(&mut line).unwrap() > 0);
        }

        let placed = c.post("/orders", &order("book", 3, "12 Harbour Lane"));
        assert_eq!(placed.status, 201, "{}", placed.body);
        let placed = placed.json();
        let id = placed["id"].as_u64().expect("numeric id");
        assert_eq!(placed["item"], "book");

        let done = wait_for_status(&mut c, id, "delivered", Duration::from_secs(20));
        assert_eq!(done["status"], "delivered", "{done}");
        assert_eq!(history(&done), FULL_PATH);
        let times: Vec<f64> = done["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["at"].as_f64().unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        assert_eq!(done["quantity"], 3);
        assert_eq!(done["address"], "12 Harbour Lane");

        let mut seen = Vec::new();
        let start = Instant::now();
        while seen.len() < FULL_PATH.len() && start.elapsed() < Duration::from_secs(10) {
            line.clear();
            assert!(
                events.read_line(&mut line).unwrap() > 0,
                "event stream ended"
            );
            if let Some(data) = line.strip_prefix("data: ") {
                let event: serde_json::Value = serde_json::from_str(data).unwrap();
                if event["id"].as_u64() == Some(id) {
                    seen.push(event["status"].as_str().unwrap().to_owned());
                }
            }
        }
        assert_eq!(seen, FULL_PATH, "one event per stored transition, in order");

        let delivered = c.get("/orders?status=delivered");
        assert_eq!(delivered.status, 200);
        assert!(delivered
            .json()
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"].as_u64() == Some(id)));
        let items = c.get("/items").json();
        let book = items
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == "book")
            .unwrap()
            .clone();
        assert_eq!(book["stock"].as_i64().unwrap(), stock_before - 3);

        let metrics = c.get("/metrics");
        assert_eq!(metrics.status, 200);
        assert!(
            metrics
                .body
                .contains("delivery_transitions_total{status=\"delivered\"} 1"),
            "{}",
            metrics.body
        );
        assert!(metrics.body.contains("delivery_stage_seconds_bucket"));
        assert!(metrics.body.contains("ringloop_shards 2"));
        assert!(metrics
            .body
            .contains("ringloop_shard_timer_lag_seconds{shard=\"1\"}"));
        assert_eq!(c.get("/healthz").status, 200);
        let page = c.get("/");
        assert_eq!(page.status, 200);
        assert!(page.body.contains("<form"), "the page has the order form");
    });
}

#[test]
fn bad_input_gets_the_documented_status_and_the_server_keeps_serving() {
    let bin = demo_or_skip!();
    support::watchdog("bad input", Duration::from_secs(60), || {
        let dir = TempDir::new("bad-input");
        let mut flags = QUICK.to_vec();
        flags.extend(["--body-limit", "1024"]);
        let server = Server::start(&bin, &dir.db(), &flags);
        let mut c = server.client();

        let cases: [(&str, &str, u16, &str); 12] = [
            (
                "malformed JSON",
                "{\"item\": \"book\",",
                400,
                "malformed JSON",
            ),
            ("not an object", "[1, 2]", 400, "JSON object"),
            (
                "missing item",
                r#"{"quantity": 1, "address": "a"}"#,
                400,
                "`item`",
            ),
            (
                "missing address",
                r#"{"item": "book", "quantity": 1}"#,
                400,
                "`address`",
            ),
            (
                "missing quantity",
                r#"{"item": "book", "address": "a"}"#,
                400,
                "`quantity`",
            ),
            (
                "quantity as text",
                r#"{"item": "book", "quantity": "2", "address": "a"}"#,
                400,
                "`quantity`",
            ),
            (
                "zero quantity",
                r#"{"item": "book", "quantity": 0, "address": "a"}"#,
                400,
                "`quantity`",
            ),
            (
                "negative quantity",
                r#"{"item": "book", "quantity": -1, "address": "a"}"#,
                400,
                "`quantity`",
            ),
            (
                "item as number",
                r#"{"item": 7, "quantity": 1, "address": "a"}"#,
                400,
                "`item`",
            ),
            (
                "empty address",
                r#"{"item": "book", "quantity": 1, "address": "  "}"#,
                400,
                "`address`",
            ),
            (
                "unknown item",
                r#"{"item": "unicorn", "quantity": 1, "address": "a"}"#,
                422,
                "unknown item",
            ),
            (
                "out of stock",
                r#"{"item": "telescope", "quantity": 6, "address": "a"}"#,
                409,
                "not enough telescope",
            ),
        ];
        for (what, body, status, message) in cases {
            let resp = c.post("/orders", body);
            assert_eq!(resp.status, status, "{what}: {}", resp.body);
            let error = resp.json()["error"].as_str().unwrap_or("").to_owned();
            assert!(error.contains(message), "{what}: {error:?}");
        }
        // Nothing of the above was stored.
        assert_eq!(c.get("/orders").json(), serde_json::json!([]));

        assert_eq!(c.get("/orders/abc").status, 400);
        assert_eq!(c.get("/orders/999999").status, 404);
        assert_eq!(c.get("/orders?status=lost").status, 400);
        assert_eq!(c.get("/nowhere").status, 404);
        assert_eq!(c.request("DELETE", "/orders", None).status, 405);

        // Over the body limit: 413 before the body is read, and the connection closes.
        let mut big = Client::connect(&server.addr);
        let body = "x".repeat(4096);
        let resp = big.post("/orders", &body);
        assert_eq!(resp.status, 413, "{}", resp.body);
        assert_eq!(resp.header("connection"), Some("close"));
        assert!(big.closed_within(Duration::from_secs(5)));

        // A body announced but never fully sent is a bad request once the connection ends.
        let mut chunked = Client::connect(&server.addr);
        chunked.send_raw(
            b"POST /orders HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        );
        assert_eq!(chunked.read_response().unwrap().status, 501);

        let mut garbage = Client::connect(&server.addr);
        garbage.send_raw(b"\x16\x03\x01 this is not HTTP\r\n\r\n");
        assert_eq!(garbage.read_response().unwrap().status, 400);

        // The scarce item can still be bought up to its stock.
        let ok = c.post("/orders", &order("telescope", 5, "Observatory Hill"));
        assert_eq!(ok.status, 201, "{}", ok.body);
        let none_left = c.post("/orders", &order("telescope", 1, "Observatory Hill"));
        assert_eq!(none_left.status, 409, "{}", none_left.body);

        assert_eq!(c.get("/healthz").status, 200);
        let after = c.post("/orders", &order("lamp", 1, "3 Elm Row"));
        assert_eq!(after.status, 201, "{}", after.body);
        assert!(!server.output().contains("panicked"), "{}", server.output());
    });
}

#[test]
fn a_request_head_that_never_finishes_is_closed_after_the_header_timeout() {
    let bin = demo_or_skip!();
    support::watchdog("header timeout", Duration::from_secs(60), || {
        let dir = TempDir::new("header-timeout");
        let mut flags = QUICK.to_vec();
        flags.extend(["--header-timeout-ms", "400"]);
        let server = Server::start(&bin, &dir.db(), &flags);

        let mut slow = Client::connect(&server.addr);
        let start = Instant::now();
        slow.send_raw(b"GET /items HTTP/1.1\r\nHost: slow\r\nX-Never: ending");
        assert!(
            slow.closed_within(Duration::from_secs(5)),
            "still open 5 s after a half head"
        );
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(300),
            "closed after {waited:?}, before the timeout"
        );

        // An idle connection that never sends anything is closed the same way.
        let mut idle = Client::connect(&server.addr);
        assert!(idle.closed_within(Duration::from_secs(5)));

        let mut c = server.client();
        assert_eq!(c.get("/healthz").status, 200);
        let metrics = c.get("/metrics").body;
        assert!(
            metrics.contains("delivery_header_timeouts_total 2"),
            "{metrics}"
        );
    });
}

#[test]
fn connections_over_the_limit_get_503_and_a_freed_slot_is_served_again() {
    let bin = demo_or_skip!();
    support::watchdog("connection limit", Duration::from_secs(60), || {
        let dir = TempDir::new("conn-limit");
        let mut flags = QUICK.to_vec();
        flags.extend(["--max-connections", "4"]);
        let server = Server::start(&bin, &dir.db(), &flags);

        let mut held: Vec<Client> = (0..4).map(|_| server.client()).collect();
        for c in &mut held {
            // A served request proves the connection was accepted and counted.
            assert_eq!(c.get("/healthz").status, 200);
        }
        let mut extra = server.client();
        extra.send_raw(&request_bytes("GET", "/healthz", None));
        let refused = extra.read_response().expect("a 503 answer");
        assert_eq!(refused.status, 503, "{}", refused.body);

        drop(held.pop());
        let start = Instant::now();
        loop {
            let mut again = server.client();
            again.send_raw(&request_bytes("GET", "/healthz", None));
            match again.read_response() {
                Some(r) if r.status == 200 => break,
                _ => assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "a freed slot was not given back"
                ),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for c in &mut held {
            assert_eq!(c.get("/healthz").status, 200, "held connections still work");
        }
    });
}

#[test]
fn keep_alive_serves_many_requests_and_pipelined_ones_in_order() {
    let bin = demo_or_skip!();
    support::watchdog("keep-alive", Duration::from_secs(60), || {
        let dir = TempDir::new("keep-alive");
        let server = Server::start(&bin, &dir.db(), &QUICK);
        let mut c = server.client();
        let mut ids = Vec::new();
        for i in 0..50 {
            let resp = c.post("/orders", &order("coffee", 1, &format!("{i} Bean St")));
            assert_eq!(resp.status, 201, "{}", resp.body);
            assert_eq!(resp.header("connection"), Some("keep-alive"));
            ids.push(resp.json()["id"].as_u64().unwrap());
        }
        let mut sorted = ids.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), 50, "ids are unique");

        let mut batch = Vec::new();
        for id in &ids[..5] {
            batch.extend(request_bytes("GET", &format!("/orders/{id}"), None));
        }
        batch.extend(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
        c.send_raw(&batch);
        for id in &ids[..5] {
            let resp = c.read_response().expect("pipelined response");
            assert_eq!(resp.json()["id"].as_u64(), Some(*id));
        }
        let last = c.read_response().expect("the last response");
        assert_eq!(last.header("connection"), Some("close"));
        assert!(c.closed_within(Duration::from_secs(5)));

        // A client that waits for `100 Continue` before sending its body gets it.
        let mut c = server.client();
        place_after_100_continue(&mut c);

        for id in &ids {
            let done = wait_for_status(&mut c, *id, "delivered", Duration::from_secs(20));
            assert_eq!(history(&done), FULL_PATH);
        }
    });
}

#[test]
fn a_courier_who_does_not_answer_in_time_is_skipped_for_the_next() {
    let bin = demo_or_skip!();
    support::watchdog("courier skip", Duration::from_secs(90), || {
        let dir = TempDir::new("courier-skip");
        let flags = [
            "--shards",
            "1",
            "--courier-delay-ms",
            "0",
            "--travel-ms",
            "0",
            "--courier-ignore-percent",
            "50",
            "--courier-timeout-ms",
            "100",
            "--couriers-per-zone",
            "4",
        ];
        let server = Server::start(&bin, &dir.db(), &flags);
        let mut c = server.client();
        let ids: Vec<u64> = (0..16)
            .map(|i| {
                let resp = c.post("/orders", &order("umbrella", 1, &format!("{i} Rain Road")));
                assert_eq!(resp.status, 201, "{}", resp.body);
                resp.json()["id"].as_u64().unwrap()
            })
            .collect();
        let mut skipped_then_assigned = 0;
        for id in ids {
            let done = wait_for_status(&mut c, id, "delivered", Duration::from_secs(30));
            let h = done["history"].as_array().unwrap();
            let assigned = h.iter().find(|e| e["status"] == "assigned");
            if let Some(detail) = assigned.and_then(|a| a["detail"].as_str()) {
                if detail.contains("skipped") {
                    skipped_then_assigned += 1;
                }
            }
        }
        assert!(
            skipped_then_assigned > 0,
            "no order went to a second courier"
        );
        let metrics = c.get("/metrics").body;
        let skips: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("delivery_courier_skips_total "))
            .and_then(|v| v.parse().ok())
            .expect("skip counter");
        assert!(skips >= skipped_then_assigned, "{metrics}");
    });
}

#[test]
fn an_order_no_courier_accepts_fails_with_the_reason_and_returns_its_stock() {
    let bin = demo_or_skip!();
    support::watchdog("no courier", Duration::from_secs(60), || {
        let dir = TempDir::new("no-courier");
        let flags = [
            "--shards",
            "1",
            "--courier-ignore-percent",
            "100",
            "--courier-timeout-ms",
            "50",
            "--couriers-per-zone",
            "2",
        ];
        let server = Server::start(&bin, &dir.db(), &flags);
        let mut c = server.client();
        let resp = c.post("/orders", &order("telescope", 5, "Nowhere 1"));
        assert_eq!(resp.status, 201, "{}", resp.body);
        let id = resp.json()["id"].as_u64().unwrap();
        assert_eq!(c.post("/orders", &order("telescope", 1, "x")).status, 409);
        let done = wait_for_status(&mut c, id, "failed", Duration::from_secs(20));
        assert_eq!(done["status"], "failed");
        let reason = done["history"].as_array().unwrap().last().unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(reason.contains("no courier"), "{reason}");
        assert_eq!(history(&done), ["placed", "accepted", "failed"]);
        // The reserved telescopes are back in stock.
        let again = c.post("/orders", &order("telescope", 5, "Nowhere 2"));
        assert_eq!(again.status, 201, "{}", again.body);
    });
}

#[test]
fn sigint_exits_zero_and_a_restart_keeps_every_order_and_continues_ids() {
    let bin = demo_or_skip!();
    support::watchdog("sigint", Duration::from_secs(60), || {
        let dir = TempDir::new("sigint");
        let mut server = Server::start(&bin, &dir.db(), &QUICK);
        let mut c = server.client();
        let ids: Vec<u64> = (0..20)
            .map(|i| {
                let resp = c.post("/orders", &order("book", 1, &format!("{i} Quiet St")));
                assert_eq!(resp.status, 201);
                resp.json()["id"].as_u64().unwrap()
            })
            .collect();
        drop(c);
        let status = server.stop_with(nix::sys::signal::Signal::SIGINT);
        assert!(status.success(), "exit {status}: {}", server.output());
        assert!(
            server.output().contains("stopped cleanly"),
            "{}",
            server.output()
        );

        let server = Server::start(&bin, &dir.db(), &QUICK);
        // A client that waits for `100 Continue` before sending its body gets it.
        let mut c = server.client();
        place_after_100_continue(&mut c);

        for id in &ids {
            let done = wait_for_status(&mut c, *id, "delivered", Duration::from_secs(20));
            assert_eq!(history(&done), FULL_PATH, "order {id}");
        }
        let next = c.post("/orders", &order("book", 1, "After Restart 1"));
        assert!(next.json()["id"].as_u64().unwrap() > *ids.iter().max().unwrap());
    });
}

/// Places an order the way a client that sends `Expect: 100-continue` does: the head, then the
/// body only after the server's `100 Continue`.
fn place_after_100_continue(c: &mut Client) {
    let body = order("coffee", 1, "100 Continue Court");
    c.send_raw(
        format!(
            "POST /orders HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(c.read_response().expect("100 Continue").status, 100);
    c.send_raw(body.as_bytes());
    assert_eq!(c.read_response().expect("the answer").status, 201);
}
