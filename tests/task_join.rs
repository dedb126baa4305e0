//! Spawning and joining tasks: outputs, panics, aborts, detaching, many tasks.

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringloop::task::yield_now;
use support::{watchdog, Counted};

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn hundred_thousand_tasks_each_yielding_ten_times_all_complete() {
    watchdog("100k tasks", LIMIT, || {
        let rt = ringloop::Runtime::new().unwrap();
        let done = Rc::new(Cell::new(0u32));
        rt.block_on(async {
            let handles: Vec<_> = (0..100_000u32)
                .map(|i| {
                    let done = done.clone();
                    ringloop::spawn(async move {
                        for _ in 0..10 {
                            yield_now().await;
                        }
                        done.set(done.get() + 1);
                        i
                    })
                })
                .collect();
            for (i, h) in handles.into_iter().enumerate() {
                assert_eq!(h.await.unwrap(), i as u32);
            }
        });
        assert_eq!(done.get(), 100_000);
        let stats = rt.stats();
        assert_eq!(stats.tasks_alive, 0);
        assert!(
            stats.polls >= 100_000 * 11,
            "each task is polled 11 times: {stats:?}"
        );
    });
}

#[test]
fn join_handle_returns_the_output_of_non_send_futures() {
    ringloop::block_on(async {
        let shared = Rc::new(Cell::new(1));
        let task = ringloop::spawn({
            let shared = shared.clone();
            async move {
                shared.set(shared.get() + 1);
                String::from("out")
            }
        });
        assert_eq!(task.await.unwrap(), "out");
        assert_eq!(shared.get(), 2);
    });
}

#[test]
fn panicking_task_is_reported_through_its_handle_and_the_runtime_goes_on() {
    let rt = ringloop::Runtime::new().unwrap();
    rt.block_on(async {
        let seven = std::hint::black_box(7);
        let err = ringloop::spawn(async move { panic!("boom {seven}") })
            .await
            .unwrap_err();
        assert!(err.is_panic());
        assert!(!err.is_cancelled());
        assert_eq!(err.to_string(), "task panicked with message \"boom 7\"");
        let payload = err.into_panic();
        assert_eq!(
            payload.downcast_ref::<String>().map(String::as_str),
            Some("boom 7")
        );
        // Still serving tasks and timers.
        assert_eq!(ringloop::spawn(async { 5 }).await.unwrap(), 5);
        ringloop::time::sleep(Duration::from_millis(1)).await;
    });
    assert_eq!(rt.stats().tasks_alive, 0);
}

#[test]
fn aborted_task_is_cancelled_and_its_future_dropped_once() {
    let polls = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    ringloop::block_on(async {
        let future = Counted {
            inner: std::future::pending::<()>(),
            polls: polls.clone(),
            drops: drops.clone(),
        };
        let task = ringloop::spawn(future);
        yield_now().await;
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        assert!(!task.is_finished());
        task.abort();
        task.abort(); // idempotent
        let err = task.await.unwrap_err();
        assert!(err.is_cancelled());
        assert_eq!(err.to_string(), "task was cancelled");
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert_eq!(
        polls.load(Ordering::SeqCst),
        1,
        "an aborted task is not polled again"
    );
}

#[test]
fn abort_before_first_poll_never_polls_the_future() {
    let polls = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    ringloop::block_on(async {
        let future = Counted {
            inner: std::future::ready(()),
            polls: polls.clone(),
            drops: drops.clone(),
        };
        let task = ringloop::spawn(future);
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
    });
    assert_eq!(
        (polls.load(Ordering::SeqCst), drops.load(Ordering::SeqCst)),
        (0, 1)
    );
}

#[test]
fn abort_after_completion_keeps_the_output() {
    ringloop::block_on(async {
        let task = ringloop::spawn(async { 9 });
        while !task.is_finished() {
            yield_now().await;
        }
        task.abort();
        assert_eq!(task.await.unwrap(), 9);
    });
}

#[test]
fn dropping_the_join_handle_detaches_the_task() {
    let rt = ringloop::Runtime::new().unwrap();
    let ran = Rc::new(Cell::new(false));
    rt.block_on(async {
        let ran = ran.clone();
        drop(ringloop::spawn(async move {
            ringloop::time::sleep(Duration::from_millis(2)).await;
            ran.set(true);
        }));
    });
    // The detached task continues in the next block_on.
    rt.block_on(async {
        while !ran.get() {
            ringloop::time::sleep(Duration::from_millis(1)).await;
        }
    });
    assert_eq!(
        rt.stats().tasks_alive,
        0,
        "a detached task frees its slot when it finishes"
    );
}

#[test]
fn task_that_aborts_itself_is_cancelled_at_its_next_yield() {
    ringloop::block_on(async {
        let slot: Rc<Cell<Option<ringloop::JoinHandle<()>>>> = Rc::new(Cell::new(None));
        let reached_end = Rc::new(Cell::new(false));
        let task = ringloop::spawn({
            let slot = slot.clone();
            let reached_end = reached_end.clone();
            async move {
                yield_now().await;
                if let Some(me) = slot.take() {
                    me.abort();
                    slot.set(Some(me));
                }
                yield_now().await;
                reached_end.set(true);
            }
        });
        // Hand the task its own handle through a second, joinable task.
        slot.set(Some(task));
        for _ in 0..10 {
            yield_now().await;
        }
        let task = slot.take().expect("handle is back");
        assert!(task.await.unwrap_err().is_cancelled());
        assert!(!reached_end.get());
    });
}

#[test]
#[should_panic(expected = "there is no ringloop runtime on this thread")]
fn spawn_outside_a_runtime_panics_with_a_clear_message() {
    drop(ringloop::spawn(async {}));
}

#[test]
#[should_panic(expected = "cannot start a ringloop runtime from within a runtime")]
fn nested_block_on_panics_with_a_clear_message() {
    let rt = ringloop::Runtime::new().unwrap();
    let inner = ringloop::Runtime::new().unwrap();
    rt.block_on(async { inner.block_on(async {}) });
}

#[test]
fn runtime_spawn_from_outside_runs_in_the_next_block_on() {
    let rt = ringloop::Runtime::new().unwrap();
    let task = rt.spawn(async { 3 });
    assert_eq!(rt.block_on(task).unwrap(), 3);
}

fn io_uring_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().contains("io_uring"))
        .count()
}

#[test]
fn dropping_the_runtime_closes_its_ring_even_if_a_join_handle_escapes() {
    support::isolated(
        "dropping_the_runtime_closes_its_ring_even_if_a_join_handle_escapes",
        || {
            let before = io_uring_fds();
            let rt = ringloop::Runtime::new().unwrap();
            assert_eq!(io_uring_fds(), before + 1);
            let escaped = rt.spawn(std::future::pending::<()>());
            drop(rt);
            assert_eq!(io_uring_fds(), before, "the ring fd outlived its runtime");
            // The task was dropped with its runtime: its handle reports cancellation.
            assert!(escaped.is_finished());
            let out = ringloop::block_on(escaped);
            assert!(out.unwrap_err().is_cancelled());
        },
    );
}

/// A future that is ready at once (or never) and whose `Drop` panics, counting drops.
struct PanicOnDrop {
    ready: bool,
    drops: Arc<AtomicUsize>,
}

impl std::future::Future for PanicOnDrop {
    type Output = u8;
    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<u8> {
        if self.ready {
            std::task::Poll::Ready(1)
        } else {
            std::task::Poll::Pending
        }
    }
}

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        panic!("drop panics");
    }
}

#[test]
fn a_future_whose_drop_panics_is_dropped_once_and_reported_as_a_panic() {
    let drops = Arc::new(AtomicUsize::new(0));
    let rt = ringloop::Runtime::new().unwrap();
    rt.block_on(async {
        let done = ringloop::spawn(PanicOnDrop {
            ready: true,
            drops: drops.clone(),
        });
        let err = done.await.unwrap_err();
        assert!(err.is_panic(), "{err:?}");
        assert_eq!(drops.load(Ordering::SeqCst), 1);

        let pending = ringloop::spawn(PanicOnDrop {
            ready: false,
            drops: drops.clone(),
        });
        yield_now().await;
        pending.abort();
        assert!(pending.await.unwrap_err().is_panic());
        assert_eq!(drops.load(Ordering::SeqCst), 2);

        // Still serving.
        assert_eq!(ringloop::spawn(async { 2 }).await.unwrap(), 2);
        ringloop::time::sleep(Duration::from_micros(50)).await;
    });
    // A pending one dropped with the runtime: its panic is contained too.
    drop(rt.spawn(PanicOnDrop {
        ready: false,
        drops: drops.clone(),
    }));
    drop(rt);
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}
