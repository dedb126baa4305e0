//! A paused clock: timers fire in order as it jumps from deadline to deadline, only when no
//! task can run, never past a file operation or a blocking job still in progress; `advance`
//! and `resume` move it by hand.

mod support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use ringloop::time::{self, interval, sleep, timeout, Instant};
use support::watchdog;

const LIMIT: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

fn paused() -> ringloop::Runtime {
    ringloop::Builder::new()
        .start_paused(true)
        .build()
        .expect("runtime")
}

#[test]
fn an_hour_long_sleep_returns_without_waiting_an_hour() {
    watchdog("hour", LIMIT, || {
        let real = std::time::Instant::now();
        paused().block_on(async {
            let start = Instant::now();
            sleep(HOUR).await;
            assert_eq!(
                start.elapsed(),
                HOUR,
                "the clock jumps exactly to the deadline"
            );
        });
        assert!(real.elapsed() < Duration::from_secs(30));
    });
}

#[ringloop::test(start_paused = true)]
async fn the_attribute_starts_the_runtime_paused() {
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(Instant::now(), start, "a paused clock stands still");
    sleep(Duration::from_secs(2)).await;
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[test]
fn timers_fire_in_deadline_order_each_at_its_own_instant() {
    watchdog("order", LIMIT, || {
        paused().block_on(async {
            let start = Instant::now();
            let fired = Rc::new(RefCell::new(Vec::new()));
            let mut tasks = Vec::new();
            for secs in [30, 10, 20, 5, 25] {
                let fired = fired.clone();
                tasks.push(ringloop::spawn(async move {
                    sleep(Duration::from_secs(secs)).await;
                    fired.borrow_mut().push((secs, Instant::now() - start));
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            let expected: Vec<_> = [5, 10, 20, 25, 30]
                .into_iter()
                .map(|s| (s, Duration::from_secs(s)))
                .collect();
            assert_eq!(*fired.borrow(), expected);
        });
    });
}

#[test]
fn the_clock_does_not_move_while_a_task_can_run() {
    watchdog("busy", LIMIT, || {
        paused().block_on(async {
            let yields = Rc::new(Cell::new(0u32));
            let seen = yields.clone();
            let sleeper = ringloop::spawn(async move {
                sleep(Duration::from_millis(1)).await;
                seen.get()
            });
            for _ in 0..1_000 {
                yields.set(yields.get() + 1);
                ringloop::task::yield_now().await;
            }
            assert_eq!(
                sleeper.await.unwrap(),
                1_000,
                "the sleeper woke only once the busy task stopped"
            );
        });
    });
}

#[test]
fn a_timeout_jumps_ahead_of_a_longer_sleep() {
    watchdog("timeout", LIMIT, || {
        paused().block_on(async {
            let start = Instant::now();
            let slow = timeout(Duration::from_secs(30), sleep(Duration::from_secs(60))).await;
            assert!(slow.is_err());
            assert_eq!(start.elapsed(), Duration::from_secs(30));
            let quick = timeout(Duration::from_secs(30), sleep(Duration::from_secs(1))).await;
            assert!(quick.is_ok());
            assert_eq!(start.elapsed(), Duration::from_secs(31));
        });
    });
}

#[test]
fn an_interval_ticks_once_per_period_of_paused_time() {
    watchdog("interval", LIMIT, || {
        paused().block_on(async {
            let mut hourly = interval(HOUR);
            let first = hourly.tick().await;
            for n in 1..=24u32 {
                let tick = hourly.tick().await;
                assert_eq!(tick - first, HOUR * n);
                assert_eq!(Instant::now(), tick, "woken exactly at its tick");
            }
        });
    });
}

#[test]
fn advance_fires_what_is_due_and_nothing_later() {
    watchdog("advance", LIMIT, || {
        paused().block_on(async {
            let start = Instant::now();
            let fired = Rc::new(RefCell::new(Vec::new()));
            for ms in [100u64, 200, 300] {
                let fired = fired.clone();
                ringloop::spawn(async move {
                    sleep(Duration::from_millis(ms)).await;
                    fired.borrow_mut().push(ms);
                });
            }
            ringloop::task::yield_now().await;
            time::advance(Duration::from_millis(250)).await;
            assert_eq!(*fired.borrow(), [100, 200]);
            assert_eq!(start.elapsed(), Duration::from_millis(250));
            time::advance(Duration::from_millis(50)).await;
            assert_eq!(*fired.borrow(), [100, 200, 300]);
        });
    });
}

#[test]
fn a_blocking_job_is_waited_for_before_the_clock_jumps() {
    watchdog("blocking", LIMIT, || {
        paused().block_on(async {
            let job = ringloop::spawn_blocking(|| {
                std::thread::sleep(Duration::from_millis(100));
                7
            });
            // Without the wait the clock would jump straight to this deadline.
            let result = timeout(Duration::from_secs(1), job).await;
            assert_eq!(result.expect("the job beat the timeout").unwrap(), 7);
        });
    });
}

#[test]
fn a_file_read_is_waited_for_before_the_clock_jumps() {
    watchdog("fifo", LIMIT, || {
        let dir = std::env::temp_dir().join(format!("ringloop-paused-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // The writer takes real time the paused clock must not skip over.
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
                std::thread::sleep(Duration::from_millis(100));
                f.write_all(b"late bytes").unwrap();
            })
        };
        paused().block_on(async {
            let read = timeout(Duration::from_secs(1), ringloop::fs::read(&fifo)).await;
            let bytes = read.expect("the read beat the timeout").unwrap();
            assert_eq!(bytes, b"late bytes");
        });
        writer.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

#[test]
fn a_silent_peer_does_not_hold_the_clock() {
    watchdog("peer", LIMIT, || {
        let real = std::time::Instant::now();
        paused().block_on(async {
            let (a, _b) = ringloop::net::UnixStream::pair().unwrap();
            let start = Instant::now();
            // As in tokio: the runtime cannot know a peer will never write, so the clock
            // moves to the timeout once nothing else can run.
            let read = timeout(Duration::from_secs(30), a.read(vec![0u8; 16])).await;
            assert!(read.is_err());
            assert_eq!(start.elapsed(), Duration::from_secs(30));
        });
        assert!(real.elapsed() < Duration::from_secs(20));
    });
}

#[test]
fn resume_lets_the_clock_run_on_from_where_it_stood() {
    watchdog("resume", LIMIT, || {
        paused().block_on(async {
            let start = Instant::now();
            time::advance(Duration::from_secs(10)).await;
            time::resume();
            let resumed = Instant::now();
            assert!(resumed - start >= Duration::from_secs(10));
            assert!(resumed - start < Duration::from_secs(11));
            std::thread::sleep(Duration::from_millis(20));
            assert!(
                Instant::now() - resumed >= Duration::from_millis(20),
                "it runs again"
            );
            sleep(Duration::from_millis(5)).await;
            time::pause();
            let frozen = Instant::now();
            std::thread::sleep(Duration::from_millis(5));
            assert_eq!(Instant::now(), frozen);
        });
    });
}

#[test]
#[should_panic(expected = "already paused")]
fn pausing_a_paused_clock_panics() {
    paused().block_on(async { time::pause() });
}

#[test]
#[should_panic(expected = "not paused")]
fn advancing_a_running_clock_panics() {
    ringloop::block_on(time::advance(Duration::from_secs(1)));
}

#[test]
fn a_running_clock_reads_the_system_clock() {
    ringloop::block_on(async {
        let before = std::time::Instant::now();
        let now = Instant::now().into_std();
        assert!(now >= before && now <= std::time::Instant::now());
    });
    let outside = Instant::now().into_std();
    assert!(outside <= std::time::Instant::now());
}

#[test]
fn a_clock_paused_while_running_jumps_exactly_to_each_deadline() {
    watchdog("pause mid-run", LIMIT, || {
        ringloop::block_on(async {
            // Real time has passed since the runtime started: the pause lands off the
            // microsecond grid of the wheel unless it is put back on it.
            sleep(Duration::from_micros(1234)).await;
            time::pause();
            let start = Instant::now();
            sleep(Duration::from_secs(30)).await;
            assert_eq!(start.elapsed(), Duration::from_secs(30));
            time::resume();
            sleep(Duration::from_micros(777)).await;
            time::pause();
            let again = Instant::now();
            let slow = timeout(Duration::from_millis(1500), sleep(HOUR)).await;
            assert!(slow.is_err());
            assert_eq!(again.elapsed(), Duration::from_millis(1500));
        });
    });
}

#[test]
fn an_interval_restarts_where_each_reset_says() {
    watchdog("interval reset", LIMIT, || {
        paused().block_on(async {
            let period = Duration::from_secs(10);
            let start = Instant::now();
            let mut every = interval(period);
            assert_eq!(every.tick().await, start, "the first tick is at once");
            every.reset_immediately();
            assert_eq!(every.tick().await, start, "due at once again");
            every.reset_after(Duration::from_secs(3));
            assert_eq!(every.tick().await - start, Duration::from_secs(3));
            assert_eq!(
                every.tick().await - start,
                Duration::from_secs(13),
                "then per period"
            );
            every.reset_at(start + Duration::from_secs(100));
            assert_eq!(every.tick().await - start, Duration::from_secs(100));
            every.reset();
            assert_eq!(every.tick().await - start, Duration::from_secs(110));
        });
    });
}
