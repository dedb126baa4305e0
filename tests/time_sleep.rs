//! Timers: sleeps fire in deadline order and never early, timeouts cancel, intervals tick.

mod support;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringloop::time::{interval, sleep, sleep_until, timeout, Instant, MissedTickBehavior};
use support::{watchdog, Counted};

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn thousand_random_sleeps_fire_in_deadline_order_and_none_early() {
    watchdog("random sleeps", LIMIT, || {
        let seed = fastrand::u64(..);
        println!("seed {seed}");
        let mut rng = fastrand::Rng::with_seed(seed);
        let rt = ringloop::Runtime::new().unwrap();
        let order: Rc<RefCell<Vec<(Instant, Instant)>>> = Rc::default();
        rt.block_on(async {
            let start = Instant::now();
            let handles: Vec<_> = (0..1000)
                .map(|_| {
                    let deadline = start + Duration::from_micros(rng.u64(1_000..50_000));
                    let order = order.clone();
                    ringloop::spawn(async move {
                        sleep_until(deadline).await;
                        order.borrow_mut().push((deadline, Instant::now()));
                    })
                })
                .collect();
            for h in handles {
                h.await.unwrap();
            }
        });
        let order = order.borrow();
        assert_eq!(order.len(), 1000);
        for (deadline, woke) in order.iter() {
            assert!(
                woke >= deadline,
                "a sleep fired {:?} early",
                *deadline - *woke
            );
        }
        for pair in order.windows(2) {
            assert!(
                pair[0].0 <= pair[1].0,
                "sleeps fired out of deadline order (seed {seed})"
            );
        }
    });
}

#[test]
fn sleeps_beside_a_busy_task_are_never_early() {
    watchdog("sleeps beside busy", LIMIT, || {
        ringloop::block_on(async {
            let busy = ringloop::spawn(async {
                loop {
                    std::hint::black_box((0..2_000).sum::<u64>());
                    ringloop::task::yield_now().await;
                }
            });
            for i in 0..200u64 {
                let d = Duration::from_micros(100 + (i * 233) % 5_000);
                let start = Instant::now();
                sleep(d).await;
                assert!(
                    start.elapsed() >= d,
                    "sleep({d:?}) returned after {:?}",
                    start.elapsed()
                );
            }
            busy.abort();
        });
    });
}

#[test]
fn sub_millisecond_sleep_is_honoured_not_rounded_to_a_millisecond() {
    watchdog("sub-ms sleep", LIMIT, || {
        ringloop::block_on(async {
            let mut overshoots = Vec::new();
            for _ in 0..50 {
                let start = Instant::now();
                sleep(Duration::from_micros(300)).await;
                let took = start.elapsed();
                assert!(took >= Duration::from_micros(300));
                overshoots.push(took - Duration::from_micros(300));
            }
            overshoots.sort();
            let median = overshoots[overshoots.len() / 2];
            println!(
                "sleep(300us) overshoot median {median:?}, max {:?}",
                overshoots.last().unwrap()
            );
            // Behaviour, not speed: the wait is not rounded up to a whole millisecond tick.
            assert!(
                median < Duration::from_millis(5),
                "median overshoot {median:?}"
            );
        });
    });
}

#[test]
fn zero_and_past_deadlines_complete_at_once() {
    ringloop::block_on(async {
        sleep(Duration::ZERO).await;
        sleep_until(Instant::now() - Duration::from_secs(1)).await;
    });
}

#[test]
fn huge_durations_do_not_overflow() {
    ringloop::block_on(async {
        let r = timeout(Duration::from_millis(1), sleep(Duration::MAX)).await;
        assert!(r.is_err());
        let r = timeout(Duration::MAX, async { 5 }).await;
        assert_eq!(r, Ok(5));
    });
}

#[test]
fn timeout_drops_its_future_when_the_deadline_passes() {
    let polls = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    ringloop::block_on(async {
        let fut = Counted {
            inner: std::future::pending::<()>(),
            polls: polls.clone(),
            drops: drops.clone(),
        };
        let start = Instant::now();
        let err = timeout(Duration::from_millis(2), fut).await.unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(2));
        assert_eq!(err.to_string(), "deadline has elapsed");
        let io: std::io::Error = err.into();
        assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert!(polls.load(Ordering::SeqCst) >= 1);
}

#[test]
fn timeout_returns_the_output_when_the_future_wins() {
    ringloop::block_on(async {
        let out = timeout(Duration::from_secs(10), async {
            sleep(Duration::from_millis(1)).await;
            "won"
        })
        .await;
        assert_eq!(out, Ok("won"));
    });
}

#[test]
fn dropping_a_million_pending_sleeps_leaves_the_wheel_empty() {
    watchdog("million sleeps", LIMIT, || {
        let rt = ringloop::Runtime::new().unwrap();
        rt.block_on(async {
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            let mut sleeps: Vec<_> = (0..1_000_000u64)
                .map(|i| sleep(Duration::from_micros(1_000 + i * 37 % 100_000_000)))
                .collect();
            for s in sleeps.iter_mut() {
                assert!(std::future::Future::poll(std::pin::Pin::new(s), &mut cx).is_pending());
            }
            drop(sleeps);
        });
        assert_eq!(rt.stats().timers_alive, 0);
    });
}

#[test]
fn a_task_spinning_on_yield_does_not_starve_a_timer() {
    watchdog("spinner vs timer", LIMIT, || {
        ringloop::block_on(async {
            let spinner = ringloop::spawn(async {
                loop {
                    ringloop::task::yield_now().await;
                }
            });
            let start = Instant::now();
            sleep(Duration::from_millis(5)).await;
            let took = start.elapsed();
            assert!(took < Duration::from_secs(2), "timer starved for {took:?}");
            spinner.abort();
        });
    });
}

#[test]
fn interval_ticks_on_schedule_and_bursts_after_missed_ticks() {
    watchdog("interval", LIMIT, || {
        ringloop::block_on(async {
            let period = Duration::from_millis(2);
            let mut every = interval(period);
            assert_eq!(every.missed_tick_behavior(), MissedTickBehavior::Burst);
            let first = every.tick().await;
            let second = every.tick().await;
            assert_eq!(second - first, period);
            assert!(Instant::now() >= second);
            // Fall behind by ~3 periods: Burst returns the missed ticks at once, on schedule.
            std::thread::sleep(period * 3);
            let t3 = every.tick().await;
            let t4 = every.tick().await;
            assert_eq!(t3 - second, period);
            assert_eq!(t4 - t3, period);

            let mut delayed = interval(period);
            delayed.set_missed_tick_behavior(MissedTickBehavior::Delay);
            delayed.tick().await;
            std::thread::sleep(period * 3);
            let late = delayed.tick().await;
            let next = delayed.tick().await;
            assert!(
                next - late >= period * 3,
                "Delay restarts the schedule after a missed tick"
            );
        });
    });
}

#[test]
fn resetting_a_fired_sleep_waits_again() {
    ringloop::block_on(async {
        let mut s = sleep(Duration::from_micros(100));
        (&mut s).await;
        assert!(s.is_elapsed());
        let again = Instant::now() + Duration::from_millis(2);
        s.reset(again);
        assert!(!s.is_elapsed());
        (&mut s).await;
        assert!(Instant::now() >= again);
    });
}

#[test]
fn sleeps_with_timer_spin_are_never_early_and_the_runtime_still_parks_when_idle() {
    watchdog("timer spin", LIMIT, || {
        let rt = ringloop::Builder::new()
            .timer_spin(Duration::from_micros(50))
            .build()
            .unwrap();
        rt.block_on(async {
            for i in 0..200u64 {
                let d = Duration::from_micros(20 + (i * 37) % 400);
                let start = Instant::now();
                sleep(d).await;
                assert!(start.elapsed() >= d);
            }
        });
        // Far from any deadline the runtime sleeps in the ring instead of spinning: a 50 ms
        // sleep costs far less than 50 ms of this thread's CPU time.
        let cpu = || {
            let usage =
                nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_THREAD).unwrap();
            let t = |tv: nix::sys::time::TimeVal| {
                Duration::new(tv.tv_sec() as u64, tv.tv_usec() as u32 * 1000)
            };
            t(usage.user_time()) + t(usage.system_time())
        };
        let before = cpu();
        rt.block_on(async { sleep(Duration::from_millis(50)).await });
        let spent = cpu() - before;
        assert!(
            spent < Duration::from_millis(25),
            "{spent:?} of CPU for one 50 ms sleep: the runtime spun"
        );
    });
}

#[test]
fn a_thousand_sleeps_beside_a_busy_task_and_those_armed_as_they_fire_are_never_early() {
    // HARDENING row 13: 1,000 sleeps of 1-50 ms at once beside a task that never parks; each
    // task then arms a second sleep in the turn its first one fired (an insert while the
    // wheel's due timers are being woken).
    watchdog("1k sleeps beside busy", LIMIT, || {
        let seed = fastrand::u64(..);
        println!("seed {seed}");
        let mut rng = fastrand::Rng::with_seed(seed);
        let early: Rc<RefCell<Vec<(Duration, Duration)>>> = Rc::default();
        ringloop::block_on(async {
            let busy = ringloop::spawn(async {
                loop {
                    std::hint::black_box((0..2_000).sum::<u64>());
                    ringloop::task::yield_now().await;
                }
            });
            let handles: Vec<_> = (0..1000)
                .map(|_| {
                    let first = Duration::from_micros(rng.u64(1_000..50_000));
                    let second = Duration::from_micros(rng.u64(0..3_000));
                    let early = early.clone();
                    ringloop::spawn(async move {
                        for d in [first, second] {
                            let start = Instant::now();
                            sleep(d).await;
                            let took = start.elapsed();
                            if took < d {
                                early.borrow_mut().push((d, took));
                            }
                        }
                    })
                })
                .collect();
            for h in handles {
                h.await.unwrap();
            }
            busy.abort();
        });
        let early = early.borrow();
        assert!(
            early.is_empty(),
            "sleeps woke early (asked, slept): {early:?} (seed {seed})"
        );
    });
}
