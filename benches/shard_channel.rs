//! The cross-shard channel benchmark: `ringloop::shard::channel` between two shards against
//! `tokio::sync::mpsc` between two current_thread runtimes on two threads, same capacity, same
//! messages, one run, rounds interleaved; reported as ratios.
//!
//! What runs, per round (the order of the runtimes alternates from round to round, so a drift
//! of the machine hits both alike):
//!
//! - **one-way throughput**: the sender (shard 0 / thread 0) sends 1,000,000 `u64`s with
//!   `send(..).await`, the receiver (shard 1 / thread 1) takes them with `recv().await` and
//!   checks their order. Timed on the receiver from a barrier both sides pass to the last
//!   message. tokio runs twice: the bounded `mpsc::channel` of the same capacity, and
//!   `mpsc::unbounded_channel` (no backpressure, for reference).
//! - **ping-pong latency**: two channels; shard 0 sends a number, shard 1 sends it back, and
//!   shard 0 times each round trip (after a warm-up). Mean, p50 and p99 per round trip.
//!
//! Each side is pinned to its own CPU when the process may use two (ringloop through
//! `shard::Builder::pin_cores(true)`, tokio's threads with `sched_setaffinity` to the same
//! CPUs). tokio's runtimes are built with `enable_all()`, as a program with I/O and timers has
//! them. CPU per message is each thread's user + system time (`RUSAGE_THREAD`) over its timed
//! part, both threads added: it shows how much of the time a side spends awake.
//!
//! How to run:
//!
//! ```text
//! cargo bench --bench shard_channel                  # 5 rounds, 100,000 round trips each: ~1 min
//! cargo bench --bench shard_channel -- --quick       # 2 rounds, 20,000 round trips: < 30 s
//! RINGLOOP_BENCH_QUICK=1 cargo bench --bench shard_channel
//! cargo bench --bench shard_channel -- --capacity 128   # another channel capacity (default 1024)
//! ```
//!
//! Output is Markdown: a header (machine, command, pinning), the throughput and latency tables
//! (median of the rounds, with the range), and the issue's targets met or missed: cross-shard
//! throughput at least 2x tokio's bounded mpsc, ping-pong latency at most tokio's.

mod common;

use std::fmt::Write as _;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::sys::resource::{getrusage, UsageWho};
use nix::unistd::Pid;

use common::{cpu_set, load_average, machine, utc_now};

/// Messages per one-way throughput run, both modes.
const MESSAGES: u64 = 1_000_000;
/// Round trips timed per ping-pong run: full, quick.
const TRIPS: (u64, u64) = (100_000, 20_000);
/// Round trips before the timed ones, not recorded.
const WARMUP_TRIPS: u64 = 2_000;
/// Rounds (each runs every variant once): full, quick.
const ROUNDS: (usize, usize) = (5, 2);
/// Channel capacity unless `--capacity` says otherwise.
const DEFAULT_CAPACITY: usize = 1024;
/// A run that takes longer than this has hung: the bench says so and exits.
const RUN_LIMIT: Duration = Duration::from_secs(60);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then only say so.
    if !args.iter().any(|a| a == "--bench") {
        println!("shard_channel bench: not run under `cargo test`; run `cargo bench --bench shard_channel`");
        return;
    }
    let filters: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| !a.starts_with('-') && (*i == 0 || args[i - 1] != "--capacity"))
        .map(|(_, a)| a)
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| "shard_channel".contains(f.as_str())) {
        println!("shard_channel bench: skipped (filtered out)");
        return;
    }
    let env_on = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0");
    let quick = args.iter().any(|a| a == "--quick") || env_on("RINGLOOP_BENCH_QUICK");
    let capacity = match args.iter().position(|a| a == "--capacity") {
        Some(i) => match args.get(i + 1).and_then(|c| c.parse::<usize>().ok()) {
            Some(c) if c > 0 => c,
            _ => {
                eprintln!("shard_channel bench: --capacity takes a positive number");
                std::process::exit(2);
            }
        },
        None => DEFAULT_CAPACITY,
    };
    let config = Config {
        capacity,
        trips: if quick { TRIPS.1 } else { TRIPS.0 },
        rounds: if quick { ROUNDS.1 } else { ROUNDS.0 },
        cpus: pick_cpus(),
        quick,
    };
    if let Err(e) = run(&config) {
        eprintln!("shard_channel bench: {e}");
        std::process::exit(1);
    }
}

struct Config {
    capacity: usize,
    trips: u64,
    rounds: usize,
    /// The two CPUs the sides are pinned to, if the process may use two.
    cpus: Option<[usize; 2]>,
    quick: bool,
}

/// The runtimes and channel kinds measured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Ringloop,
    TokioBounded,
    TokioUnbounded,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Ringloop => "ringloop `shard::channel`",
            Variant::TokioBounded => "tokio `mpsc::channel`",
            Variant::TokioUnbounded => "tokio `mpsc::unbounded_channel`",
        }
    }
}

/// One one-way run.
#[derive(Clone, Copy)]
struct Throughput {
    elapsed: Duration,
    /// Both threads' CPU over their timed parts.
    cpu: Duration,
}

/// One ping-pong run.
struct PingPong {
    /// Round-trip times in ns.
    hist: Histogram<u64>,
    cpu: Duration,
}

fn run(config: &Config) -> Result<(), String> {
    let mut report = String::new();
    header(&mut report, config);
    eprint!("{report}");

    let one_way = [
        Variant::Ringloop,
        Variant::TokioBounded,
        Variant::TokioUnbounded,
    ];
    let mut throughput: Vec<Vec<Throughput>> = vec![Vec::new(); one_way.len()];
    let mut latency: Vec<Vec<PingPong>> = vec![Vec::new(), Vec::new()];
    for round in 0..config.rounds {
        // Alternate who goes first, so that neither always runs on a warmer (or colder) machine.
        let mut order: Vec<usize> = (0..one_way.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for &i in &order {
            let r = match one_way[i] {
                Variant::Ringloop => ringloop_one_way(config)?,
                Variant::TokioBounded => tokio_one_way(config, Some(config.capacity))?,
                Variant::TokioUnbounded => tokio_one_way(config, None)?,
            };
            eprintln!(
                "[round {}/{}] one-way   {:<32} {:>7.1} ns/msg  {:>6.2} M msg/s  cpu {:>6.1} ns/msg",
                round + 1,
                config.rounds,
                one_way[i].name(),
                per_msg_ns(r.elapsed),
                MESSAGES as f64 / r.elapsed.as_secs_f64() / 1e6,
                per_msg_ns(r.cpu),
            );
            throughput[i].push(r);
        }
        let mut order = [0, 1];
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let r = if i == 0 {
                ringloop_ping_pong(config)?
            } else {
                tokio_ping_pong(config)?
            };
            eprintln!(
                "[round {}/{}] ping-pong {:<32} mean {:>7.1} us  p50 {:>7.1} us  p99 {:>7.1} us",
                round + 1,
                config.rounds,
                [Variant::Ringloop, Variant::TokioBounded][i].name(),
                r.hist.mean() / 1e3,
                r.hist.value_at_quantile(0.5) as f64 / 1e3,
                r.hist.value_at_quantile(0.99) as f64 / 1e3,
            );
            latency[i].push(r);
        }
    }

    tables(&mut report, config, &one_way, &throughput, &latency);
    println!("{report}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ringloop: two shards of one group.

/// Builds a two-shard group, pinned to the two CPUs when there are two.
fn two_shards(config: &Config) -> Result<ringloop::shard::Shards, String> {
    ringloop::shard::Builder::new()
        .shards(2)
        .pin_cores(config.cpus.is_some())
        .build()
        .map_err(|e| format!("cannot build two shards: {e}"))
}

/// `side` with the bench's time limit: a hung run fails instead of hanging the bench.
async fn bounded<T>(
    side: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    ringloop::time::timeout(RUN_LIMIT, side)
        .await
        .map_err(|_| format!("still running after {RUN_LIMIT:?}"))?
}

/// Takes the shard's own item out of a per-shard slot list, once.
fn take<T>(slots: &Mutex<Vec<Option<T>>>, id: usize) -> Option<T> {
    slots.lock().ok()?.get_mut(id)?.take()
}

fn ringloop_one_way(config: &Config) -> Result<Throughput, String> {
    let (tx, rx) = ringloop::shard::channel::<u64>(config.capacity);
    let tx = Mutex::new(vec![Some(tx), None]);
    let rx = Mutex::new(vec![None, Some(rx)]);
    let start = Arc::new(Barrier::new(2));
    let outputs = two_shards(config)?.run(move |shard| {
        let tx = take(&tx, shard.id());
        let rx = take(&rx, shard.id());
        let start = start.clone();
        bounded(async move {
            // Blocking the shard here is fine: nothing else runs on it yet, and both sides
            // are past their setup when the barrier opens.
            start.wait();
            let cpu = thread_cpu();
            let began = Instant::now();
            if let Some(tx) = tx {
                for i in 0..MESSAGES {
                    if tx.send(i).await.is_err() {
                        return Err("the receiver went away".to_string());
                    }
                }
            }
            if let Some(mut rx) = rx {
                let mut next = 0;
                while let Some(v) = rx.recv().await {
                    if v != next {
                        return Err(format!("message {next} arrived as {v}"));
                    }
                    next += 1;
                }
                if next != MESSAGES {
                    return Err(format!("{next} of {MESSAGES} messages arrived"));
                }
            }
            Ok((began.elapsed(), thread_cpu().saturating_sub(cpu)))
        })
    });
    let mut results = Vec::new();
    for (id, out) in outputs.into_iter().enumerate() {
        match out {
            Ok(Ok(r)) => results.push(r),
            Ok(Err(e)) => return Err(format!("ringloop one-way, shard {id}: {e}")),
            Err(_) => return Err(format!("ringloop one-way: shard {id} panicked")),
        }
    }
    Ok(Throughput {
        elapsed: results[1].0,
        cpu: results[0].1 + results[1].1,
    })
}

fn ringloop_ping_pong(config: &Config) -> Result<PingPong, String> {
    let (ping_tx, ping_rx) = ringloop::shard::channel::<u64>(config.capacity);
    let (pong_tx, pong_rx) = ringloop::shard::channel::<u64>(config.capacity);
    let ends = Mutex::new(vec![
        Some((Some(ping_tx), Some(pong_rx), None, None)),
        Some((None, None, Some(ping_rx), Some(pong_tx))),
    ]);
    let trips = config.trips;
    let start = Arc::new(Barrier::new(2));
    let outputs = two_shards(config)?.run(move |shard| {
        let ends = take(&ends, shard.id());
        let start = start.clone();
        bounded(async move {
            let Some((ping_tx, pong_rx, ping_rx, pong_tx)) = ends else {
                return Err("no channel ends for this shard".to_string());
            };
            start.wait();
            let mut hist = new_histogram();
            let cpu = thread_cpu();
            if let (Some(ping_tx), Some(mut pong_rx)) = (ping_tx, pong_rx) {
                for i in 0..WARMUP_TRIPS + trips {
                    let sent = Instant::now();
                    ping_tx.send(i).await.map_err(|_| "ping: receiver gone")?;
                    if pong_rx.recv().await != Some(i) {
                        return Err(format!("round trip {i}: wrong or missing pong"));
                    }
                    if i >= WARMUP_TRIPS {
                        hist.saturating_record(sent.elapsed().as_nanos() as u64);
                    }
                }
            }
            if let (Some(mut ping_rx), Some(pong_tx)) = (ping_rx, pong_tx) {
                while let Some(v) = ping_rx.recv().await {
                    pong_tx.send(v).await.map_err(|_| "pong: receiver gone")?;
                }
            }
            Ok((hist, thread_cpu().saturating_sub(cpu)))
        })
    });
    let mut results = Vec::new();
    for (id, out) in outputs.into_iter().enumerate() {
        match out {
            Ok(Ok(r)) => results.push(r),
            Ok(Err(e)) => return Err(format!("ringloop ping-pong, shard {id}: {e}")),
            Err(_) => return Err(format!("ringloop ping-pong: shard {id} panicked")),
        }
    }
    let (pong, ping) = (results.pop(), results.pop());
    match (ping, pong) {
        (Some((hist, cpu0)), Some((_, cpu1))) => Ok(PingPong {
            hist,
            cpu: cpu0 + cpu1,
        }),
        _ => Err("ringloop ping-pong: a shard returned nothing".into()),
    }
}

// ---------------------------------------------------------------------------------------------
// tokio: two current_thread runtimes on two threads.

/// Runs `side(i)` on two threads, each pinned like the shards and running a current_thread
/// runtime; returns both outputs (or the first failure).
fn two_tokio_threads<T, F, Fut>(config: &Config, side: F) -> Result<[T; 2], String>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let side = Arc::new(side);
    let deadline = Instant::now() + RUN_LIMIT;
    let threads: Vec<_> = (0..2)
        .map(|i| {
            let side = side.clone();
            let cpu = config.cpus.map(|c| c[i]);
            std::thread::Builder::new()
                .name(format!("tokio-side-{i}"))
                .spawn(move || -> Result<T, String> {
                    if let Some(cpu) = cpu {
                        sched_setaffinity(Pid::from_raw(0), &cpu_set(cpu))
                            .map_err(|e| format!("cannot pin to CPU {cpu}: {e}"))?;
                    }
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| format!("cannot build a tokio runtime: {e}"))?;
                    // The timer is made inside the runtime: tokio's timers need its context.
                    rt.block_on(async {
                        tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), side(i))
                            .await
                    })
                    .map_err(|_| format!("still running after {RUN_LIMIT:?}"))?
                })
                .map_err(|e| format!("cannot spawn a thread: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for t in threads {
        out.push(
            t.join()
                .map_err(|_| "a tokio side panicked".to_string())??,
        );
    }
    out.try_into()
        .map_err(|_| "two threads gave two results".to_string())
}

/// A tokio sender that is bounded or not, so one function drives both.
enum TokioTx {
    Bounded(tokio::sync::mpsc::Sender<u64>),
    Unbounded(tokio::sync::mpsc::UnboundedSender<u64>),
}

enum TokioRx {
    Bounded(tokio::sync::mpsc::Receiver<u64>),
    Unbounded(tokio::sync::mpsc::UnboundedReceiver<u64>),
}

fn tokio_one_way(config: &Config, capacity: Option<usize>) -> Result<Throughput, String> {
    let (tx, rx) = match capacity {
        Some(c) => {
            let (tx, rx) = tokio::sync::mpsc::channel(c);
            (TokioTx::Bounded(tx), TokioRx::Bounded(rx))
        }
        None => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            (TokioTx::Unbounded(tx), TokioRx::Unbounded(rx))
        }
    };
    let tx = Mutex::new(vec![Some(tx), None]);
    let rx = Mutex::new(vec![None, Some(rx)]);
    let start = Arc::new(Barrier::new(2));
    let [sender, receiver] = two_tokio_threads(config, move |i| {
        let tx = take(&tx, i);
        let rx = take(&rx, i);
        let start = start.clone();
        async move {
            start.wait();
            let cpu = thread_cpu();
            let began = Instant::now();
            match tx {
                Some(TokioTx::Bounded(tx)) => {
                    for i in 0..MESSAGES {
                        tx.send(i).await.map_err(|_| "the receiver went away")?;
                    }
                }
                Some(TokioTx::Unbounded(tx)) => {
                    for i in 0..MESSAGES {
                        tx.send(i).map_err(|_| "the receiver went away")?;
                    }
                }
                None => {}
            }
            if let Some(mut rx) = rx {
                let mut next = 0;
                loop {
                    let v = match &mut rx {
                        TokioRx::Bounded(rx) => rx.recv().await,
                        TokioRx::Unbounded(rx) => rx.recv().await,
                    };
                    let Some(v) = v else { break };
                    if v != next {
                        return Err(format!("message {next} arrived as {v}"));
                    }
                    next += 1;
                }
                if next != MESSAGES {
                    return Err(format!("{next} of {MESSAGES} messages arrived"));
                }
            }
            Ok((began.elapsed(), thread_cpu().saturating_sub(cpu)))
        }
    })?;
    Ok(Throughput {
        elapsed: receiver.0,
        cpu: sender.1 + receiver.1,
    })
}

fn tokio_ping_pong(config: &Config) -> Result<PingPong, String> {
    let (ping_tx, ping_rx) = tokio::sync::mpsc::channel::<u64>(config.capacity);
    let (pong_tx, pong_rx) = tokio::sync::mpsc::channel::<u64>(config.capacity);
    let ends = Mutex::new(vec![
        Some((Some(ping_tx), Some(pong_rx), None, None)),
        Some((None, None, Some(ping_rx), Some(pong_tx))),
    ]);
    let trips = config.trips;
    let start = Arc::new(Barrier::new(2));
    let [(hist, cpu0), (_, cpu1)] = two_tokio_threads(config, move |i| {
        let ends = take(&ends, i);
        let start = start.clone();
        async move {
            let Some((ping_tx, pong_rx, ping_rx, pong_tx)) = ends else {
                return Err("no channel ends for this thread".to_string());
            };
            start.wait();
            let mut hist = new_histogram();
            let cpu = thread_cpu();
            if let (Some(ping_tx), Some(mut pong_rx)) = (ping_tx, pong_rx) {
                for i in 0..WARMUP_TRIPS + trips {
                    let sent = Instant::now();
                    ping_tx.send(i).await.map_err(|_| "ping: receiver gone")?;
                    if pong_rx.recv().await != Some(i) {
                        return Err(format!("round trip {i}: wrong or missing pong"));
                    }
                    if i >= WARMUP_TRIPS {
                        hist.saturating_record(sent.elapsed().as_nanos() as u64);
                    }
                }
            }
            if let (Some(mut ping_rx), Some(pong_tx)) = (ping_rx, pong_tx) {
                while let Some(v) = ping_rx.recv().await {
                    pong_tx.send(v).await.map_err(|_| "pong: receiver gone")?;
                }
            }
            Ok((hist, thread_cpu().saturating_sub(cpu)))
        }
    })?;
    Ok(PingPong {
        hist,
        cpu: cpu0 + cpu1,
    })
}

// ---------------------------------------------------------------------------------------------
// Measuring and reporting.

/// A histogram of ns from 1 ns to 10 s, 3 significant digits.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("valid histogram bounds")
}

/// User + system CPU time of the calling thread so far.
fn thread_cpu() -> Duration {
    match getrusage(UsageWho::RUSAGE_THREAD) {
        Ok(u) => {
            let d = |t: nix::sys::time::TimeVal| {
                Duration::new(t.tv_sec().max(0) as u64, (t.tv_usec().max(0) as u32) * 1000)
            };
            d(u.user_time()) + d(u.system_time())
        }
        Err(_) => Duration::ZERO,
    }
}

fn per_msg_ns(d: Duration) -> f64 {
    d.as_nanos() as f64 / MESSAGES as f64
}

/// The first two CPUs this process may run on, if there are two.
fn pick_cpus() -> Option<[usize; 2]> {
    let allowed: Vec<usize> = sched_getaffinity(Pid::from_raw(0))
        .map(|set| {
            (0..CpuSet::count())
                .filter(|&i| set.is_set(i).unwrap_or(false))
                .collect()
        })
        .unwrap_or_default();
    match allowed[..] {
        [a, b, ..] => Some([a, b]),
        _ => None,
    }
}

/// The median of `values` (the mean of the middle two of an even count), and the smallest
/// and largest.
fn median_range(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match (values.first(), values.last()) {
        (Some(&lo), Some(&hi)) => ((values[(n - 1) / 2] + values[n / 2]) / 2.0, lo, hi),
        _ => (f64::NAN, f64::NAN, f64::NAN),
    }
}

fn header(out: &mut String, config: &Config) {
    let _ = writeln!(
        out,
        "## shard channel: ringloop vs tokio mpsc{}\n",
        if config.quick { " (quick mode)" } else { "" }
    );
    let _ = writeln!(out, "- date: {}", utc_now());
    let _ = writeln!(
        out,
        "- machine: {}; load average at start {} (a quiet machine is near 0)",
        machine(),
        load_average()
    );
    let mut command = String::from("cargo bench --bench shard_channel");
    if config.quick || config.capacity != DEFAULT_CAPACITY {
        command.push_str(" --");
    }
    if config.quick {
        command.push_str(" --quick");
    }
    if config.capacity != DEFAULT_CAPACITY {
        let _ = write!(command, " --capacity {}", config.capacity);
    }
    let _ = writeln!(out, "- command: `{command}`");
    let _ = writeln!(
        out,
        "- capacity {} (both bounded channels); {} messages one-way; {} timed round trips \
         after {} warm-up; {} rounds, order alternating",
        config.capacity, MESSAGES, config.trips, WARMUP_TRIPS, config.rounds
    );
    match config.cpus {
        Some([a, b]) => {
            let _ = writeln!(
                out,
                "- pinning: sender / ping side on CPU {a}, receiver / pong side on CPU {b} \
                 (ringloop: `shard::Builder::pin_cores(true)`; tokio: `sched_setaffinity`)"
            );
        }
        None => {
            let _ = writeln!(
                out,
                "- pinning: none (only one CPU available): both sides share it"
            );
        }
    }
    let _ = writeln!(
        out,
        "- tokio: two `new_current_thread().enable_all()` runtimes, one per thread"
    );
    out.push('\n');
}

fn tables(
    out: &mut String,
    config: &Config,
    one_way: &[Variant],
    throughput: &[Vec<Throughput>],
    latency: &[Vec<PingPong>],
) {
    out.push_str(
        "\n### One-way throughput (median of the rounds; range in brackets)\n\n\
         | channel | ns per message | M messages/s | CPU ns per message (both threads) \
         | throughput vs ringloop |\n\
         | --- | ---: | ---: | ---: | ---: |\n",
    );
    // Rates come from the ns figures, so that a row's columns agree with each other.
    let ns =
        |runs: &[Throughput]| median_range(runs.iter().map(|r| per_msg_ns(r.elapsed)).collect());
    let rate = |runs: &[Throughput]| 1e3 / ns(runs).0;
    let ringloop_rate = rate(&throughput[0]);
    for (variant, runs) in one_way.iter().zip(throughput) {
        let (median, lo, hi) = ns(runs);
        let cpu = median_range(runs.iter().map(|r| per_msg_ns(r.cpu)).collect());
        let _ = writeln!(
            out,
            "| {} | {median:.1} [{lo:.1}–{hi:.1}] | {:.2} [{:.2}–{:.2}] | {:.1} | {} |",
            variant.name(),
            1e3 / median,
            1e3 / hi,
            1e3 / lo,
            cpu.0,
            if *variant == Variant::Ringloop {
                "1.00".to_string()
            } else {
                format!("ringloop {:.2}x", ringloop_rate / rate(runs))
            }
        );
    }

    out.push_str(
        "\n### Ping-pong latency per round trip (median of the rounds' figures; range in brackets)\n\n\
         | channel | mean µs | p50 µs | p99 µs | CPU µs per round trip (both threads) |\n\
         | --- | ---: | ---: | ---: | ---: |\n",
    );
    let stat = |runs: &[PingPong], f: &dyn Fn(&PingPong) -> f64| {
        median_range(runs.iter().map(f).collect())
    };
    let trips = config.trips as f64;
    for (i, runs) in latency.iter().enumerate() {
        let mean = stat(runs, &|r| r.hist.mean() / 1e3);
        let p50 = stat(runs, &|r| r.hist.value_at_quantile(0.5) as f64 / 1e3);
        let p99 = stat(runs, &|r| r.hist.value_at_quantile(0.99) as f64 / 1e3);
        let cpu = stat(runs, &|r| r.cpu.as_secs_f64() * 1e6 / trips);
        let _ = writeln!(
            out,
            "| {} | {:.1} [{:.1}–{:.1}] | {:.1} [{:.1}–{:.1}] | {:.1} [{:.1}–{:.1}] | {:.1} |",
            [Variant::Ringloop, Variant::TokioBounded][i].name(),
            mean.0,
            mean.1,
            mean.2,
            p50.0,
            p50.1,
            p50.2,
            p99.0,
            p99.1,
            p99.2,
            cpu.0
        );
    }

    // Paired by round (the two ran back to back), so a drift of the machine between rounds
    // cancels out of each ratio; the median of those ratios is the verdict.
    let paired = |f: &dyn Fn(usize) -> f64| median_range((0..config.rounds).map(f).collect());
    let thr =
        paired(&|k| per_msg_ns(throughput[1][k].elapsed) / per_msg_ns(throughput[0][k].elapsed));
    let lat = |q: Option<f64>| {
        paired(&|k| {
            let (r, t) = (&latency[0][k].hist, &latency[1][k].hist);
            match q {
                None => r.mean() / t.mean(),
                Some(q) => r.value_at_quantile(q) as f64 / t.value_at_quantile(q) as f64,
            }
        })
    };
    let (mean, p50, p99) = (lat(None), lat(Some(0.5)), lat(Some(0.99)));
    out.push_str(
        "\n### Targets (issue 4): ratios paired by round, median [range]\n\n\
         | target | measured | verdict |\n| --- | --- | --- |\n",
    );
    let _ = writeln!(
        out,
        "| cross-shard throughput ≥ 2x tokio's bounded mpsc across threads | {:.2}x [{:.2}–{:.2}] | {} |",
        thr.0,
        thr.1,
        thr.2,
        if thr.0 >= 2.0 { "met" } else { "**missed**" }
    );
    let verdict = if mean.0 <= 1.0 && p50.0 <= 1.0 {
        "met"
    } else if mean.0 <= 1.05 && p50.0 <= 1.05 {
        "tie: within 5 %, the noise of this machine"
    } else {
        "**missed**"
    };
    let _ = writeln!(
        out,
        "| ping-pong latency ≤ tokio's | ringloop / tokio: mean {:.2}x [{:.2}–{:.2}], p50 {:.2}x [{:.2}–{:.2}], p99 {:.2}x [{:.2}–{:.2}] | {verdict} |",
        mean.0, mean.1, mean.2, p50.0, p50.1, p50.2, p99.0, p99.1, p99.2,
    );
}
