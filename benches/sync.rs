//! Local sync primitives: ringloop's `sync` against tokio's on a `current_thread` runtime.
//!
//! Both runtimes run the same workload in the same process, interleaved round by round
//! (ringloop, tokio, ringloop, tokio, ...); each round runs inside one `block_on` and times
//! only the workload. The table shows the median round of each, per operation, and how
//! many times faster ringloop is (tokio time / ringloop time).
//!
//! | workload | one operation is |
//! | --- | --- |
//! | `mpsc ping-pong` | a round trip between two tasks over two bounded channels (capacity 1) |
//! | `mpsc one-way` | one message from a producer task to a consumer task (capacity 1024), 10M messages |
//! | `broadcast fan-out` | one delivery to one of 1,000 subscriber tasks (capacity 1024; the sender, a task, sends 512-message bursts and stays at most one burst ahead of the slowest subscriber) |
//! | `Notify ping-pong` | a round trip between two tasks through two `Notify`s (`notify_one` / `notified`) |
//!
//! How to run:
//!
//! ```text
//! cargo bench --bench sync                           # full: 7 rounds, 10M one-way messages
//! RINGLOOP_BENCH_QUICK=1 cargo bench --bench sync    # quick: 3 rounds, 1M (under a minute)
//! cargo bench --bench sync -- --quick                # the same
//! ```
//!
//! Under `cargo test --benches` (no `--bench` flag) it runs each workload once, tiny, as a
//! smoke test.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sizes of one run.
#[derive(Clone, Copy)]
struct Sizes {
    rounds: usize,
    ping_pongs: u64,
    one_way: u64,
    fan_out_subscribers: u64,
    fan_out_messages: u64,
    notify_ping_pongs: u64,
}

const FULL: Sizes = Sizes {
    rounds: 7,
    ping_pongs: 1_000_000,
    one_way: 10_000_000,
    fan_out_subscribers: 1_000,
    fan_out_messages: 10_000,
    notify_ping_pongs: 1_000_000,
};

const QUICK: Sizes = Sizes {
    rounds: 3,
    ping_pongs: 200_000,
    one_way: 1_000_000,
    fan_out_subscribers: 1_000,
    fan_out_messages: 1_000,
    notify_ping_pongs: 200_000,
};

const SMOKE: Sizes = Sizes {
    rounds: 1,
    ping_pongs: 100,
    one_way: 1_000,
    fan_out_subscribers: 10,
    fan_out_messages: 100,
    notify_ping_pongs: 100,
};

const FAN_OUT_CAPACITY: usize = 1024;
const FAN_OUT_BURST: u64 = 512;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = std::env::var_os("RINGLOOP_BENCH_QUICK").is_some_and(|v| v != "0")
        || args.iter().any(|a| a == "--quick");
    let sizes = if !args.iter().any(|a| a == "--bench") {
        SMOKE
    } else if quick {
        QUICK
    } else {
        FULL
    };

    let ringloop = ringloop::Runtime::new().expect("ringloop runtime");
    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");

    type Workload<'a> = (
        &'static str,
        u64,
        Box<dyn Fn() -> Duration + 'a>,
        Box<dyn Fn() -> Duration + 'a>,
    );
    let workloads: Vec<Workload<'_>> = vec![
        (
            "mpsc ping-pong (round trip)",
            sizes.ping_pongs,
            Box::new(|| ringloop.block_on(rl::ping_pong(sizes.ping_pongs))),
            Box::new(|| tokio.block_on(tk::ping_pong(sizes.ping_pongs))),
        ),
        (
            "mpsc one-way (message)",
            sizes.one_way,
            Box::new(|| ringloop.block_on(rl::one_way(sizes.one_way))),
            Box::new(|| tokio.block_on(tk::one_way(sizes.one_way))),
        ),
        (
            "broadcast fan-out to 1,000 (delivery)",
            sizes.fan_out_subscribers * sizes.fan_out_messages,
            Box::new(|| {
                ringloop.block_on(rl::fan_out(
                    sizes.fan_out_subscribers,
                    sizes.fan_out_messages,
                ))
            }),
            Box::new(|| {
                tokio.block_on(tk::fan_out(
                    sizes.fan_out_subscribers,
                    sizes.fan_out_messages,
                ))
            }),
        ),
        (
            "Notify ping-pong (round trip)",
            sizes.notify_ping_pongs,
            Box::new(|| ringloop.block_on(rl::notify_ping_pong(sizes.notify_ping_pongs))),
            Box::new(|| tokio.block_on(tk::notify_ping_pong(sizes.notify_ping_pongs))),
        ),
    ];

    println!(
        "sync primitives, ringloop vs tokio current_thread, median of {} interleaved rounds",
        sizes.rounds
    );
    println!();
    println!("| workload (per op) | ops per round | ringloop | tokio | ringloop speedup |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, ops, run_ringloop, run_tokio) in &workloads {
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..sizes.rounds {
            ours.push(run_ringloop());
            theirs.push(run_tokio());
        }
        let ours = per_op(median(ours), *ops);
        let theirs = per_op(median(theirs), *ops);
        println!(
            "| {name} | {ops} | {ours:.1} ns | {theirs:.1} ns | {:.2}x |",
            theirs / ours
        );
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn per_op(time: Duration, ops: u64) -> f64 {
    time.as_nanos() as f64 / ops as f64
}

/// The workloads on ringloop: local (`Rc`) primitives, `ringloop::spawn`.
mod rl {
    use super::*;
    use ringloop::sync::{broadcast, mpsc, Notify};

    pub(super) async fn ping_pong(n: u64) -> Duration {
        let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
        let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
        let echo = ringloop::spawn(async move {
            while let Some(v) = ping_rx.recv().await {
                pong_tx.send(v).await.unwrap();
            }
        });
        let start = Instant::now();
        for i in 0..n {
            ping_tx.send(i).await.unwrap();
            assert_eq!(pong_rx.recv().await, Some(i));
        }
        let elapsed = start.elapsed();
        drop(ping_tx);
        echo.await.unwrap();
        elapsed
    }

    pub(super) async fn one_way(n: u64) -> Duration {
        let (tx, mut rx) = mpsc::channel::<u64>(1024);
        let start = Instant::now();
        let producer = ringloop::spawn(async move {
            for i in 0..n {
                tx.send(i).await.unwrap();
            }
        });
        let mut sum = 0u64;
        while let Some(v) = rx.recv().await {
            sum = sum.wrapping_add(v);
        }
        let elapsed = start.elapsed();
        producer.await.unwrap();
        assert_eq!(sum, n * (n - 1) / 2);
        elapsed
    }

    pub(super) async fn fan_out(subscribers: u64, messages: u64) -> Duration {
        let (tx, rx) = broadcast::channel::<u64>(FAN_OUT_CAPACITY);
        // Bursts each subscriber has read to the end: the sender never gets more than one
        // burst ahead, so nobody lags whatever the scheduler's order.
        let bursts_read = Rc::new(Cell::new(0u64));
        let tasks: Vec<_> = (0..subscribers)
            .map(|_| {
                let mut rx = rx.resubscribe();
                let bursts_read = bursts_read.clone();
                ringloop::spawn(async move {
                    let mut got = 0u64;
                    while let Ok(i) = rx.recv().await {
                        got += 1;
                        if i % FAN_OUT_BURST == FAN_OUT_BURST - 1 {
                            bursts_read.set(bursts_read.get() + 1);
                        }
                    }
                    got
                })
            })
            .collect();
        drop(rx);
        ringloop::task::yield_now().await;
        let start = Instant::now();
        ringloop::spawn(async move {
            for i in 0..messages {
                tx.send(i).unwrap();
                if i % FAN_OUT_BURST == FAN_OUT_BURST - 1 {
                    let bursts = (i + 1) / FAN_OUT_BURST;
                    while bursts_read.get() < (bursts - 1) * subscribers {
                        ringloop::task::yield_now().await;
                    }
                }
            }
        })
        .await
        .unwrap();
        for task in tasks {
            assert_eq!(task.await.unwrap(), messages, "a subscriber lagged");
        }
        start.elapsed()
    }

    pub(super) async fn notify_ping_pong(n: u64) -> Duration {
        let ping = Rc::new(Notify::new());
        let pong = Rc::new(Notify::new());
        let echo = ringloop::spawn({
            let (ping, pong) = (ping.clone(), pong.clone());
            async move {
                for _ in 0..n {
                    ping.notified().await;
                    pong.notify_one();
                }
            }
        });
        let start = Instant::now();
        for _ in 0..n {
            ping.notify_one();
            pong.notified().await;
        }
        let elapsed = start.elapsed();
        echo.await.unwrap();
        elapsed
    }
}

/// The same workloads on tokio's `current_thread` runtime and `tokio::sync`.
mod tk {
    use super::*;
    use tokio::sync::{broadcast, mpsc, Notify};

    pub(super) async fn ping_pong(n: u64) -> Duration {
        let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
        let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
        let echo = tokio::spawn(async move {
            while let Some(v) = ping_rx.recv().await {
                pong_tx.send(v).await.unwrap();
            }
        });
        let start = Instant::now();
        for i in 0..n {
            ping_tx.send(i).await.unwrap();
            assert_eq!(pong_rx.recv().await, Some(i));
        }
        let elapsed = start.elapsed();
        drop(ping_tx);
        echo.await.unwrap();
        elapsed
    }

    pub(super) async fn one_way(n: u64) -> Duration {
        let (tx, mut rx) = mpsc::channel::<u64>(1024);
        let start = Instant::now();
        let producer = tokio::spawn(async move {
            for i in 0..n {
                tx.send(i).await.unwrap();
            }
        });
        let mut sum = 0u64;
        while let Some(v) = rx.recv().await {
            sum = sum.wrapping_add(v);
        }
        let elapsed = start.elapsed();
        producer.await.unwrap();
        assert_eq!(sum, n * (n - 1) / 2);
        elapsed
    }

    pub(super) async fn fan_out(subscribers: u64, messages: u64) -> Duration {
        let (tx, rx) = broadcast::channel::<u64>(FAN_OUT_CAPACITY);
        let bursts_read = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..subscribers)
            .map(|_| {
                let mut rx = rx.resubscribe();
                let bursts_read = bursts_read.clone();
                tokio::spawn(async move {
                    let mut got = 0u64;
                    while let Ok(i) = rx.recv().await {
                        got += 1;
                        if i % FAN_OUT_BURST == FAN_OUT_BURST - 1 {
                            bursts_read.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    got
                })
            })
            .collect();
        drop(rx);
        tokio::task::yield_now().await;
        let start = Instant::now();
        tokio::spawn(async move {
            for i in 0..messages {
                tx.send(i).unwrap();
                if i % FAN_OUT_BURST == FAN_OUT_BURST - 1 {
                    let bursts = (i + 1) / FAN_OUT_BURST;
                    while bursts_read.load(Ordering::Relaxed) < (bursts - 1) * subscribers {
                        tokio::task::yield_now().await;
                    }
                }
            }
        })
        .await
        .unwrap();
        for task in tasks {
            assert_eq!(task.await.unwrap(), messages, "a subscriber lagged");
        }
        start.elapsed()
    }

    pub(super) async fn notify_ping_pong(n: u64) -> Duration {
        let ping = Arc::new(Notify::new());
        let pong = Arc::new(Notify::new());
        let echo = tokio::spawn({
            let (ping, pong) = (ping.clone(), pong.clone());
            async move {
                for _ in 0..n {
                    ping.notified().await;
                    pong.notify_one();
                }
            }
        });
        let start = Instant::now();
        for _ in 0..n {
            ping.notify_one();
            pong.notified().await;
        }
        let elapsed = start.elapsed();
        echo.await.unwrap();
        elapsed
    }
}
