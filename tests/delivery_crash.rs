//! Durability of the delivery demo: `kill -9` in the middle of a load, restart on the same
//! database, and every order that got a `201` is there, the unfinished ones resume from their
//! last stored stage, and none is delivered twice.

mod delivery_support;
mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use delivery_support::{binary, history, order, Client, Server, TempDir, FULL_PATH};

#[test]
fn every_acknowledged_order_survives_kill_9_and_is_delivered_exactly_once_after_restart() {
    let Some(bin) = binary() else {
        println!("skipped: examples/delivery is not built (run `cargo test`)");
        return;
    };
    support::watchdog("crash", Duration::from_secs(180), || {
        let dir = TempDir::new("crash");
        // Real delays, so that many orders are between stages when the process dies.
        let slow = [
            "--shards",
            "2",
            "--courier-delay-ms",
            "20",
            "--travel-ms",
            "150",
            "--courier-ignore-percent",
            "0",
        ];
        let mut server = Server::start(&bin, &dir.db(), &slow);

        let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let loaders: Vec<_> = (0..4)
            .map(|t| {
                let (acked, stop, addr) = (acked.clone(), stop.clone(), server.addr.clone());
                std::thread::spawn(move || {
                    let mut c = Client::connect(&addr);
                    let mut i = 0;
                    while !stop.load(Ordering::SeqCst) {
                        i += 1;
                        let body = order("book", 1, &format!("{t}-{i} Crash Court"));
                        c.send_raw(&delivery_support::request_bytes(
                            "POST",
                            "/orders",
                            Some(&body),
                        ));
                        // The server dies at some point: no answer means no promise.
                        let Some(resp) = c.read_response() else {
                            return;
                        };
                        if resp.status == 201 {
                            acked
                                .lock()
                                .unwrap()
                                .push(resp.json()["id"].as_u64().unwrap());
                        }
                    }
                })
            })
            .collect();

        let start = Instant::now();
        while acked.lock().unwrap().len() < 300 && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(10));
        }
        server.stop_with(nix::sys::signal::Signal::SIGKILL);
        stop.store(true, Ordering::SeqCst);
        for loader in loaders {
            loader.join().unwrap();
        }
        let acked = acked.lock().unwrap().clone();
        assert!(
            acked.len() >= 100,
            "only {} orders acknowledged before the kill",
            acked.len()
        );

        // What the dead process left on disk: every stored transition, with its time.
        let before = stored_transitions(&dir.db());
        let mid_pipeline = before
            .values()
            .filter(|stages| {
                let last = stages
                    .keys()
                    .filter_map(|s| FULL_PATH.iter().position(|p| p == s))
                    .max();
                last.is_some_and(|i| i > 1 && i < FULL_PATH.len() - 1)
            })
            .count();
        assert!(
            mid_pipeline > 0,
            "no order was past `accepted` and short of `delivered`"
        );
        for id in &acked {
            assert!(
                before.contains_key(id),
                "acknowledged order {id} is not in the database"
            );
        }

        let server = Server::start(&bin, &dir.db(), &["--shards", "2", "--instant"]);
        let mut c = server.client();
        let resumed: u64 = {
            let start = Instant::now();
            loop {
                let out = server.output();
                if let Some(n) = out.lines().find_map(|l| {
                    l.split(", ")
                        .find_map(|p| p.strip_suffix(" order(s) resumed"))
                }) {
                    break n.parse().unwrap();
                }
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "no startup line: {out}"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        println!(
            "{} orders acknowledged before kill -9; {mid_pipeline} between stages; {resumed} resumed",
            acked.len()
        );
        assert!(resumed > 0, "the kill left no order in flight to resume");

        // Every order the first run stored reaches a terminal status.
        let start = Instant::now();
        loop {
            let pending: usize = [
                "placed",
                "accepted",
                "assigned",
                "slip_filled",
                "handed_to_logistics",
            ]
            .iter()
            .map(|s| {
                c.get(&format!("/orders?status={s}&limit=10000"))
                    .json()
                    .as_array()
                    .unwrap()
                    .len()
            })
            .sum();
            if pending == 0 {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{pending} orders still unfinished after restart"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        for id in &acked {
            let resp = c.get(&format!("/orders/{id}"));
            assert_eq!(resp.status, 200, "acknowledged order {id} is missing");
            let o = resp.json();
            assert_eq!(o["status"], "delivered", "order {id}: {o}");
            // One entry per stage, `delivered` once: nothing replayed twice.
            assert_eq!(history(&o), FULL_PATH, "order {id}: {o}");
            // The courier who took it carried it through, across the restart too.
            let couriers: Vec<&str> = o["history"].as_array().unwrap()[2..5]
                .iter()
                .map(|h| courier_in(h["detail"].as_str().unwrap_or("")))
                .collect();
            assert!(
                couriers.iter().all(|c| !c.is_empty() && *c == couriers[0]),
                "order {id}: couriers {couriers:?}"
            );
            // Resumed, not restarted: the stages stored before the kill kept their times.
            for h in o["history"].as_array().unwrap() {
                let status = h["status"].as_str().unwrap();
                if let Some(at_us) = before[id].get(status) {
                    assert_eq!(
                        h["at"].as_f64().unwrap(),
                        *at_us as f64 / 1000.0,
                        "order {id}: `{status}` was stored again after the restart"
                    );
                }
            }
        }
        let failed = c.get("/orders?status=failed&limit=10000").json();
        assert_eq!(failed, serde_json::json!([]), "no order failed");
    });
}

/// Order id → status → time stored (µs), read straight from the database file.
fn stored_transitions(db: &std::path::Path) -> HashMap<u64, HashMap<String, i64>> {
    let conn = rusqlite::Connection::open(db).expect("open the database left by kill -9");
    let mut stmt = conn
        .prepare("SELECT order_id, status, at_us FROM events")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .unwrap();
    let mut out: HashMap<u64, HashMap<String, i64>> = HashMap::new();
    for row in rows {
        let (id, status, at) = row.unwrap();
        out.entry(id).or_default().insert(status, at);
    }
    out
}

/// The NAME in a detail's "courier NAME ...".
fn courier_in(detail: &str) -> &str {
    detail
        .split("courier ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("")
}
