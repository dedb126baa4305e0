//! Wakers: stale wakers, wakes from other threads, remote spawns.

mod support;

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use ringloop::task::yield_now;
use support::{watchdog, Counted};

const LIMIT: Duration = Duration::from_secs(60);

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn wakers_and_handles_are_send_and_sync() {
    assert_send_sync::<Waker>();
    assert_send_sync::<ringloop::Handle>();
    assert_send_sync::<ringloop::RemoteJoinHandle<u8>>();
}

#[test]
fn stale_waker_after_slot_reuse_does_not_wake_the_new_task() {
    ringloop::block_on(async {
        let stale: Rc<RefCell<Option<Waker>>> = Rc::default();
        ringloop::spawn({
            let stale = stale.clone();
            poll_fn(move |cx| {
                *stale.borrow_mut() = Some(cx.waker().clone());
                Poll::Ready(())
            })
        })
        .await
        .unwrap();

        // The next task reuses the freed slot; it counts its polls and waits forever.
        let polls = Arc::new(AtomicUsize::new(0));
        let drops = Arc::new(AtomicUsize::new(0));
        let task = ringloop::spawn(Counted {
            inner: std::future::pending::<()>(),
            polls: polls.clone(),
            drops,
        });
        yield_now().await;
        assert_eq!(polls.load(Ordering::SeqCst), 1);

        let stale = stale.borrow_mut().take().unwrap();
        stale.wake_by_ref();
        stale.wake();
        for _ in 0..10 {
            yield_now().await;
        }
        assert_eq!(
            polls.load(Ordering::SeqCst),
            1,
            "the stale waker woke the new task"
        );
        task.abort();
    });
}

/// A one-shot flag a std thread sets and wakes.
#[derive(Default)]
struct Signal {
    set: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Signal {
    fn fire(&self) {
        self.set.store(true, Ordering::SeqCst);
        if let Some(w) = self.waker.lock().unwrap().take() {
            w.wake();
        }
    }

    async fn wait(&self) {
        poll_fn(|cx| {
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            if self.set.load(Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

#[test]
fn waker_woken_from_a_thread_after_50ms_wakes_a_runtime_blocked_in_the_ring() {
    watchdog("remote wake", LIMIT, || {
        let rt = ringloop::Runtime::new().unwrap();
        let signal = Arc::new(Signal::default());
        let start = Instant::now();
        let fired_at = Arc::new(Mutex::new(None));
        let thread = {
            let signal = signal.clone();
            let fired_at = fired_at.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                *fired_at.lock().unwrap() = Some(Instant::now());
                signal.fire();
            })
        };
        // Inside a spawned task, so the task waker (not block_on's) crosses threads.
        let woke_at = rt.block_on(async {
            let signal = signal.clone();
            ringloop::spawn(async move {
                signal.wait().await;
                Instant::now()
            })
            .await
            .unwrap()
        });
        thread.join().unwrap();
        let fired_at = fired_at.lock().unwrap().unwrap();
        assert!(woke_at.duration_since(start) >= Duration::from_millis(50));
        let latency = woke_at.duration_since(fired_at);
        println!("cross-thread wake latency: {latency:?}");
        assert!(
            latency < Duration::from_millis(500),
            "woke {latency:?} after the remote wake"
        );
        assert!(rt.stats().remote_wakes >= 1);
    });
}

#[test]
fn handle_spawn_from_another_thread_runs_on_the_runtime_thread() {
    watchdog("handle spawn", LIMIT, || {
        let rt = ringloop::Runtime::new().unwrap();
        let handle = rt.handle();
        let runtime_thread = std::thread::current().id();
        let joins: Vec<_> = (0..4)
            .map(|i| {
                let handle = handle.clone();
                std::thread::spawn(move || {
                    handle.spawn(async move { (i, std::thread::current().id()) })
                })
            })
            .map(|t| t.join().unwrap())
            .collect();
        let results = rt.block_on(async {
            let mut out = Vec::new();
            for join in joins {
                out.push(join.await.unwrap());
            }
            out
        });
        for (i, (n, thread)) in results.into_iter().enumerate() {
            assert_eq!(n, i);
            assert_eq!(thread, runtime_thread);
        }
    });
}

#[test]
fn remote_join_handle_can_be_awaited_from_another_thread() {
    watchdog("remote join", LIMIT, || {
        let rt = ringloop::Runtime::new().unwrap();
        let handle = rt.handle();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let join = handle.spawn(async { 7 });
            // Await it on a second ringloop runtime on this thread.
            let other = ringloop::Runtime::new().unwrap();
            let out = other.block_on(join).unwrap();
            tx.send(()).unwrap();
            out
        });
        rt.block_on(async {
            while rx.try_recv().is_err() {
                ringloop::time::sleep(Duration::from_millis(1)).await;
            }
        });
        assert_eq!(waiter.join().unwrap(), 7);
    });
}

#[test]
fn remote_spawn_after_the_runtime_is_gone_is_cancelled() {
    let rt = ringloop::Runtime::new().unwrap();
    let handle = rt.handle();
    drop(rt);
    let join = handle.spawn(async { 1 });
    let out = ringloop::block_on(join);
    assert!(out.unwrap_err().is_cancelled());
}

#[test]
fn remote_abort_cancels_a_running_task() {
    watchdog("remote abort", LIMIT, || {
        let rt = ringloop::Runtime::new().unwrap();
        let join = rt.handle().spawn(std::future::pending::<()>());
        let join = Arc::new(join);
        rt.block_on(async {
            yield_now().await;
            let j = join.clone();
            std::thread::spawn(move || j.abort()).join().unwrap();
            while !join.is_finished() {
                ringloop::time::sleep(Duration::from_millis(1)).await;
            }
        });
        let join = Arc::try_unwrap(join).unwrap();
        assert!(rt.block_on(join).unwrap_err().is_cancelled());
    });
}

#[test]
fn eight_threads_waking_one_task_a_million_times_free_it_exactly_once() {
    watchdog("wake storm", LIMIT, || {
        let rt = ringloop::Runtime::new().unwrap();
        let drops = Arc::new(AtomicUsize::new(0));
        let polls = Arc::new(AtomicUsize::new(0));
        let waker_slot: Arc<Mutex<Option<Waker>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let slot = waker_slot.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let waker = loop {
                        if let Some(w) = slot.lock().unwrap().clone() {
                            break w;
                        }
                        std::thread::yield_now();
                    };
                    for i in 0..125_000 {
                        if i % 1024 == 0 && stop.load(Ordering::Relaxed) {
                            break;
                        }
                        waker.wake_by_ref();
                    }
                })
            })
            .collect();
        let done = Rc::new(Cell::new(false));
        rt.block_on(async {
            let slot = waker_slot.clone();
            let done2 = done.clone();
            let inner = poll_fn(move |cx| {
                *slot.lock().unwrap() = Some(cx.waker().clone());
                if done2.get() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            });
            let task = ringloop::spawn(Counted {
                inner: Box::pin(inner),
                polls: polls.clone(),
                drops: drops.clone(),
            });
            while polls.load(Ordering::SeqCst) < 100 {
                ringloop::time::sleep(Duration::from_micros(200)).await;
            }
            done.set(true);
            // Wake it once more ourselves so it observes `done`.
            waker_slot.lock().unwrap().clone().unwrap().wake();
            task.await.unwrap();
        });
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        // Wakes still queued for the finished task are stale: harmless.
        rt.block_on(async {
            for _ in 0..10 {
                yield_now().await;
            }
        });
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert_eq!(rt.stats().tasks_alive, 0);
    });
}

#[test]
fn waker_woken_after_its_runtime_dropped_does_nothing() {
    let rt = ringloop::Runtime::new().unwrap();
    let waker = rt.block_on(async {
        ringloop::spawn(poll_fn(|cx| Poll::Ready(cx.waker().clone())))
            .await
            .unwrap()
    });
    drop(rt);
    std::thread::spawn(move || {
        waker.wake_by_ref();
        waker.wake();
    })
    .join()
    .unwrap();
}

#[test]
fn a_task_woken_by_a_oneshot_sent_from_a_std_thread_runs_on_its_own_shard() {
    // HARDENING row 16: the value is sent 10 ms later from a plain thread; the task is woken
    // through its shard's remote queue and polled on that shard's thread, never the sender's.
    watchdog("oneshot from a std thread", LIMIT, || {
        let outputs = ringloop::shard::Builder::new()
            .shards(2)
            .pin_cores(false)
            .build()
            .unwrap()
            .run(|shard| async move {
                let shard_thread = std::thread::current().id();
                let (tx, rx) = tokio::sync::oneshot::channel::<(usize, std::thread::ThreadId)>();
                let task = ringloop::spawn(async move {
                    let before = std::thread::current().id();
                    let (value, sender) = rx.await.expect("the sender sends");
                    (value, sender, before, std::thread::current().id())
                });
                let sent_at = Instant::now();
                let sender = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(10));
                    tx.send((shard.id(), std::thread::current().id())).unwrap();
                });
                let (value, sender_thread, before, after) = task.await.unwrap();
                let waited = sent_at.elapsed();
                sender.join().unwrap();
                assert_eq!(value, shard.id());
                assert_eq!(before, shard_thread, "the task started off its shard");
                assert_eq!(after, shard_thread, "the woken task ran off its shard");
                assert_ne!(after, sender_thread);
                (waited, ringloop::RuntimeStats::current().remote_wakes)
            });
        for (shard, out) in outputs.into_iter().enumerate() {
            let (waited, remote_wakes) = out.unwrap_or_else(|_| panic!("shard {shard} panicked"));
            println!("shard {shard}: woken {waited:?} after the send was scheduled");
            assert!(waited >= Duration::from_millis(10));
            assert!(
                waited < Duration::from_millis(500),
                "shard {shard}: woken after {waited:?}"
            );
            assert!(
                remote_wakes >= 1,
                "shard {shard}: the wake did not cross threads"
            );
        }
    });
}
