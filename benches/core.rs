//! Core scheduler and timer micro-benchmarks: ringloop against tokio and monoio, side by side.
//!
//! Every criterion group runs the same workload on three single-threaded runtimes, with the
//! benchmark ids `ringloop`, `tokio` (`new_current_thread().enable_all()`) and `monoio`
//! (0.2, io_uring driver, `enable_timer()`, feature `sync` so that a waker works from another
//! thread). Each runtime is built once per group, outside the measurement; each measurement
//! (`iter_custom`) runs all of its iterations inside ONE `block_on`, so only the workload is
//! timed, never runtime construction.
//!
//! | group | one iteration is | what it measures |
//! | --- | --- | --- |
//! | `spawn_join_10k` | spawn 10,000 trivial tasks, then await every handle | spawn + first poll + completion + join, per task = time / 10,000 |
//! | `yield_now` | one `yield_now().await` in a spawned task | the runtime's own yield (monoio has none public: a self-wake future stands in) |
//! | `self_wake` | one poll of a future that calls `wake_by_ref()` and returns `Pending` once | the bare wake → run queue → poll round trip, same future on all three |
//! | `timer_insert_cancel_100k` | 100,000 × (create `sleep(60 s)`, poll it once, drop it) | timer insert + cancel with an empty wheel, per timer = time / 100,000 |
//! | `timer_insert_hold_cancel_100k` | create and poll 100,000 `sleep(60 s)`, then drop them all | insert and cancel with 100,000 live timers, per timer = time / 100,000 |
//! | `timer_churn_1k_tasks` | each of 1,000 live tasks does one `timeout(50 ms, self-wake)` | a timer armed and disarmed per wake under load, per op = time / 1,000 |
//! | `cross_thread_wake` | one ping-pong: a std thread wakes a parked runtime task, which answers through `std::sync::mpsc` | remote wake latency through the ring wake-up (plus one futex wake back) |
//!
//! After criterion, the binary measures `sleep(300 µs)` overshoot: 2,000 sequential sleeps on an
//! idle runtime for each of the three, printing p50 / p99 / p99.9 / max of (elapsed − 300 µs) in
//! µs. That is a latency distribution, not a throughput, so it is printed rather than handed to
//! criterion.
//!
//! How to run:
//!
//! ```text
//! cargo bench --bench core                               # full run (then the overshoot table)
//! RINGLOOP_BENCH_QUICK=1 cargo bench --bench core        # warm-up 1 s, measurement 2 s, 10 samples
//! cargo bench --bench core -- timer                      # only the groups whose id contains "timer"
//! RINGLOOP_BENCH_OVERSHOOT=0 cargo bench --bench core    # skip the overshoot table
//! ```
//!
//! Under `cargo test --benches` (no `--bench` flag) criterion runs every benchmark once as a
//! smoke test and the overshoot check does 20 sleeps instead of 2,000. Results, with machine,
//! date and command, are in `BENCHMARKS.md`.

use std::future::{poll_fn, Future};
use std::hint::black_box;
use std::pin::{pin, Pin};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};

/// Tasks spawned (then joined) per iteration of `spawn_join_10k`.
const SPAWN_TASKS: u64 = 10_000;
/// Timers inserted and cancelled per iteration of the two `timer_insert_*` groups.
const TIMERS: u64 = 100_000;
/// Long enough that no timer ever fires during a timer benchmark.
const FAR_DEADLINE: Duration = Duration::from_secs(60);
/// Concurrent tasks in `timer_churn_1k_tasks`.
const CHURN_TASKS: u64 = 1_000;
/// The timeout each churn operation arms; it never fires unless the machine stalls for 50 ms.
const CHURN_TIMEOUT: Duration = Duration::from_millis(50);
/// The sleep whose overshoot is measured.
const OVERSHOOT_SLEEP: Duration = Duration::from_micros(300);
/// Sleeps per runtime in the overshoot table (`cargo bench`).
const OVERSHOOT_SAMPLES: usize = 2_000;
/// Sleeps per runtime in the overshoot smoke check (`cargo test --benches`).
const OVERSHOOT_SMOKE_SAMPLES: usize = 20;

/// The monoio runtime with its io_uring driver and timers enabled.
type Monoio = monoio::Runtime<monoio::time::TimeDriver<monoio::IoUringDriver>>;

fn ringloop_rt() -> ringloop::Runtime {
    ringloop::Runtime::new().expect("ringloop runtime builds (io_uring available)")
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio current_thread runtime builds")
}

fn monoio_rt() -> Monoio {
    monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
        .expect("monoio io_uring runtime builds")
}

/// Returns `Pending` once after waking its own task, then `Ready`: the smallest possible
/// wake → reschedule → poll round trip, identical on every runtime.
#[derive(Debug, Default)]
struct SelfWake {
    woken: bool,
}

impl Future for SelfWake {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.woken {
            Poll::Ready(())
        } else {
            self.woken = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Polls `fut` exactly once in the current task's context and reports what it returned:
/// for a sleep, this registers the timer without waiting for it.
async fn poll_once<F: Future>(mut fut: Pin<&mut F>) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

/// Sum of `0..SPAWN_TASKS`, what one batch of spawned tasks returns in total.
fn spawn_batch_sum() -> u64 {
    SPAWN_TASKS * (SPAWN_TASKS - 1) / 2
}

// ---------------------------------------------------------------------------------------------
// 1. spawn + join
// ---------------------------------------------------------------------------------------------

fn bench_spawn_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_join_10k");
    group.throughput(Throughput::Elements(SPAWN_TASKS));

    let rt = ringloop_rt();
    group.bench_function("ringloop", |b| {
        b.iter_custom(|batches| {
            rt.block_on(async {
                let mut handles = Vec::with_capacity(SPAWN_TASKS as usize);
                let start = Instant::now();
                for _ in 0..batches {
                    for i in 0..SPAWN_TASKS {
                        handles.push(ringloop::spawn(async move { black_box(i) }));
                    }
                    let mut sum = 0;
                    for handle in handles.drain(..) {
                        sum += handle.await.expect("a trivial task completes");
                    }
                    assert_eq!(sum, spawn_batch_sum());
                }
                start.elapsed()
            })
        })
    });
    drop(rt);

    let rt = tokio_rt();
    group.bench_function("tokio", |b| {
        b.iter_custom(|batches| {
            rt.block_on(async {
                let mut handles = Vec::with_capacity(SPAWN_TASKS as usize);
                let start = Instant::now();
                for _ in 0..batches {
                    for i in 0..SPAWN_TASKS {
                        handles.push(tokio::spawn(async move { black_box(i) }));
                    }
                    let mut sum = 0;
                    for handle in handles.drain(..) {
                        sum += handle.await.expect("a trivial task completes");
                    }
                    assert_eq!(sum, spawn_batch_sum());
                }
                start.elapsed()
            })
        })
    });
    drop(rt);

    let mut rt = monoio_rt();
    group.bench_function("monoio", |b| {
        b.iter_custom(|batches| {
            rt.block_on(async {
                let mut handles = Vec::with_capacity(SPAWN_TASKS as usize);
                let start = Instant::now();
                for _ in 0..batches {
                    for i in 0..SPAWN_TASKS {
                        handles.push(monoio::spawn(async move { black_box(i) }));
                    }
                    let mut sum = 0;
                    for handle in handles.drain(..) {
                        sum += handle.await;
                    }
                    assert_eq!(sum, spawn_batch_sum());
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// 2. yield / wake round trip
// ---------------------------------------------------------------------------------------------

/// Awaits `SelfWake` `n` times: the same future on every runtime.
async fn self_wake_loop(n: u64) -> u64 {
    let mut done = 0;
    for _ in 0..n {
        SelfWake::default().await;
        done += 1;
    }
    done
}

fn bench_yield(c: &mut Criterion) {
    let mut group = c.benchmark_group("yield_now");
    group.throughput(Throughput::Elements(1));

    let rt = ringloop_rt();
    group.bench_function("ringloop", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                let done = ringloop::spawn(async move {
                    for _ in 0..iters {
                        ringloop::task::yield_now().await;
                    }
                    iters
                })
                .await
                .expect("the yielding task completes");
                assert_eq!(done, iters);
                start.elapsed()
            })
        })
    });
    drop(rt);

    let rt = tokio_rt();
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                let done = tokio::spawn(async move {
                    for _ in 0..iters {
                        tokio::task::yield_now().await;
                    }
                    iters
                })
                .await
                .expect("the yielding task completes");
                assert_eq!(done, iters);
                start.elapsed()
            })
        })
    });
    drop(rt);

    // monoio 0.2 has no public `yield_now`; its nearest equivalent is a future that wakes itself.
    let mut rt = monoio_rt();
    group.bench_function("monoio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                let done = monoio::spawn(self_wake_loop(iters)).await;
                assert_eq!(done, iters);
                start.elapsed()
            })
        })
    });
    group.finish();

    let mut group = c.benchmark_group("self_wake");
    group.throughput(Throughput::Elements(1));

    let rt = ringloop_rt();
    group.bench_function("ringloop", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                let done = ringloop::spawn(self_wake_loop(iters))
                    .await
                    .expect("the self-waking task completes");
                assert_eq!(done, iters);
                start.elapsed()
            })
        })
    });
    drop(rt);

    let rt = tokio_rt();
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                let done = tokio::spawn(self_wake_loop(iters))
                    .await
                    .expect("the self-waking task completes");
                assert_eq!(done, iters);
                start.elapsed()
            })
        })
    });
    drop(rt);

    let mut rt = monoio_rt();
    group.bench_function("monoio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                let done = monoio::spawn(self_wake_loop(iters)).await;
                assert_eq!(done, iters);
                start.elapsed()
            })
        })
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// 3. timer insert + cancel
// ---------------------------------------------------------------------------------------------

/// `batches` × `TIMERS` times: create a far sleep, poll it once (it registers), drop it (it
/// cancels). The wheel holds at most one timer at a time.
async fn insert_cancel<S: Future>(make_sleep: impl Fn() -> S, batches: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..batches * TIMERS {
        let sleep = pin!(make_sleep());
        assert!(poll_once(sleep).await.is_pending(), "a 60 s sleep fired");
    }
    start.elapsed()
}

/// `batches` times: create and poll `TIMERS` far sleeps, all live at once, then drop them all.
async fn insert_hold_cancel<S: Future>(make_sleep: impl Fn() -> S, batches: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..batches {
        let mut sleeps: Pin<Box<[S]>> = Box::into_pin((0..TIMERS).map(|_| make_sleep()).collect());
        for i in 0..sleeps.len() {
            // SAFETY: the sleeps live in a pinned boxed slice that is never moved out of or
            // reallocated; each element stays at its address until the slice drops in place.
            let sleep = unsafe { sleeps.as_mut().map_unchecked_mut(|all| &mut all[i]) };
            assert!(poll_once(sleep).await.is_pending(), "a 60 s sleep fired");
        }
        drop(sleeps);
    }
    start.elapsed()
}

fn bench_timer_insert_cancel(c: &mut Criterion) {
    for (name, hold) in [
        ("timer_insert_cancel_100k", false),
        ("timer_insert_hold_cancel_100k", true),
    ] {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(TIMERS));

        let rt = ringloop_rt();
        group.bench_function("ringloop", |b| {
            b.iter_custom(|batches| {
                let sleep = || ringloop::time::sleep(FAR_DEADLINE);
                if hold {
                    rt.block_on(insert_hold_cancel(sleep, batches))
                } else {
                    rt.block_on(insert_cancel(sleep, batches))
                }
            })
        });
        drop(rt);

        let rt = tokio_rt();
        group.bench_function("tokio", |b| {
            b.iter_custom(|batches| {
                let sleep = || tokio::time::sleep(FAR_DEADLINE);
                if hold {
                    rt.block_on(insert_hold_cancel(sleep, batches))
                } else {
                    rt.block_on(insert_cancel(sleep, batches))
                }
            })
        });
        drop(rt);

        let mut rt = monoio_rt();
        group.bench_function("monoio", |b| {
            b.iter_custom(|batches| {
                let sleep = || monoio::time::sleep(FAR_DEADLINE);
                if hold {
                    rt.block_on(insert_hold_cancel(sleep, batches))
                } else {
                    rt.block_on(insert_cancel(sleep, batches))
                }
            })
        });
        group.finish();
    }
}

// ---------------------------------------------------------------------------------------------
// 4. timer churn
// ---------------------------------------------------------------------------------------------

/// One churn task: `rounds` times, arm a 50 ms timeout around a self-waking future, which
/// completes on its second poll, so the timeout is disarmed. Returns how many timeouts fired.
async fn churn_task<T, R>(timeout: impl Fn(SelfWake) -> T, rounds: u64) -> u64
where
    T: Future<Output = Result<(), R>>,
{
    let mut fired = 0;
    for _ in 0..rounds {
        if timeout(SelfWake::default()).await.is_err() {
            fired += 1;
        }
    }
    fired
}

/// Says so when a 50 ms churn timeout fired: only a 50 ms stall of the whole machine explains
/// that, and then the figure measured timer expiry too.
fn report_fired(runtime: &str, fired: u64) {
    if fired > 0 {
        eprintln!("note: {fired} churn timeouts fired on {runtime} (machine stalled 50 ms?)");
    }
}

fn bench_timer_churn(c: &mut Criterion) {
    let mut group = c.benchmark_group("timer_churn_1k_tasks");
    group.throughput(Throughput::Elements(CHURN_TASKS));

    let rt = ringloop_rt();
    group.bench_function("ringloop", |b| {
        b.iter_custom(|rounds| {
            rt.block_on(async {
                let handles: Vec<_> = (0..CHURN_TASKS)
                    .map(|_| {
                        ringloop::spawn(churn_task(
                            |f| ringloop::time::timeout(CHURN_TIMEOUT, f),
                            rounds,
                        ))
                    })
                    .collect();
                let start = Instant::now();
                let mut fired = 0;
                for handle in handles {
                    fired += handle.await.expect("a churn task completes");
                }
                let elapsed = start.elapsed();
                report_fired("ringloop", fired);
                elapsed
            })
        })
    });
    drop(rt);

    let rt = tokio_rt();
    group.bench_function("tokio", |b| {
        b.iter_custom(|rounds| {
            rt.block_on(async {
                let handles: Vec<_> = (0..CHURN_TASKS)
                    .map(|_| {
                        tokio::spawn(churn_task(
                            |f| tokio::time::timeout(CHURN_TIMEOUT, f),
                            rounds,
                        ))
                    })
                    .collect();
                let start = Instant::now();
                let mut fired = 0;
                for handle in handles {
                    fired += handle.await.expect("a churn task completes");
                }
                let elapsed = start.elapsed();
                report_fired("tokio", fired);
                elapsed
            })
        })
    });
    drop(rt);

    let mut rt = monoio_rt();
    group.bench_function("monoio", |b| {
        b.iter_custom(|rounds| {
            rt.block_on(async {
                let handles: Vec<_> = (0..CHURN_TASKS)
                    .map(|_| {
                        monoio::spawn(churn_task(
                            |f| monoio::time::timeout(CHURN_TIMEOUT, f),
                            rounds,
                        ))
                    })
                    .collect();
                let start = Instant::now();
                let mut fired = 0;
                for handle in handles {
                    fired += handle.await;
                }
                let elapsed = start.elapsed();
                report_fired("monoio", fired);
                elapsed
            })
        })
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// 5. cross-thread wake
// ---------------------------------------------------------------------------------------------

/// A reusable, runtime-agnostic one-bit signal: raised from any thread, awaited by one task.
#[derive(Debug, Default)]
struct Signal {
    state: Mutex<SignalState>,
}

#[derive(Debug, Default)]
struct SignalState {
    raised: bool,
    waker: Option<Waker>,
}

impl Signal {
    /// Raises the signal and wakes the waiting task, if any, from the calling thread.
    fn raise(&self) {
        let waker = {
            let mut state = self.state.lock().expect("signal lock is never poisoned");
            state.raised = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Waits until the signal is raised, then lowers it.
    async fn wait(&self) {
        poll_fn(|cx| {
            let mut state = self.state.lock().expect("signal lock is never poisoned");
            if state.raised {
                state.raised = false;
                Poll::Ready(())
            } else {
                match &mut state.waker {
                    Some(waker) => waker.clone_from(cx.waker()),
                    None => state.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        })
        .await
    }
}

/// The runtime side of the ping-pong: says it is ready, then answers `iters` pings.
async fn responder(ping: Arc<Signal>, pong: mpsc::Sender<()>, iters: u64) -> u64 {
    pong.send(()).expect("the pinging thread listens");
    for _ in 0..iters {
        ping.wait().await;
        pong.send(()).expect("the pinging thread listens");
    }
    iters
}

/// Runs `iters` ping-pongs between a std thread and a task that `run_responder` drives on a
/// runtime; returns the time the std thread measured, from the first ping to the last pong.
fn ping_pong(iters: u64, run_responder: impl FnOnce(Arc<Signal>, mpsc::Sender<()>)) -> Duration {
    let ping = Arc::new(Signal::default());
    let (pong_tx, pong_rx) = mpsc::channel();
    let pinger = thread::spawn({
        let ping = Arc::clone(&ping);
        move || {
            pong_rx.recv().expect("the responder says it is ready");
            let start = Instant::now();
            for _ in 0..iters {
                ping.raise();
                pong_rx.recv().expect("the responder answers");
            }
            start.elapsed()
        }
    });
    run_responder(ping, pong_tx);
    pinger.join().expect("the pinging thread does not panic")
}

fn bench_cross_thread_wake(c: &mut Criterion) {
    let mut group = c.benchmark_group("cross_thread_wake");
    group.throughput(Throughput::Elements(1));

    let rt = ringloop_rt();
    group.bench_function("ringloop", |b| {
        b.iter_custom(|iters| {
            ping_pong(iters, |ping, pong| {
                let done = rt.block_on(async {
                    ringloop::spawn(responder(ping, pong, iters))
                        .await
                        .expect("the responder completes")
                });
                assert_eq!(done, iters);
            })
        })
    });
    drop(rt);

    let rt = tokio_rt();
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            ping_pong(iters, |ping, pong| {
                let done = rt.block_on(async {
                    tokio::spawn(responder(ping, pong, iters))
                        .await
                        .expect("the responder completes")
                });
                assert_eq!(done, iters);
            })
        })
    });
    drop(rt);

    let mut rt = monoio_rt();
    group.bench_function("monoio", |b| {
        b.iter_custom(|iters| {
            ping_pong(iters, |ping, pong| {
                let done = rt.block_on(async { monoio::spawn(responder(ping, pong, iters)).await });
                assert_eq!(done, iters);
            })
        })
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// 6. sleep(300 µs) overshoot
// ---------------------------------------------------------------------------------------------

/// Sleeps `OVERSHOOT_SLEEP` `samples` times in a row and returns each overshoot, sorted.
async fn overshoots<S: Future>(sleep: impl Fn(Duration) -> S, samples: usize) -> Vec<Duration> {
    let mut late = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        sleep(OVERSHOOT_SLEEP).await;
        let elapsed = start.elapsed();
        assert!(
            elapsed >= OVERSHOOT_SLEEP,
            "sleep returned early: {elapsed:?}"
        );
        late.push(elapsed - OVERSHOOT_SLEEP);
    }
    late.sort_unstable();
    late
}

/// The `q` quantile (0.0..=1.0) of sorted, non-empty `samples`, in µs.
fn quantile_us(sorted: &[Duration], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e6
}

fn print_overshoot(samples: usize) {
    let ringloop = ringloop_rt().block_on(overshoots(ringloop::time::sleep, samples));
    let spinning = ringloop::Builder::new()
        .timer_spin(Duration::from_micros(50))
        .build()
        .expect("ringloop runtime with timer_spin")
        .block_on(overshoots(ringloop::time::sleep, samples));
    let tokio = tokio_rt().block_on(overshoots(tokio::time::sleep, samples));
    let monoio = monoio_rt().block_on(overshoots(monoio::time::sleep, samples));

    println!();
    println!(
        "sleep({} µs) overshoot, {samples} sleeps per runtime on an idle runtime, µs (lower is better)",
        OVERSHOOT_SLEEP.as_micros()
    );
    println!("| runtime | p50 | p99 | p99.9 | max |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, late) in [
        ("ringloop", ringloop),
        ("ringloop, `timer_spin(50 µs)`", spinning),
        ("tokio", tokio),
        ("monoio", monoio),
    ] {
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} |",
            quantile_us(&late, 0.50),
            quantile_us(&late, 0.99),
            quantile_us(&late, 0.999),
            quantile_us(&late, 1.0),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------------

/// Criterion's defaults, shortened when `RINGLOOP_BENCH_QUICK` is set (to anything but `0`);
/// command-line flags still override either.
fn criterion() -> Criterion {
    let quick = std::env::var("RINGLOOP_BENCH_QUICK").is_ok_and(|v| v != "0");
    let c = if quick {
        Criterion::default()
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(2))
            .sample_size(10)
    } else {
        Criterion::default()
    };
    c.configure_from_args()
}

fn main() {
    let mut c = criterion();
    bench_spawn_join(&mut c);
    bench_yield(&mut c);
    bench_timer_insert_cancel(&mut c);
    bench_timer_churn(&mut c);
    bench_cross_thread_wake(&mut c);
    c.final_summary();

    // `cargo bench` passes `--bench`; `cargo test --benches` does not (criterion's test mode).
    let args: Vec<String> = std::env::args().collect();
    let listing = args.iter().any(|a| a == "--list");
    let benching = args.iter().any(|a| a == "--bench");
    let wanted = std::env::var("RINGLOOP_BENCH_OVERSHOOT").map_or(true, |v| v != "0");
    if wanted && !listing {
        print_overshoot(if benching {
            OVERSHOOT_SAMPLES
        } else {
            OVERSHOOT_SMOKE_SAMPLES
        });
    }
}
