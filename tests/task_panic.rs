//! Panics in tasks, in `block_on`, in `Drop` and in wakers: each is a panic (exit code 101 in
//! a child process), never an abort, and the runtime keeps serving the tasks that did not panic.
//!
//! HARDENING row 17. Every scenario runs in a child process (this test binary, re-run filtered
//! to one test), so an abort fails that test instead of killing the whole binary.

mod support;

use std::cell::RefCell;
use std::future::Future;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant};

use ringloop::fs::File;
use ringloop::net::{TcpListener, TcpStream};
use ringloop::time::{sleep, timeout};
use ringloop::{JoinHandle, Runtime};
use support::{wait_until, watchdog};

const LIMIT: Duration = Duration::from_secs(60);
const SETTLE: Duration = Duration::from_secs(10);

/// Panics when dropped, with `self.0` as the message.
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("{}", self.0);
    }
}

/// A waker whose `wake` panics.
struct PanickingWaker;

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("this waker panics on purpose");
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// Runs this test alone in a child process and asserts that it ended by a panic (exit code
/// 101), not by a signal, after printing every marker in `markers`.
fn assert_child_panics(test_name: &str, markers: &[&str]) {
    let (status, output) = support::run_child(test_name, &[]);
    assert!(
        status.signal().is_none(),
        "`{test_name}` was killed by signal {:?} (abort?):\n{output}",
        status.signal()
    );
    assert_eq!(
        status.code(),
        Some(101),
        "`{test_name}` must end by a panic:\n{output}"
    );
    for marker in markers {
        assert!(
            output.contains(marker),
            "`{test_name}` never printed {marker:?}:\n{output}"
        );
    }
}

#[test]
fn panicking_task_and_panicking_block_on_exit_by_panic_not_abort() {
    let name = "panicking_task_and_panicking_block_on_exit_by_panic_not_abort";
    if !support::is_child() {
        assert_child_panics(
            name,
            &[
                "CHILD: task panic caught: task panicked with message \"a task panics on purpose\"",
                "CHILD: block_on is about to panic",
                "block_on's future panics on purpose",
                // The runtime was dropped during the unwind; this second panic stayed caught.
                "a task's drop panics during the unwind",
            ],
        );
        return;
    }
    watchdog(name, LIMIT, || {
        let (r, _w) = support::pipe();
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let err = ringloop::spawn(async { panic!("a task panics on purpose") })
                .await
                .unwrap_err();
            assert!(err.is_panic());
            println!("CHILD: task panic caught: {err}");
            // Left alive so the runtime is dropped while this thread unwinds: a task whose Drop
            // panics (a second panic during unwinding, which must stay caught), and a read.
            ringloop::spawn(async {
                let _bomb = PanicOnDrop("a task's drop panics during the unwind");
                std::future::pending::<()>().await;
            });
            let file = File::from_std(std::fs::File::from(r));
            ringloop::spawn(async move {
                let _ = file.read_at(vec![0u8; 8], 0).await;
            });
            ringloop::task::yield_now().await;
            println!("CHILD: block_on is about to panic");
            panic!("block_on's future panics on purpose");
        });
    });
}

#[test]
fn aborting_a_task_whose_drop_panics_reports_the_panic_and_the_runtime_goes_on() {
    let name = "aborting_a_task_whose_drop_panics_reports_the_panic_and_the_runtime_goes_on";
    support::isolated(name, || {
        watchdog(name, LIMIT, || {
            let rt = Runtime::new().unwrap();
            rt.block_on(async {
                let task = ringloop::spawn(async {
                    let _bomb = PanicOnDrop("drop panics on purpose while aborted");
                    std::future::pending::<()>().await;
                });
                ringloop::task::yield_now().await;
                task.abort();
                let err = task.await.unwrap_err();
                println!("aborted task whose Drop panics: {err:?}");
                // cell.rs: the drop's panic replaces the cancellation.
                assert!(err.is_panic(), "{err:?}");
                assert_eq!(
                    panic_message(&*err.into_panic()),
                    "drop panics on purpose while aborted"
                );

                // Detached, finishing normally, its output's Drop panics: swallowed.
                drop(ringloop::spawn(async {
                    PanicOnDrop("an output's drop panics on purpose")
                }));
                // Its future's Drop panics right after its last poll.
                let bomb = ringloop::spawn(async {
                    let _bomb = PanicOnDrop("a finished future's drop panics on purpose");
                    1
                });
                let err = bomb.await.unwrap_err();
                assert!(err.is_panic(), "{err:?}");

                // The runtime goes on: tasks, timers, I/O.
                assert_eq!(ringloop::spawn(async { 42 }).await.unwrap(), 42);
                let t = Instant::now();
                sleep(Duration::from_millis(5)).await;
                assert!(t.elapsed() >= Duration::from_millis(5));
                let (r, w) = support::pipe();
                let file = File::from_std(std::fs::File::from(r));
                nix::unistd::write(&w, b"still serving").unwrap();
                let (res, buf) = file.read_at(vec![0u8; 32], 0).await;
                assert_eq!(&buf[..res.unwrap()], b"still serving");

                // Left for shutdown (not during an unwind): dropped, its panic caught.
                ringloop::spawn(async {
                    let _bomb = PanicOnDrop("a task's drop panics at shutdown");
                    std::future::pending::<()>().await;
                });
                ringloop::task::yield_now().await;
            });
            drop(rt);
            println!("runtime with a panicking-drop task dropped cleanly");
        });
    });
}

#[test]
fn caught_task_panics_leave_the_runtime_serving_tasks_timers_and_io() {
    let name = "caught_task_panics_leave_the_runtime_serving_tasks_timers_and_io";
    support::isolated(name, || {
        watchdog(name, LIMIT, || {
            let rt = Runtime::new().unwrap();
            let path = support::temp_path("after-panic");
            rt.block_on(async {
                // Panics at the first poll, after a timer, and after an I/O completion.
                let (r, w) = support::pipe();
                let file = File::from_std(std::fs::File::from(r));
                let panickers: Vec<JoinHandle<()>> = vec![
                    ringloop::spawn(async { panic!("panic at first poll") }),
                    ringloop::spawn(async {
                        sleep(Duration::from_millis(1)).await;
                        panic!("panic after a timer");
                    }),
                    ringloop::spawn(async move {
                        let _ = file.read_at(vec![0u8; 8], 0).await;
                        panic!("panic after a read");
                    }),
                ];
                nix::unistd::write(&w, b"x").unwrap();
                for h in panickers {
                    assert!(h.await.unwrap_err().is_panic());
                }

                let tasks: Vec<_> = (0..1000u64)
                    .map(|i| {
                        ringloop::spawn(async move {
                            sleep(Duration::from_micros(i % 500)).await;
                            ringloop::task::yield_now().await;
                            i
                        })
                    })
                    .collect();
                let mut sum = 0;
                for t in tasks {
                    sum += t.await.unwrap();
                }
                assert_eq!(sum, 999 * 1000 / 2);
                let res = timeout(Duration::from_millis(2), std::future::pending::<()>()).await;
                assert!(res.is_err());
                let file = File::create(&path).await.unwrap();
                let (res, _) = file.write_all_at(b"after the panics".to_vec(), 0).await;
                res.unwrap();
                let (res, buf) = file.read_at(vec![0u8; 32], 0).await;
                assert_eq!(&buf[..res.unwrap()], b"after the panics");
                file.close().await.unwrap();
            });
            std::fs::remove_file(path).unwrap();
            let stats = rt.stats();
            assert_eq!(
                (stats.tasks_alive, stats.ops_in_flight),
                (0, 0),
                "{stats:?}"
            );
        });
    });
}

#[test]
fn an_echo_server_whose_connection_task_panics_keeps_serving_the_others() {
    // The row's scenario on TCP: one connection's task panics mid-conversation; the server's
    // accept loop and the other connections never notice, and new clients are served.
    let name = "an_echo_server_whose_connection_task_panics_keeps_serving_the_others";
    support::isolated(name, || {
        watchdog(name, LIMIT, || {
            let rt = Runtime::new().unwrap();
            rt.block_on(async {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                let server = ringloop::spawn(async move {
                    let mut handlers = Vec::new();
                    for _ in 0..6 {
                        let (stream, _) = listener.accept().await.unwrap();
                        handlers.push(ringloop::spawn(async move {
                            loop {
                                let (res, buf) = stream.read(Vec::with_capacity(64)).await;
                                if res.unwrap() == 0 {
                                    return;
                                }
                                assert!(buf != b"boom", "the client asked for a panic");
                                let (res, _) = stream.write_all(buf).await;
                                res.unwrap();
                            }
                        }));
                    }
                    let mut panicked = 0;
                    for h in handlers {
                        if let Err(e) = h.await {
                            assert!(e.is_panic());
                            panicked += 1;
                        }
                    }
                    panicked
                });
                let round_trip = |stream: Rc<TcpStream>, msg: &'static [u8]| async move {
                    let (res, _) = stream.write_all(msg.to_vec()).await;
                    res.unwrap();
                    let (res, back) = stream.read_exact(Vec::with_capacity(msg.len())).await;
                    res.unwrap();
                    assert_eq!(back, msg);
                };
                let mut clients = Vec::new();
                for _ in 0..5 {
                    clients.push(Rc::new(TcpStream::connect(addr).await.unwrap()));
                }
                for c in &clients {
                    round_trip(c.clone(), b"before").await;
                }
                // Client 2 makes its handler panic: its connection closes, with no reply.
                let (res, _) = clients[2].write_all(b"boom".to_vec()).await;
                res.unwrap();
                let (res, _) = clients[2].read(vec![0u8; 8]).await;
                assert!(
                    matches!(res, Ok(0) | Err(_)),
                    "the panicked connection is closed"
                );
                for (i, c) in clients.iter().enumerate() {
                    if i != 2 {
                        round_trip(c.clone(), b"after").await;
                    }
                }
                let late = Rc::new(TcpStream::connect(addr).await.unwrap());
                round_trip(late.clone(), b"a new client").await;
                drop(clients);
                drop(late);
                assert_eq!(server.await.unwrap(), 1, "exactly one handler panicked");
            });
            let stats = rt.stats();
            assert_eq!(
                (stats.tasks_alive, stats.ops_in_flight),
                (0, 0),
                "{stats:?}"
            );
        });
    });
}

/// Spawns one reading task per pipe; each returns the bytes it read.
fn spawn_readers(reads: Vec<OwnedFd>) -> Vec<JoinHandle<Vec<u8>>> {
    reads
        .into_iter()
        .map(|r| {
            let file = File::from_std(std::fs::File::from(r));
            ringloop::spawn(async move {
                let (res, buf) = file.read_at(vec![0u8; 16], 0).await;
                buf[..res.unwrap()].to_vec()
            })
        })
        .collect()
}

#[test]
fn panicking_waker_on_a_read_does_not_lose_the_wakes_of_ten_good_tasks() {
    // A future may be polled with any waker (a user's combinator, another executor's). If that
    // waker panics when the read completes, the ten reads completed in the same reap must
    // still wake their tasks.
    let name = "panicking_waker_on_a_read_does_not_lose_the_wakes_of_ten_good_tasks";
    support::isolated(name, || {
        watchdog(name, LIMIT, || {
            let rt = Runtime::new().unwrap();
            let (reads, writes): (Vec<OwnedFd>, Vec<OwnedFd>) =
                (0..11).map(|_| support::pipe()).unzip();
            let mut reads = reads.into_iter();
            let bad_read = reads.next().unwrap();
            let good: RefCell<Vec<JoinHandle<Vec<u8>>>> = RefCell::new(Vec::new());
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                rt.block_on(async {
                    *good.borrow_mut() = spawn_readers(reads.by_ref().collect());
                    let bad_file = File::from_std(std::fs::File::from(bad_read));
                    let mut bad = Box::pin(bad_file.read_at(vec![0u8; 16], 0));
                    let waker = Waker::from(Arc::new(PanickingWaker));
                    assert!(bad
                        .as_mut()
                        .poll(&mut Context::from_waker(&waker))
                        .is_pending());
                    wait_until("all eleven reads to be in the ring", SETTLE, || {
                        rt.stats().ops_in_flight >= 11
                    })
                    .await;
                    // The bad read's completion first, then the good ones: one reap.
                    for (i, w) in writes.iter().enumerate() {
                        nix::unistd::write(w, format!("pipe {i}").as_bytes()).unwrap();
                    }
                    // The good tasks finish here unless the panic escapes first.
                    let deadline = Instant::now() + Duration::from_secs(2);
                    while good.borrow().iter().any(|h| !h.is_finished())
                        && Instant::now() < deadline
                    {
                        sleep(Duration::from_millis(1)).await;
                    }
                    drop(bad);
                })
            }));
            match &outcome {
                Ok(()) => println!("the waker's panic did not escape block_on"),
                Err(p) => println!(
                    "the waker's panic escaped block_on: {:?}",
                    panic_message(&**p)
                ),
            }
            let handles = good.take();
            let results = rt.block_on(async {
                let deadline = Instant::now() + Duration::from_secs(5);
                let mut results = Vec::new();
                for (i, h) in handles.into_iter().enumerate() {
                    match ringloop::time::timeout_at(deadline, h).await {
                        Ok(out) => results.push(out.unwrap()),
                        Err(_) => panic!(
                            "good task {i} was never woken after another op's waker panicked: {:?}",
                            rt.stats()
                        ),
                    }
                }
                results
            });
            for (i, got) in results.iter().enumerate() {
                assert_eq!(got, format!("pipe {}", i + 1).as_bytes());
            }
        });
    });
}

#[test]
fn panicking_waker_on_a_timer_does_not_lose_the_other_timers() {
    let name = "panicking_waker_on_a_timer_does_not_lose_the_other_timers";
    support::isolated(name, || {
        watchdog(name, LIMIT, || {
            let rt = Runtime::new().unwrap();
            let good: RefCell<Vec<JoinHandle<()>>> = RefCell::new(Vec::new());
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                rt.block_on(async {
                    let deadline = Instant::now() + Duration::from_millis(20);
                    // Ten sleeps due at the same instant as the bad one, and ten a bit later.
                    *good.borrow_mut() = (0..20)
                        .map(|i| {
                            let at = deadline + Duration::from_millis(if i < 10 { 0 } else { 5 });
                            ringloop::spawn(ringloop::time::sleep_until(at))
                        })
                        .collect();
                    ringloop::task::yield_now().await;
                    let mut bad = Box::pin(ringloop::time::sleep_until(deadline));
                    let waker = Waker::from(Arc::new(PanickingWaker));
                    assert!(bad
                        .as_mut()
                        .poll(&mut Context::from_waker(&waker))
                        .is_pending());
                    let limit = Instant::now() + Duration::from_secs(2);
                    while good.borrow().iter().any(|h| !h.is_finished()) && Instant::now() < limit {
                        sleep(Duration::from_millis(1)).await;
                    }
                    drop(bad);
                })
            }));
            match &outcome {
                Ok(()) => println!("the waker's panic did not escape block_on"),
                Err(p) => println!(
                    "the waker's panic escaped block_on: {:?}",
                    panic_message(&**p)
                ),
            }
            let handles = good.take();
            rt.block_on(async {
                let limit = Instant::now() + Duration::from_secs(5);
                for (i, h) in handles.into_iter().enumerate() {
                    if ringloop::time::timeout_at(limit, h).await.is_err() {
                        panic!("sleep {i} never fired after another timer's waker panicked");
                    }
                }
                // The wheel still works for new timers.
                let t = Instant::now();
                sleep(Duration::from_millis(3)).await;
                assert!(t.elapsed() >= Duration::from_millis(3));
            });
            let stats = rt.stats();
            assert_eq!(stats.timers_alive, 0, "{stats:?}");
        });
    });
}
