//! The ring under pressure and in every setup: a CQ too small for the completions, an SQ too
//! small for the submissions and the cancels, a runtime parked in the ring woken by another
//! thread, and each optional setup flag forced off.
//!
//! HARDENING rows 5 (CQ overflow), 6 (SQ full), 14 (a parked runtime woken from another thread)
//! and 15 (every optional ring flag forced off).

mod support;

use std::cell::Cell;
use std::future::Future;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use ringloop::fs::File;
use ringloop::time::{sleep, timeout};
use ringloop::{Builder, Runtime};
use support::{wait_until, watchdog};

const LIMIT: Duration = Duration::from_secs(60);
const SETTLE: Duration = Duration::from_secs(10);

/// A temp file whose byte at offset `i` is `pattern(i)`.
fn pattern(i: u64) -> u8 {
    (i % 251) as u8 + 1
}

fn pattern_file(name: &str, len: u64) -> std::path::PathBuf {
    let path = support::temp_path(name);
    std::fs::write(&path, (0..len).map(pattern).collect::<Vec<u8>>()).unwrap();
    path
}

/// Spawns `tasks` tasks, each reading 8 bytes of `path` at its own offset once, and checks that
/// each completed exactly once with the right bytes.
fn read_file_from_many_tasks(rt: &Runtime, path: &std::path::Path, tasks: u64, file_len: u64) {
    let completions: Rc<Vec<Cell<u32>>> = Rc::new((0..tasks).map(|_| Cell::new(0)).collect());
    rt.block_on(async {
        let file = Rc::new(File::open(path).await.unwrap());
        let handles: Vec<_> = (0..tasks)
            .map(|i| {
                let file = file.clone();
                let completions = completions.clone();
                ringloop::spawn(async move {
                    let pos = (i * 8) % (file_len - 8);
                    let (res, buf) = file.read_at(vec![0u8; 8], pos).await;
                    completions[i as usize].set(completions[i as usize].get() + 1);
                    assert_eq!(res.unwrap(), 8, "task {i}");
                    let want: Vec<u8> = (pos..pos + 8).map(pattern).collect();
                    assert_eq!(buf, want, "task {i} read the wrong bytes");
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    });
    let counts: Vec<u32> = completions.iter().map(Cell::get).collect();
    assert!(
        counts.iter().all(|c| *c == 1),
        "every op completes exactly once: {counts:?}"
    );
    let stats = rt.stats();
    assert_eq!(stats.ops_in_flight, 0, "{stats:?}");
    assert_eq!(stats.tasks_alive, 0, "{stats:?}");
}

#[test]
fn file_reads_overflowing_a_four_entry_cq_each_complete_once() {
    watchdog(
        "file_reads_overflowing_a_four_entry_cq_each_complete_once",
        LIMIT,
        || {
            let path = pattern_file("cq-overflow", 4096);
            // The kernel needs cq_entries >= entries: the smallest CQ is 4 with a 4-entry SQ.
            // A large event interval starts many tasks per turn, so many CQEs pile up unreaped.
            let rt = Builder::new()
                .entries(4)
                .cq_entries(4)
                .event_interval(1024)
                .build()
                .unwrap();
            read_file_from_many_tasks(&rt, &path, 1000, 4096);
            let stats = rt.stats();
            println!("1000 file reads through a 4-entry CQ: {stats:?}");
            // With NODROP the kernel's counter only grows for completions it had to drop.
            assert_eq!(stats.cq_overflows, 0, "completions were lost: {stats:?}");
            assert!(
                stats.cq_overflow_flushes > 0,
                "the CQ never overflowed: {stats:?}"
            );
            std::fs::remove_file(path).unwrap();
        },
    );
}

#[test]
fn pipe_reads_completing_at_once_overflow_the_cq_and_all_arrive() {
    // More completions at once than the CQ holds and more than one reap pass flushes:
    // the rest wait on the kernel's overflow list for a later `enter(GETEVENTS)`.
    const PIPES: usize = 300;
    watchdog(
        "pipe_reads_completing_at_once_overflow_the_cq_and_all_arrive",
        LIMIT,
        || {
            let rt = Builder::new().entries(4).cq_entries(4).build().unwrap();
            let (reads, writes): (Vec<OwnedFd>, Vec<OwnedFd>) =
                (0..PIPES).map(|_| support::pipe()).unzip();
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            // The peer: a plain thread that writes to every pipe while the runtime is parked.
            let peer = std::thread::spawn(move || {
                go_rx.recv().unwrap();
                for (i, w) in writes.iter().enumerate() {
                    nix::unistd::write(w, format!("pipe {i}").as_bytes()).unwrap();
                }
                writes
            });
            let got = rt.block_on(async {
                let handles: Vec<_> = reads
                    .into_iter()
                    .map(|r| {
                        let file = File::from_std(std::fs::File::from(r));
                        ringloop::spawn(async move {
                            let (res, buf) = file.read_at(vec![0u8; 32], 0).await;
                            let n = res.unwrap();
                            String::from_utf8(buf[..n].to_vec()).unwrap()
                        })
                    })
                    .collect();
                wait_until("every read to be in the ring", SETTLE, || {
                    rt.stats().ops_in_flight >= PIPES as u64
                })
                .await;
                go_tx.send(()).unwrap();
                let deadline = Instant::now() + SETTLE;
                let mut got = Vec::with_capacity(PIPES);
                for (i, h) in handles.into_iter().enumerate() {
                    let out = ringloop::time::timeout_at(deadline, h)
                        .await
                        .unwrap_or_else(|_| panic!("read {i} never completed: {:?}", rt.stats()));
                    got.push(out.unwrap());
                }
                got
            });
            let writes = peer.join().unwrap();
            for (i, s) in got.iter().enumerate() {
                assert_eq!(s, &format!("pipe {i}"));
            }
            let stats = rt.stats();
            println!("{PIPES} pipe reads completing together through a 4-entry CQ: {stats:?}");
            assert_eq!(stats.ops_in_flight, 0);
            assert_eq!(stats.cq_overflows, 0, "completions were lost: {stats:?}");
            assert!(
                stats.cq_overflow_flushes > 0,
                "the CQ never overflowed: {stats:?}"
            );
            drop(writes);
        },
    );
}

#[test]
fn ten_thousand_ops_through_an_eight_entry_sq_all_complete() {
    watchdog(
        "ten_thousand_ops_through_an_eight_entry_sq_all_complete",
        LIMIT,
        || {
            let path = pattern_file("sq-full", 4096);
            let rt = Builder::new()
                .entries(8)
                .event_interval(1024)
                .build()
                .unwrap();
            read_file_from_many_tasks(&rt, &path, 10_000, 4096);
            println!("10k file reads through an 8-entry SQ: {:?}", rt.stats());
            std::fs::remove_file(path).unwrap();
        },
    );
}

#[test]
fn timed_out_reads_through_an_eight_entry_sq_all_resolve() {
    // 3000 reads that never get data, each under a 50 ms timeout: 3000 cancels at once through
    // an 8-entry SQ. The timeouts resolve on time; the cancels that do not fit wait in the
    // runtime's queue and all reach the kernel (otherwise their reads would stay in flight).
    const READS: usize = 3000;
    const PIPES: usize = 64;
    watchdog(
        "timed_out_reads_through_an_eight_entry_sq_all_resolve",
        LIMIT,
        || {
            let rt = Builder::new().entries(8).build().unwrap();
            let alive = Arc::new(AtomicUsize::new(0));
            let (reads, writes): (Vec<OwnedFd>, Vec<OwnedFd>) =
                (0..PIPES).map(|_| support::pipe()).unzip();
            let start = Instant::now();
            let (latest, drained) = rt.block_on(async {
                let files: Vec<Rc<File>> = reads
                    .into_iter()
                    .map(|r| Rc::new(File::from_std(std::fs::File::from(r))))
                    .collect();
                let handles: Vec<_> = (0..READS)
                    .map(|i| {
                        let file = files[i % PIPES].clone();
                        let buf = support::CountedBuf::new(64, &alive);
                        ringloop::spawn(async move {
                            let res =
                                timeout(Duration::from_millis(50), file.read_at(buf, 0)).await;
                            assert!(res.is_err(), "read {i}: nothing is ever written");
                            Instant::now()
                        })
                    })
                    .collect();
                let mut latest = start;
                for h in handles {
                    latest = latest.max(h.await.unwrap());
                }
                wait_until("every cancelled read to leave the ring", SETTLE, || {
                    rt.stats().ops_in_flight == 0
                })
                .await;
                (latest - start, start.elapsed())
            });
            let stats = rt.stats();
            println!(
            "{READS} timed-out reads via an 8-entry SQ: last timeout resolved after {latest:?}, \
             ring drained after {drained:?}; {stats:?}"
        );
            assert!(
                latest < Duration::from_secs(3),
                "a 50 ms timeout resolved after {latest:?}"
            );
            assert_eq!(
                alive.load(Ordering::SeqCst),
                0,
                "buffers of cancelled reads still alive"
            );
            assert!(stats.cancels_submitted >= READS as u64, "{stats:?}");
            drop(writes);
        },
    );
}

/// Resolves once another thread has woken it; on its first poll it sends its waker to `tx`.
struct WokenByThread {
    sent: bool,
    woken_at: Arc<Mutex<Option<Instant>>>,
    tx: std::sync::mpsc::Sender<(Waker, Arc<Mutex<Option<Instant>>>)>,
}

impl Future for WokenByThread {
    type Output = Instant;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Instant> {
        if let Some(at) = *self.woken_at.lock().unwrap() {
            return Poll::Ready(at);
        }
        if !self.sent {
            self.sent = true;
            let msg = (cx.waker().clone(), self.woken_at.clone());
            self.tx.send(msg).unwrap();
        }
        Poll::Pending
    }
}

#[test]
fn waker_sent_to_a_std_thread_wakes_a_parked_runtime() {
    const ROUNDS: usize = 10;
    watchdog(
        "waker_sent_to_a_std_thread_wakes_a_parked_runtime",
        LIMIT,
        || {
            let mut setups = vec![("default flags", Builder::new())];
            let mut b = Builder::new();
            b.defer_taskrun(false);
            setups.push(("defer_taskrun off", b));
            let mut b = Builder::new();
            b.single_issuer(false)
                .defer_taskrun(false)
                .coop_taskrun(false);
            setups.push(("all flags off", b));
            for (setup, builder) in setups {
                let rt = builder.build().unwrap();
                let (tx, rx) = std::sync::mpsc::channel::<(Waker, Arc<Mutex<Option<Instant>>>)>();
                let waker_thread = std::thread::spawn(move || {
                    for (waker, woken_at) in rx {
                        std::thread::sleep(Duration::from_millis(50));
                        *woken_at.lock().unwrap() = Some(Instant::now());
                        waker.wake();
                    }
                });
                let latencies = rt.block_on(async {
                    let mut latencies = Vec::with_capacity(ROUNDS);
                    for round in 0..ROUNDS {
                        // Half the rounds park with a far timer (a timed wait), half with none.
                        let far_timer = (round % 2 == 1)
                            .then(|| ringloop::spawn(sleep(Duration::from_secs(3600))));
                        ringloop::task::yield_now().await;
                        let enters = rt.stats().ring_enters;
                        let woken = WokenByThread {
                            sent: false,
                            woken_at: Arc::default(),
                            tx: tx.clone(),
                        };
                        let woken_at = woken.await;
                        let latency = woken_at.elapsed();
                        let spent = rt.stats().ring_enters - enters;
                        // Parked means blocked in the ring, not spinning: a handful of enters.
                        assert!(
                            spent < 100,
                            "{setup}: {spent} ring enters while waiting 50 ms: spinning?"
                        );
                        if let Some(h) = far_timer {
                            h.abort();
                        }
                        latencies.push(latency);
                    }
                    latencies
                });
                drop(tx);
                waker_thread.join().unwrap();
                let max = latencies.iter().max().unwrap();
                println!("{setup}: wake latency from a std thread: max {max:?}, all {latencies:?}");
                assert!(
                    *max < Duration::from_millis(500),
                    "{setup}: a remote wake took {max:?}"
                );
            }
        },
    );
}

/// Spawn, sleep, a file round trip, a cancelled pipe read and a cross-thread wake.
fn exercise(rt: &Runtime, setup: &str) {
    let path = support::temp_path(&format!("flags-{}", setup.replace(' ', "-")));
    rt.block_on(async {
        let tasks: Vec<_> = (0..100u64)
            .map(|i| {
                ringloop::spawn(async move {
                    sleep(Duration::from_micros(100 * (i % 7))).await;
                    i * 2
                })
            })
            .collect();
        let mut sum = 0;
        for t in tasks {
            sum += t.await.unwrap();
        }
        assert_eq!(sum, 99 * 100);

        let t = Instant::now();
        sleep(Duration::from_millis(2)).await;
        assert!(
            t.elapsed() >= Duration::from_millis(2),
            "{setup}: sleep woke early"
        );

        let file = File::create(&path).await.unwrap();
        let (res, _) = file.write_all_at(b"flags off, files on".to_vec(), 0).await;
        res.unwrap();
        file.sync_all().await.unwrap();
        let (res, buf) = file.read_at(vec![0u8; 64], 0).await;
        assert_eq!(&buf[..res.unwrap()], b"flags off, files on");
        file.close().await.unwrap();

        let (r, w) = support::pipe();
        let reader = File::from_std(std::fs::File::from(r));
        let res = timeout(Duration::from_millis(2), reader.read_at(vec![0u8; 8], 0)).await;
        assert!(res.is_err(), "{setup}: nothing was written");
        // Write only once the cancel is through: before that, the dropped read may still win
        // the bytes (and must be allowed to; without DEFER_TASKRUN it usually does).
        wait_until("the timed-out read to be cancelled", SETTLE, || {
            rt.stats().ops_in_flight == 0
        })
        .await;
        nix::unistd::write(&w, b"later").unwrap();
        let (res, buf) = reader.read_at(vec![0u8; 8], 0).await;
        assert_eq!(
            &buf[..res.unwrap()],
            b"later",
            "{setup}: the cancelled read ate the bytes"
        );

        let handle = rt.handle();
        let from_thread = std::thread::spawn(move || handle.spawn(async { 7 }))
            .join()
            .unwrap();
        assert_eq!(from_thread.await.unwrap(), 7);
    });
    std::fs::remove_file(path).unwrap();
    let stats = rt.stats();
    assert_eq!(stats.ops_in_flight, 0, "{setup}: {stats:?}");
}

#[test]
fn each_ring_flag_forced_off_still_runs_spawn_sleep_and_files() {
    watchdog(
        "each_ring_flag_forced_off_still_runs_spawn_sleep_and_files",
        LIMIT,
        || {
            // (single_issuer, defer_taskrun, coop_taskrun) allowed
            let setups = [
                ("defaults", true, true, true),
                ("single_issuer off", false, true, true),
                ("defer_taskrun off", true, false, true),
                ("coop_taskrun off", true, true, false),
                ("all three off", false, false, false),
            ];
            for (setup, single, defer, coop) in setups {
                let mut builder = Builder::new();
                if !single {
                    builder.single_issuer(false);
                }
                if !defer {
                    builder.defer_taskrun(false);
                }
                if !coop {
                    builder.coop_taskrun(false);
                }
                let rt = builder.build().unwrap_or_else(|e| panic!("{setup}: {e}"));
                let stats = rt.stats();
                println!(
                    "{setup}: single_issuer={} defer_taskrun={} coop_taskrun={}",
                    stats.single_issuer, stats.defer_taskrun, stats.coop_taskrun
                );
                assert!(
                    single || !stats.single_issuer,
                    "{setup}: SINGLE_ISSUER set though forced off"
                );
                // DEFER_TASKRUN needs SINGLE_ISSUER.
                assert!(
                    (single && defer) || !stats.defer_taskrun,
                    "{setup}: DEFER_TASKRUN set though forced off"
                );
                assert!(
                    coop || !stats.coop_taskrun,
                    "{setup}: COOP_TASKRUN set though forced off"
                );
                exercise(&rt, setup);
            }
        },
    );
}
