//! Shutdown and re-entry: dropping a runtime with work in flight, calling `block_on` again,
//! and wakers or futures that outlive their runtime.
//!
//! HARDENING rows 11 (teardown with operations in flight) and 19 (shutdown never hangs).

mod support;

use std::cell::Cell;
use std::future::Future;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use ringloop::fs::File;
use ringloop::time::sleep;
use ringloop::{Builder, Runtime};
use support::{open_fds, poll_once, wait_until, watchdog, CountedBuf};

const LIMIT: Duration = Duration::from_secs(60);
const SETTLE: Duration = Duration::from_secs(10);

fn file(fd: OwnedFd) -> Rc<File> {
    Rc::new(File::from_std(std::fs::File::from(fd)))
}

#[test]
fn dropping_a_runtime_with_work_in_flight_returns_quickly_and_closes_every_fd() {
    const READS: usize = 1000;
    const PIPES: usize = 64;
    let name = "dropping_a_runtime_with_work_in_flight_returns_quickly_and_closes_every_fd";
    support::isolated(name, || {
        watchdog(name, LIMIT, || {
            let baseline = open_fds();
            let alive = Arc::new(AtomicUsize::new(0));
            let dropped = Rc::new(Cell::new(0usize));
            let (reads, writes): (Vec<OwnedFd>, Vec<OwnedFd>) =
                (0..PIPES).map(|_| support::pipe()).unzip();
            let (full_r, full_w) = support::pipe();
            support::fill_pipe(full_w.as_fd());
            let rt = Runtime::new().unwrap();
            rt.block_on(async {
                let files: Vec<Rc<File>> = reads.into_iter().map(file).collect();
                // 1000 reads the kernel holds (their pipes never get data).
                for i in 0..READS {
                    let file = files[i % PIPES].clone();
                    let buf = CountedBuf::new(128, &alive);
                    let guard = DropCounter(dropped.clone());
                    ringloop::spawn(async move {
                        let _guard = guard;
                        let _ = file.read_at(buf, 0).await;
                        unreachable!("nothing is ever written to these pipes");
                    });
                }
                // Timers an hour away.
                for _ in 0..100 {
                    let guard = DropCounter(dropped.clone());
                    ringloop::spawn(async move {
                        let _guard = guard;
                        sleep(Duration::from_secs(3600)).await;
                    });
                }
                // A write blocked on a full pipe.
                let blocked = file(full_w);
                let buf = CountedBuf::new(4096, &alive);
                ringloop::spawn(async move {
                    let _ = blocked.write_at(buf, 0).await;
                });
                wait_until("every read and the write to be in the ring", SETTLE, || {
                    rt.stats().ops_in_flight > READS as u64
                })
                .await;
                // SQEs pushed but never submitted: polled once, then moved into tasks, and
                // block_on returns before the ring turns again.
                for file in files.iter().take(8) {
                    let file = file.clone();
                    let buf = CountedBuf::new(128, &alive);
                    let mut read = Box::pin(async move { file.read_at(buf, 0).await });
                    assert!(poll_once(&mut read).await.is_pending());
                    ringloop::spawn(read);
                }
                // Tasks spawned and never polled.
                for _ in 0..100 {
                    let guard = DropCounter(dropped.clone());
                    ringloop::spawn(async move {
                        let _guard = guard;
                        unreachable!("never polled: the runtime is dropped first");
                    });
                }
            });
            let stats = rt.stats();
            let start = Instant::now();
            drop(rt);
            let took = start.elapsed();
            println!(
                "dropping the runtime with {} ops in flight took {took:?}",
                stats.ops_in_flight
            );
            assert!(took < Duration::from_secs(2), "runtime drop took {took:?}");
            assert_eq!(dropped.get(), READS + 200, "every task's future is dropped");
            assert_eq!(
                alive.load(Ordering::SeqCst),
                0,
                "buffers of cancelled ops still alive"
            );
            drop(writes);
            drop(full_r);
            assert_eq!(open_fds(), baseline, "fds leaked by the runtime's shutdown");
        });
    });
}

struct DropCounter(Rc<Cell<usize>>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn block_on_twice_continues_tasks_left_pending() {
    watchdog("block_on_twice_continues_tasks_left_pending", LIMIT, || {
        let rt = Runtime::new().unwrap();
        let (r, w) = support::pipe();
        let (reader, timer, counter) = rt.block_on(async {
            let file = File::from_std(std::fs::File::from(r));
            let reader = ringloop::spawn(async move {
                let (res, buf) = file.read_at(vec![0u8; 32], 0).await;
                buf[..res.unwrap()].to_vec()
            });
            let timer = ringloop::spawn(async {
                let t = Instant::now();
                sleep(Duration::from_millis(20)).await;
                t.elapsed()
            });
            let counter = ringloop::spawn(async {
                let mut n = 0u32;
                for _ in 0..1000 {
                    ringloop::task::yield_now().await;
                    n += 1;
                }
                n
            });
            // Let them start, then leave them pending.
            ringloop::task::yield_now().await;
            (reader, timer, counter)
        });
        assert!(!reader.is_finished(), "nothing was written yet");
        nix::unistd::write(&w, b"between the calls").unwrap();
        let late = rt.spawn(async { "spawned between the calls" });
        let (data, slept, counted, late) = rt.block_on(async {
            let data = reader.await.unwrap();
            let slept = timer.await.unwrap();
            (data, slept, counter.await.unwrap(), late.await.unwrap())
        });
        assert_eq!(data, b"between the calls");
        assert!(slept >= Duration::from_millis(20));
        assert_eq!(counted, 1000);
        assert_eq!(late, "spawned between the calls");
        // And a third time, with nothing left over.
        assert_eq!(rt.block_on(async { 5 }), 5);
        let stats = rt.stats();
        assert_eq!(
            (stats.tasks_alive, stats.ops_in_flight),
            (0, 0),
            "{stats:?}"
        );
    });
}

/// Pending forever; hands its waker out on the first poll.
struct GiveWaker(Option<std::sync::mpsc::Sender<Waker>>);

impl Future for GiveWaker {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(tx) = self.0.take() {
            tx.send(cx.waker().clone()).unwrap();
        }
        Poll::Pending
    }
}

#[test]
fn wakers_woken_from_another_thread_after_the_runtime_dropped_do_nothing() {
    watchdog(
        "wakers_woken_from_another_thread_after_the_runtime_dropped_do_nothing",
        LIMIT,
        || {
            let (tx, rx) = std::sync::mpsc::channel::<Waker>();
            let rt = Runtime::new().unwrap();
            rt.block_on(async {
                for _ in 0..10 {
                    ringloop::spawn(GiveWaker(Some(tx.clone())));
                }
                // block_on's own waker too.
                let _ = poll_once(&mut GiveWaker(Some(tx.clone()))).await;
                ringloop::task::yield_now().await;
            });
            drop(tx);
            let wakers: Vec<Waker> = rx.iter().collect();
            assert_eq!(wakers.len(), 11);
            drop(rt);
            // A new runtime may take the old one's id: stale wakers must not disturb it.
            let rt2 = Runtime::new().unwrap();
            let waking = std::thread::spawn(move || {
                for _ in 0..1000 {
                    for w in &wakers {
                        w.wake_by_ref();
                        let clone = w.clone();
                        clone.wake();
                    }
                }
                wakers
            });
            let sum = rt2.block_on(async {
                let tasks: Vec<_> = (0..100u64)
                    .map(|i| {
                        ringloop::spawn(async move {
                            sleep(Duration::from_micros(50)).await;
                            ringloop::task::yield_now().await;
                            i
                        })
                    })
                    .collect();
                let mut sum = 0;
                for t in tasks {
                    sum += t.await.unwrap();
                }
                sum
            });
            assert_eq!(sum, 4950);
            let wakers = waking
                .join()
                .expect("waking a dead runtime's wakers panicked");
            drop(rt2);
            // And once more with no runtime at all, on this thread.
            for w in wakers {
                w.wake();
            }
        },
    );
}

#[test]
// block_on hands the read future itself out of the runtime, on purpose.
#[allow(clippy::async_yields_async)]
fn read_future_that_outlives_its_runtime_resolves_cancelled() {
    watchdog(
        "read_future_that_outlives_its_runtime_resolves_cancelled",
        LIMIT,
        || {
            let alive = Arc::new(AtomicUsize::new(0));
            let (r, w) = support::pipe();
            let rt = Runtime::new().unwrap();
            let mut read = rt.block_on(async {
                let file = File::from_std(std::fs::File::from(r));
                let buf = CountedBuf::new(64, &alive);
                let mut read = Box::pin(async move { file.read_at(buf, 0).await });
                assert!(poll_once(&mut read).await.is_pending());
                ringloop::task::yield_now().await;
                read
            });
            let start = Instant::now();
            drop(rt);
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "drop took {:?}",
                start.elapsed()
            );
            // The runtime cancelled the read on its way out; the future still owns the buffer.
            struct Noop;
            impl std::task::Wake for Noop {
                fn wake(self: Arc<Self>) {}
            }
            let waker = Waker::from(Arc::new(Noop));
            let mut cx = Context::from_waker(&waker);
            match read.as_mut().poll(&mut cx) {
                Poll::Ready((res, buf)) => {
                    let err = res.expect_err("nothing was written");
                    println!("read polled after its runtime dropped: {err}");
                    assert_eq!(err.raw_os_error(), Some(libc::ECANCELED), "{err}");
                    drop(buf);
                }
                Poll::Pending => panic!("a read whose runtime is gone stays pending forever"),
            }
            drop(read);
            assert_eq!(alive.load(Ordering::SeqCst), 0);
            drop(w);
        },
    );
}

#[test]
fn shutdown_drops_tasks_that_spawn_or_hold_handles_in_their_drop() {
    watchdog(
        "shutdown_drops_tasks_that_spawn_or_hold_handles_in_their_drop",
        LIMIT,
        || {
            struct SpawnOnDrop(Rc<Cell<usize>>);
            impl Drop for SpawnOnDrop {
                fn drop(&mut self) {
                    // Spawning while the runtime shuts down: the task is dropped unpolled.
                    let counter = DropCounter(self.0.clone());
                    drop(ringloop::spawn(async move {
                        let _counter = counter;
                        std::future::pending::<()>().await;
                    }));
                }
            }
            let dropped = Rc::new(Cell::new(0usize));
            let rt = Builder::new().entries(8).build().unwrap();
            rt.block_on(async {
                let mut previous = None;
                for _ in 0..100 {
                    let guard = SpawnOnDrop(dropped.clone());
                    // Each task holds the previous JoinHandle: dropping one detaches another.
                    let handle = ringloop::spawn(async move {
                        let _guard = guard;
                        let _previous = previous;
                        sleep(Duration::from_secs(3600)).await;
                    });
                    previous = Some(handle);
                }
                drop(previous);
                ringloop::task::yield_now().await;
            });
            let start = Instant::now();
            drop(rt);
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "drop took {:?}",
                start.elapsed()
            );
            assert_eq!(
                dropped.get(),
                100,
                "tasks spawned during shutdown are dropped too"
            );
        },
    );
}

#[test]
fn dropping_a_runtime_with_a_pending_accept_multishot_recv_timer_and_blocked_write_is_prompt() {
    // HARDENING row 19: each kind of operation that never completes on its own, at once.
    let name =
        "dropping_a_runtime_with_a_pending_accept_multishot_recv_timer_and_blocked_write_is_prompt";
    support::isolated(name, || {
        watchdog(name, Duration::from_secs(5), || {
            use ringloop::net::{BufferPool, TcpListener};
            let baseline = open_fds();
            let alive = Arc::new(AtomicUsize::new(0));
            let rt = Runtime::new().unwrap();
            let peers = rt.block_on(async {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                let idle = std::net::TcpStream::connect(addr).unwrap();
                let (stream, _) = listener.accept().await.unwrap();
                // A multishot receive on a silent connection.
                let pool = BufferPool::new(4, 256).unwrap();
                ringloop::spawn(async move {
                    let mut rx = stream.recv_pooled(&pool);
                    let _ = rx.next().await;
                    unreachable!("the peer never writes");
                });
                // A write blocked on a peer that never reads.
                let blocked = std::net::TcpStream::connect(addr).unwrap();
                let (writer, _) = listener.accept().await.unwrap();
                let buf = CountedBuf::new(64 << 20, &alive);
                ringloop::spawn(async move {
                    let _ = writer.write_all(buf).await;
                    unreachable!("64 MiB cannot fit in the socket buffers of a silent peer");
                });
                // An accept nobody will connect to.
                ringloop::spawn(async move {
                    let _ = listener.accept().await;
                    unreachable!("nobody connects");
                });
                // A timer an hour away.
                ringloop::spawn(async {
                    sleep(Duration::from_secs(3600)).await;
                });
                wait_until("accept, recv and write to be in the ring", SETTLE, || {
                    ringloop::RuntimeStats::current().ops_in_flight >= 3
                })
                .await;
                (idle, blocked)
            });
            let start = Instant::now();
            drop(rt);
            let took = start.elapsed();
            println!("runtime drop with accept, multishot recv, timer and write pending: {took:?}");
            // Measured at 0.2-3 ms; an operation the cancel missed would cost the 1 s grace.
            assert!(
                took < Duration::from_millis(100),
                "runtime drop took {took:?}"
            );
            assert_eq!(
                alive.load(Ordering::SeqCst),
                0,
                "the write buffer is still alive"
            );
            drop(peers);
            assert_eq!(open_fds(), baseline, "fds leaked by the runtime's shutdown");
        });
    });
}

/// A blocking job that takes `millis` and then counts itself done.
fn start_blocking_job(rt: &Runtime, millis: u64, done: &Arc<AtomicUsize>) {
    let done = done.clone();
    rt.block_on(async move {
        drop(ringloop::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(millis));
            done.fetch_add(1, Ordering::SeqCst);
        }));
        // Give the pool a moment to start the job (it runs whether or not it started yet).
        sleep(Duration::from_millis(5)).await;
    });
}

#[test]
fn shutdown_timeout_waits_for_running_blocking_jobs_and_a_drop_does_not() {
    support::watchdog("shutdown_timeout waits", Duration::from_secs(60), || {
        let done = Arc::new(AtomicUsize::new(0));
        let rt = Runtime::new().unwrap();
        start_blocking_job(&rt, 500, &done);
        drop(rt);
        assert_eq!(
            done.load(Ordering::SeqCst),
            0,
            "a drop leaves the job running"
        );

        let done = Arc::new(AtomicUsize::new(0));
        let rt = Runtime::new().unwrap();
        start_blocking_job(&rt, 50, &done);
        rt.shutdown_timeout(Duration::from_secs(30));
        assert_eq!(
            done.load(Ordering::SeqCst),
            1,
            "shutdown_timeout waited for the job"
        );
    });
}

#[test]
fn shutdown_timeout_gives_up_at_its_deadline() {
    support::watchdog("shutdown_timeout deadline", Duration::from_secs(60), || {
        let done = Arc::new(AtomicUsize::new(0));
        let rt = Runtime::new().unwrap();
        start_blocking_job(&rt, 5_000, &done);
        let start = Instant::now();
        rt.shutdown_timeout(Duration::from_millis(50));
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(50), "{took:?}");
        assert!(took < Duration::from_millis(2_500), "{took:?}");
        assert_eq!(done.load(Ordering::SeqCst), 0);
    });
}
