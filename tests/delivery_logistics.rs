//! The delivery demo against logistics services that misbehave (`--logistics-addr`): one that
//! hangs, one that speaks garbage, one that is not there, and one that fails once and then
//! works. Failed calls are retried a bounded number of times, then the order fails with the
//! reason; nothing stops the server.

mod delivery_support;
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use delivery_support::{binary, history, order, wait_for_status, Server, TempDir, FULL_PATH};

/// How a fake logistics service treats a connection.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Reads requests, never answers.
    Hang,
    /// Answers every line with nonsense.
    Garbage,
    /// Garbage on the first connection, the real protocol on later ones.
    FailOnceThenWork,
    /// The real protocol, but the connection is closed after each request's last reply
    /// (as a service does with idle connections).
    CloseAfterEachRequest,
}

/// A fake logistics service on a free port, on its own threads; stops on drop.
struct FakeLogistics {
    addr: String,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FakeLogistics {
    fn start(behaviour: Behaviour) -> FakeLogistics {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (connections.clone(), stop.clone());
        std::thread::spawn(move || {
            while !halt.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let n = count.fetch_add(1, Ordering::SeqCst);
                        let halt = halt.clone();
                        std::thread::spawn(move || serve(stream, behaviour, n, &halt));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeLogistics {
            addr,
            connections,
            stop,
        }
    }
}

impl Drop for FakeLogistics {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(stream: TcpStream, behaviour: Behaviour, nth: usize, halt: &AtomicBool) {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while !halt.load(Ordering::SeqCst) {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(_) => continue,
        }
        let reply = match behaviour {
            Behaviour::Hang => continue,
            Behaviour::Garbage => "\u{1F916} HELLO?? 42 garbage\n".to_owned(),
            Behaviour::FailOnceThenWork if nth == 0 => "what\n".to_owned(),
            Behaviour::FailOnceThenWork | Behaviour::CloseAfterEachRequest => {
                proper_reply(line.trim())
            }
        };
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
        let last_of_request = line.starts_with("COURIER") || line.starts_with("SCHEDULE");
        if matches!(behaviour, Behaviour::CloseAfterEachRequest) && last_of_request {
            return;
        }
    }
}

fn proper_reply(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["DEPOT", zone] => format!("DEPOT Test depot {zone}|+1-555-0000\n"),
        ["ASSIGN", id, ..] => format!("ASSIGNED {id} PTEST\n"),
        ["COURIER", id, ..] => format!("OK {id}\n"),
        ["SCHEDULE", id] => format!("SCHEDULED {id} slot-test\n"),
        _ => "ERR ?\n".to_owned(),
    }
}

fn flags(logistics: &str) -> Vec<String> {
    [
        "--shards",
        "1",
        "--courier-delay-ms",
        "0",
        "--travel-ms",
        "0",
        "--courier-ignore-percent",
        "0",
        "--logistics-timeout-ms",
        "200",
        "--logistics-retries",
        "2",
        "--logistics-addr",
        logistics,
    ]
    .map(String::from)
    .to_vec()
}

/// Places one order against `logistics` and returns the failure reason it ends with.
fn failure_reason(logistics: &str) -> (String, String) {
    let bin = binary().expect("checked by the caller");
    let dir = TempDir::new("logistics");
    let flags = flags(logistics);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start(&bin, &dir.db(), &flags);
    let mut c = server.client();
    let resp = c.post("/orders", &order("lamp", 2, "7 Depot Way"));
    assert_eq!(resp.status, 201, "{}", resp.body);
    let id = resp.json()["id"].as_u64().unwrap();
    let done = wait_for_status(&mut c, id, "failed", Duration::from_secs(20));
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(
        history(&done),
        ["placed", "accepted", "assigned", "slip_filled", "failed"]
    );
    let reason = done["history"].as_array().unwrap().last().unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    // Read before the next order can add retries of its own.
    let metrics = c.get("/metrics").body;
    assert!(
        metrics.contains("delivery_logistics_retries_total 2"),
        "two retries after the first attempt: {metrics}"
    );
    // The server is unharmed and still takes orders.
    assert_eq!(c.get("/healthz").status, 200);
    assert_eq!(
        c.post("/orders", &order("lamp", 1, "8 Depot Way")).status,
        201
    );
    (reason, server.output())
}

macro_rules! demo_or_skip {
    () => {
        if binary().is_none() {
            println!("skipped: examples/delivery is not built (run `cargo test`)");
            return;
        }
    };
}

#[test]
fn a_logistics_service_that_hangs_is_retried_then_the_order_fails_timed_out() {
    demo_or_skip!();
    support::watchdog("hanging logistics", Duration::from_secs(60), || {
        let fake = FakeLogistics::start(Behaviour::Hang);
        let (reason, output) = failure_reason(&fake.addr);
        assert!(reason.contains("after 3 attempts"), "{reason}");
        assert!(reason.contains("timed out"), "{reason}");
        assert!(
            fake.connections.load(Ordering::SeqCst) >= 3,
            "a fresh connection per attempt"
        );
        assert!(!output.contains("panicked"), "{output}");
    });
}

#[test]
fn a_logistics_service_that_speaks_garbage_is_retried_then_the_order_fails_with_it() {
    demo_or_skip!();
    support::watchdog("garbage logistics", Duration::from_secs(60), || {
        let fake = FakeLogistics::start(Behaviour::Garbage);
        let (reason, output) = failure_reason(&fake.addr);
        assert!(reason.contains("after 3 attempts"), "{reason}");
        assert!(reason.contains("unexpected reply"), "{reason}");
        assert!(
            reason.contains("HELLO??"),
            "the reason quotes the reply: {reason}"
        );
        assert!(!output.contains("panicked"), "{output}");
    });
}

#[test]
fn a_logistics_service_that_is_not_there_fails_the_order_with_the_connect_error() {
    demo_or_skip!();
    support::watchdog("absent logistics", Duration::from_secs(60), || {
        // A port that was free a moment ago: nothing listens there.
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        let (reason, _) = failure_reason(&addr);
        assert!(reason.contains("connect to"), "{reason}");
    });
}

#[test]
fn a_logistics_call_that_fails_once_is_retried_and_the_order_is_delivered() {
    demo_or_skip!();
    support::watchdog("flaky logistics", Duration::from_secs(60), || {
        let bin = binary().unwrap();
        let fake = FakeLogistics::start(Behaviour::FailOnceThenWork);
        let dir = TempDir::new("flaky");
        let flags = flags(&fake.addr);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let server = Server::start(&bin, &dir.db(), &flags);
        let mut c = server.client();
        let resp = c.post("/orders", &order("book", 1, "9 Retry Row"));
        assert_eq!(resp.status, 201, "{}", resp.body);
        let id = resp.json()["id"].as_u64().unwrap();
        let done = wait_for_status(&mut c, id, "delivered", Duration::from_secs(20));
        assert_eq!(history(&done), FULL_PATH, "{done}");
        let handed = &done["history"].as_array().unwrap()[4];
        assert!(
            handed["detail"].as_str().unwrap().contains("Test depot"),
            "{handed}"
        );
        let metrics = c.get("/metrics").body;
        assert!(
            metrics.contains("delivery_logistics_retries_total 1"),
            "{metrics}"
        );
    });
}

#[test]
fn a_pooled_connection_the_service_closed_is_replaced_without_counting_a_retry() {
    demo_or_skip!();
    support::watchdog("stale pooled connection", Duration::from_secs(60), || {
        let bin = binary().unwrap();
        let fake = FakeLogistics::start(Behaviour::CloseAfterEachRequest);
        let dir = TempDir::new("stale");
        let flags = flags(&fake.addr);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let server = Server::start(&bin, &dir.db(), &flags);
        let mut c = server.client();
        for i in 0..3 {
            let resp = c.post("/orders", &order("book", 1, &format!("{i} Closed Lane")));
            assert_eq!(resp.status, 201, "{}", resp.body);
            let id = resp.json()["id"].as_u64().unwrap();
            let done = wait_for_status(&mut c, id, "delivered", Duration::from_secs(20));
            assert_eq!(history(&done), FULL_PATH, "{done}");
        }
        // Two requests per order, each on a connection of its own in the end.
        assert!(fake.connections.load(Ordering::SeqCst) >= 6);
        let metrics = c.get("/metrics").body;
        assert!(
            metrics.contains("delivery_logistics_retries_total 0"),
            "{metrics}"
        );
    });
}
