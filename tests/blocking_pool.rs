//! `spawn_blocking`: results, panics, the thread limit, and waking a runtime parked in the ring.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::watchdog;

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn ten_thousand_jobs_on_a_pool_of_four_never_run_more_than_four_at_once() {
    watchdog("10k blocking jobs", LIMIT, || {
        let rt = ringloop::Builder::new()
            .max_blocking_threads(4)
            .build()
            .unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        let total: u64 = rt.block_on(async {
            let handles: Vec<_> = (0..10_000u64)
                .map(|i| {
                    let (running, most, threads) = (running.clone(), most.clone(), threads.clone());
                    ringloop::spawn_blocking(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        threads.lock().unwrap().insert(std::thread::current().id());
                        std::hint::black_box((0..50).sum::<u64>());
                        running.fetch_sub(1, Ordering::SeqCst);
                        i
                    })
                })
                .collect();
            let mut total = 0;
            for h in handles {
                total += h.await.unwrap();
            }
            total
        });
        assert_eq!(total, (0..10_000u64).sum::<u64>());
        let most = most.load(Ordering::SeqCst);
        println!(
            "at most {most} jobs at once on {} threads",
            threads.lock().unwrap().len()
        );
        assert!(
            most <= 4,
            "{most} blocking jobs ran at once with a pool of 4"
        );
        assert!(threads.lock().unwrap().len() <= 4);
        assert_ne!(
            threads.lock().unwrap().iter().next(),
            Some(&std::thread::current().id())
        );
    });
}

#[test]
fn a_panicking_blocking_job_reports_through_its_handle() {
    ringloop::block_on(async {
        let what = std::hint::black_box("disk on fire");
        let err = ringloop::spawn_blocking(move || -> u8 { panic!("{what}") })
            .await
            .unwrap_err();
        assert!(err.is_panic());
        assert!(err.to_string().contains("disk on fire"), "{err}");
        // The pool and the runtime go on.
        assert_eq!(ringloop::spawn_blocking(|| 5).await.unwrap(), 5);
    });
}

#[test]
fn a_slow_blocking_job_wakes_the_runtime_parked_in_the_ring() {
    watchdog("blocking wake", LIMIT, || {
        let rt = ringloop::Runtime::new().unwrap();
        let start = Instant::now();
        let out = rt.block_on(async {
            ringloop::spawn_blocking(|| {
                std::thread::sleep(Duration::from_millis(50));
                "done"
            })
            .await
        });
        assert_eq!(out.unwrap(), "done");
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(50) && took < Duration::from_secs(5),
            "{took:?}"
        );
        assert!(
            rt.stats().remote_wakes >= 1,
            "the wake came through the remote queue"
        );
    });
}

#[test]
fn idle_blocking_threads_exit_after_their_keep_alive() {
    watchdog("keep alive", LIMIT, || {
        let rt = ringloop::Builder::new()
            .blocking_keep_alive(Duration::from_millis(20))
            .build()
            .unwrap();
        let threads_now = || std::fs::read_dir("/proc/self/task").unwrap().count();
        let before = threads_now();
        rt.block_on(async {
            let hs: Vec<_> = (0..4)
                .map(|_| ringloop::spawn_blocking(|| std::thread::sleep(Duration::from_millis(20))))
                .collect();
            for h in hs {
                h.await.unwrap();
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while threads_now() > before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // Other tests run threads in this process too: only require that ours went away.
        assert!(
            threads_now() <= before + 1,
            "blocking threads outlived their keep-alive"
        );
    });
}

#[test]
fn dropping_the_runtime_with_a_job_running_returns_promptly() {
    let rt = ringloop::Runtime::new().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    rt.block_on(async {
        drop(ringloop::spawn_blocking(move || {
            let _ = rx.recv_timeout(Duration::from_secs(10));
        }));
        ringloop::time::sleep(Duration::from_millis(5)).await;
    });
    let start = Instant::now();
    drop(rt);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "drop waited for a running blocking job"
    );
    drop(tx);
}
