//! A fault-injecting ring, for tests only: the failures a kernel may hand a runtime but rarely
//! does on a quiet test machine (HARDENING rows 2, 6 and 18), injected at random from a seed so
//! that a failing run replays.
//!
//! Every fault is one the kernel could really produce, so a test never fails for a reason the
//! runtime could not see: an SQE is either submitted untouched or never reaches the kernel (and
//! completes here, as if the kernel had refused it), and a completion is changed only where the
//! kernel is done with its request (no `IORING_CQE_F_MORE`).

use std::collections::VecDeque;

use io_uring::{cqueue, squeue};

use super::op::Completion;
use super::slots::{CANCEL, DOORBELL};

/// What to inject, and how often (each a probability in `0.0..=1.0`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FaultPlan {
    /// Seeds the choices: the same seed and workload inject the same faults.
    pub(crate) seed: u64,
    /// An `io_uring_enter` fails with `EBUSY` or `EAGAIN` before submitting anything.
    pub(crate) enter_busy: f64,
    /// An `io_uring_enter` takes only some of the queued SQEs (none, possibly) and returns at
    /// once, without waiting, as the kernel does when it cannot allocate a request for each
    /// (or a signal cuts a wait short): the rest stay in the SQ for a later enter.
    pub(crate) short_submit: f64,
    /// An op's SQE never reaches the kernel and completes with `sqe_errno`.
    pub(crate) sqe_error: f64,
    pub(crate) sqe_errno: i32,
    /// A completion that carries a provided buffer and ends its request becomes an error
    /// (`ECONNRESET`), its buffer still attached.
    pub(crate) buffer_error: f64,
    /// Every read of the doorbell eventfd fails with this errno.
    pub(crate) doorbell_errno: Option<i32>,
    /// `io_uring_setup` answers `EINVAL` to `IORING_SETUP_SINGLE_ISSUER` (before Linux 6.0).
    pub(crate) refuse_single_issuer: bool,
    /// `io_uring_setup` answers `EINVAL` to `IORING_SETUP_DEFER_TASKRUN` (before Linux 6.1).
    pub(crate) refuse_defer_taskrun: bool,
}

impl FaultPlan {
    /// No faults at all, from `seed`.
    pub(crate) fn none(seed: u64) -> FaultPlan {
        FaultPlan {
            seed,
            enter_busy: 0.0,
            short_submit: 0.0,
            sqe_error: 0.0,
            sqe_errno: libc::EINVAL,
            buffer_error: 0.0,
            doorbell_errno: None,
            refuse_single_issuer: false,
            refuse_defer_taskrun: false,
        }
    }
}

/// The plan at work on one ring.
pub(crate) struct Faults {
    plan: FaultPlan,
    rng: fastrand::Rng,
    /// Completions of SQEs that never reached the kernel, reaped before the kernel's own.
    made_here: VecDeque<(u64, Completion)>,
    pub(crate) injected: u64,
}

impl Faults {
    pub(crate) fn new(plan: FaultPlan) -> Faults {
        Faults {
            plan,
            rng: fastrand::Rng::with_seed(plan.seed),
            made_here: VecDeque::new(),
            injected: 0,
        }
    }

    fn roll(&mut self, probability: f64) -> bool {
        let hit = probability > 0.0 && self.rng.f64() < probability;
        self.injected += u64::from(hit);
        hit
    }

    /// Whether `sqe` is kept from the kernel; if so, its completion is made here.
    pub(crate) fn swallow(&mut self, sqe: &squeue::Entry) -> bool {
        let user_data = sqe.get_user_data();
        let errno = match user_data {
            DOORBELL => match self.plan.doorbell_errno {
                Some(errno) => errno,
                None => return false,
            },
            // A cancel the kernel never saw would leave its target running: not a fault the
            // kernel makes (it answers ENOENT or EALREADY instead, which the driver ignores).
            CANCEL => return false,
            _ if self.roll(self.plan.sqe_error) => self.plan.sqe_errno,
            _ => return false,
        };
        self.made_here
            .push_back((user_data, Completion::failed(errno)));
        true
    }

    /// An `enter` fails before submitting (`EBUSY` or `EAGAIN`, as the kernel does while its
    /// CQ overflow list is non-empty or it is short of memory).
    pub(crate) fn refuse_enter(&mut self) -> Option<std::io::Error> {
        if !self.roll(self.plan.enter_busy) {
            return None;
        }
        let errno = if self.rng.bool() {
            libc::EBUSY
        } else {
            libc::EAGAIN
        };
        Some(std::io::Error::from_raw_os_error(errno))
    }

    /// How many of the `queued` SQEs an enter submits, if it is to take only some of them.
    pub(crate) fn shorten(&mut self, queued: u32) -> Option<u32> {
        if queued == 0 || !self.roll(self.plan.short_submit) {
            return None;
        }
        Some(self.rng.u32(0..queued))
    }

    /// Completions made here are waiting: a wait must not sleep.
    pub(crate) fn has_completions(&self) -> bool {
        !self.made_here.is_empty()
    }

    pub(crate) fn take_made_here(&mut self) -> Option<(u64, Completion)> {
        self.made_here.pop_front()
    }

    /// Changes a kernel completion, where that is a completion the kernel could have posted.
    pub(crate) fn alter(&mut self, completion: &mut Completion) {
        let ends_request = !cqueue::more(completion.flags);
        let carries_buffer = cqueue::buffer_select(completion.flags).is_some();
        if ends_request
            && carries_buffer
            && completion.result > 0
            && self.roll(self.plan.buffer_error)
        {
            completion.result = -libc::ECONNRESET;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::future::{poll_fn, Future};
    use std::os::fd::OwnedFd;
    use std::pin::Pin;
    use std::rc::Rc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use std::time::{Duration, Instant};

    use super::FaultPlan;
    use crate::fs::File;
    use crate::net::{BufferPool, TcpStream};
    use crate::runtime::current_driver;
    use crate::time::{sleep, timeout};
    use crate::{Builder, Runtime};

    /// A fresh seed, printed so that a failure replays (`RINGLOOP_FAULT_SEED=<seed>`).
    fn plan() -> FaultPlan {
        let seed = std::env::var("RINGLOOP_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| fastrand::u64(..));
        println!("fault seed {seed}");
        FaultPlan::none(seed)
    }

    fn runtime(builder: &mut Builder, plan: FaultPlan) -> Runtime {
        builder.faults(plan).build().unwrap()
    }

    fn injected() -> u64 {
        current_driver().faults_injected()
    }

    /// Polls until `done` or 10 s, the generous bound for a loaded 2-core machine.
    async fn settle(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "{what} never happened");
            sleep(Duration::from_millis(1)).await;
        }
    }

    fn pattern_file(name: &str, len: usize) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!(
            "ringloop-faults-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn pipe() -> (OwnedFd, OwnedFd) {
        nix::unistd::pipe().unwrap()
    }

    /// `reads` concurrent 8-byte reads of a pattern file, each checked; returns how many failed
    /// with `errno` (any other failure panics).
    fn read_pattern_file(rt: &Runtime, reads: usize, errno: i32) -> usize {
        let path = pattern_file("reads", 4096);
        let failed = Rc::new(Cell::new(0));
        rt.block_on(async {
            // Opened outside the ring: only the reads meet the faults.
            let file = Rc::new(File::from_std(std::fs::File::open(&path).unwrap()));
            let tasks: Vec<_> = (0..reads)
                .map(|i| {
                    let (file, failed) = (file.clone(), failed.clone());
                    crate::spawn(async move {
                        let pos = (i * 8) % 4088;
                        let (res, buf) = file.read_at(vec![0u8; 8], pos as u64).await;
                        match res {
                            Ok(n) => {
                                assert_eq!(n, 8, "read {i}");
                                let want: Vec<u8> =
                                    (pos..pos + 8).map(|b| (b % 251) as u8).collect();
                                assert_eq!(buf, want, "read {i} got the wrong bytes");
                            }
                            Err(e) if e.raw_os_error() == Some(errno) => {
                                failed.set(failed.get() + 1)
                            }
                            Err(e) => panic!("read {i}: {e}"),
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        std::fs::remove_file(path).unwrap();
        failed.get()
    }

    #[test]
    fn every_read_completes_through_an_8_entry_sq_whose_enter_keeps_refusing() {
        // HARDENING row 6: the SQ is full at every push and a third of the enters fail with
        // EBUSY or EAGAIN. SQEs that find no room wait in the backlog: none is dropped, none
        // fails, none waits for a completion whose SQE never left.
        let rt = runtime(
            Builder::new().entries(8),
            FaultPlan {
                enter_busy: 0.3,
                ..plan()
            },
        );
        assert_eq!(read_pattern_file(&rt, 10_000, 0), 0);
        let stats = rt.stats();
        assert_eq!(stats.ops_in_flight, 0, "{stats:?}");
        assert!(rt.block_on(async { injected() }) > 100, "{stats:?}");
    }

    #[test]
    fn every_read_completes_when_enters_take_only_some_of_the_queued_sqes() {
        // HARDENING row 6: half the enters submit a random part of the SQ (often nothing) and
        // return without waiting. An SQ still full after the submit that was to make room
        // sends the SQE to the backlog; the SQEs left in the SQ go in with a later enter.
        let rt = runtime(
            Builder::new().entries(8),
            FaultPlan {
                short_submit: 0.5,
                ..plan()
            },
        );
        assert_eq!(read_pattern_file(&rt, 10_000, 0), 0);
        let stats = rt.stats();
        assert_eq!(stats.ops_in_flight, 0, "{stats:?}");
        assert!(stats.sqes_backlogged > 0, "{stats:?}");
        assert!(rt.block_on(async { injected() }) > 100, "{stats:?}");
    }

    #[test]
    fn timed_out_reads_all_resolve_while_enter_keeps_refusing() {
        // HARDENING row 6: 3000 reads of silent pipes under a 50 ms timeout through an 8-entry
        // SQ whose enter fails half the time: every timeout resolves, and every read leaves the
        // ring (cancelled in the kernel, or straight out of the backlog).
        timed_out_reads_all_resolve(FaultPlan {
            enter_busy: 0.5,
            ..plan()
        });
    }

    #[test]
    fn timed_out_reads_all_resolve_while_enters_take_only_some_sqes() {
        // The same with enters that submit part of the SQ: cancels wait there behind reads.
        timed_out_reads_all_resolve(FaultPlan {
            short_submit: 0.5,
            ..plan()
        });
    }

    fn timed_out_reads_all_resolve(plan: FaultPlan) {
        const READS: usize = 3000;
        let rt = runtime(Builder::new().entries(8), plan);
        let (reads, _writes): (Vec<OwnedFd>, Vec<OwnedFd>) = (0..64).map(|_| pipe()).unzip();
        let start = Instant::now();
        rt.block_on(async {
            let files: Vec<Rc<File>> = reads
                .into_iter()
                .map(|r| Rc::new(File::from_std(std::fs::File::from(r))))
                .collect();
            let tasks: Vec<_> = (0..READS)
                .map(|i| {
                    let file = files[i % files.len()].clone();
                    crate::spawn(async move {
                        let read = file.read_at(vec![0u8; 64], 0);
                        assert!(timeout(Duration::from_millis(50), read).await.is_err());
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            let resolved = start.elapsed();
            assert!(resolved < Duration::from_secs(10), "took {resolved:?}");
            settle("every read leaving the ring", || {
                crate::RuntimeStats::current().ops_in_flight == 0
            })
            .await;
            assert!(injected() > 10);
        });
    }

    #[test]
    fn ops_whose_sqe_never_reaches_the_kernel_fail_with_its_error_and_leave_nothing_behind() {
        let rt = runtime(
            Builder::new().entries(8),
            FaultPlan {
                sqe_error: 0.25,
                sqe_errno: libc::EINVAL,
                ..plan()
            },
        );
        let failed = read_pattern_file(&rt, 2000, libc::EINVAL);
        assert!((100..1000).contains(&failed), "{failed} of 2000 failed");
        assert_eq!(rt.stats().ops_in_flight, 0);
    }

    #[test]
    fn error_completions_that_carry_a_pooled_buffer_give_it_back() {
        // HARDENING row 2: with single-shot pooled receives (every CQE ends its request), 30 %
        // of the completions that selected a buffer become errors with the buffer attached,
        // while receives are dropped mid-flight as the peer writes. Every buffer comes back.
        let rt = runtime(
            // Buffer rings whatever RINGLOOP_FALLBACK says: lent buffers carry no F_BUFFER.
            Builder::new().multishot(false).buf_rings(true),
            FaultPlan {
                buffer_error: 0.3,
                ..plan()
            },
        );
        rt.block_on(async {
            let pool = BufferPool::new(4, 256).unwrap();
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let client = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let server = TcpStream::from_std(listener.accept().unwrap().0).unwrap();
            let client = Rc::new(client);
            let writer = {
                let client = client.clone();
                // Writes until aborted: an awaited receive always has data coming.
                crate::spawn(async move {
                    while client.write_all(vec![7u8; 100]).await.0.is_ok() {
                        crate::task::yield_now().await;
                    }
                })
            };
            let (mut chunks, mut errors) = (0, 0);
            for round in 0..10_000u32 {
                let mut rx = server.recv_pooled(&pool);
                // Mostly dropped in flight (the orphan gets the CQE); every tenth is awaited
                // (the stream gets it).
                let next = if round % 10 == 0 {
                    let next = timeout(Duration::from_secs(10), rx.next()).await;
                    Some(next.expect("starved: a buffer never came back to the kernel's ring"))
                } else {
                    let mut cx = Context::from_waker(std::task::Waker::noop());
                    match rx.poll_next(&mut cx) {
                        Poll::Ready(next) => Some(next),
                        Poll::Pending => None,
                    }
                };
                match next.flatten() {
                    Some(Ok(_)) => chunks += 1,
                    Some(Err(e)) => {
                        assert_eq!(e.raw_os_error(), Some(libc::ECONNRESET));
                        errors += 1;
                    }
                    None => {}
                }
                if round % 3 == 0 {
                    crate::task::yield_now().await;
                }
                drop(rx);
            }
            writer.abort();
            let injected = injected();
            println!("{chunks} chunks, {errors} errors seen, {injected} injected in all");
            assert!(errors > 0, "no stream saw an error that carried a buffer");
            settle("every buffer back in the pool", || pool.available() == 4).await;
            // The kernel agrees: its ring has all four (a fresh receive is not ENOBUFS).
            client.write_all(b"after".to_vec()).await.0.unwrap();
            let mut rx = server.recv_pooled(&pool);
            let next = timeout(Duration::from_secs(10), rx.next()).await;
            match next.expect("a fresh pooled receive hung") {
                Some(Ok(_)) => {}
                Some(Err(e)) => assert_eq!(e.raw_os_error(), Some(libc::ECONNRESET)),
                None => panic!("the stream ended"),
            }
        });
    }

    /// A buffer that counts the live ones.
    struct Counted {
        buf: Vec<u8>,
        alive: Rc<Cell<usize>>,
    }

    impl Counted {
        fn new(len: usize, alive: &Rc<Cell<usize>>) -> Counted {
            alive.set(alive.get() + 1);
            Counted {
                buf: Vec::with_capacity(len),
                alive: alive.clone(),
            }
        }
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            self.alive.set(self.alive.get() - 1);
        }
    }

    // SAFETY: forwards to the `Vec`, whose heap block does not move when `Counted` moves.
    unsafe impl crate::buf::IoBuf for Counted {
        fn stable_ptr(&self) -> *const u8 {
            self.buf.stable_ptr()
        }
        fn bytes_init(&self) -> usize {
            self.buf.bytes_init()
        }
        fn bytes_total(&self) -> usize {
            self.buf.bytes_total()
        }
    }

    // SAFETY: as above.
    unsafe impl crate::buf::IoBufMut for Counted {
        fn stable_mut_ptr(&mut self) -> *mut u8 {
            self.buf.stable_mut_ptr()
        }
        unsafe fn set_init(&mut self, init: usize) {
            // SAFETY: forwarded from this function's contract.
            unsafe { self.buf.set_init(init) }
        }
    }

    #[test]
    fn dropping_a_runtime_frees_the_backlog_at_once_and_returns_promptly() {
        // Every enter is refused, so nothing ever reaches the kernel: the SQ fills (the
        // doorbell's read and three reads) and the other reads wait in the backlog. Dropping
        // the runtime frees the backlog's buffers (the kernel never saw them) and leaks only
        // those whose SQE sat in the SQ, where the kernel could have taken it.
        const READS: usize = 20;
        let alive = Rc::new(Cell::new(0));
        let rt = runtime(
            Builder::new().entries(4),
            FaultPlan {
                enter_busy: 1.0,
                ..plan()
            },
        );
        let (read_end, _write_end) = pipe();
        let backlogged = rt.block_on(async {
            let file = Rc::new(File::from_std(std::fs::File::from(read_end)));
            for _ in 0..READS {
                let (file, buf) = (file.clone(), Counted::new(64, &alive));
                drop(crate::spawn(async move {
                    let _ = file.read_at(buf, 0).await;
                }));
            }
            for _ in 0..3 {
                crate::task::yield_now().await;
            }
            crate::RuntimeStats::current().sqes_backlogged as usize
        });
        assert!((1..READS).contains(&backlogged), "{backlogged} backlogged");
        assert_eq!(alive.get(), READS);
        let start = Instant::now();
        drop(rt);
        let took = start.elapsed();
        assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
        assert_eq!(alive.get(), READS - backlogged, "backlog buffers not freed");
    }

    #[test]
    fn a_kernel_that_refuses_the_newest_ring_flags_gets_the_next_setup_that_works() {
        // HARDENING row 15: setup steps down on EINVAL, flag by flag, and what it ends up with
        // runs tasks, timers and file I/O.
        let cases = [
            // (refuse SINGLE_ISSUER, refuse DEFER_TASKRUN) -> (single issuer, defer, coop)
            ((false, true), (true, false, true)),
            ((true, true), (false, false, true)),
        ];
        for ((single, defer), want) in cases {
            // Every flag allowed, whatever RINGLOOP_RING_FLAGS says: the kernel refuses them.
            let mut builder = Builder::new();
            builder
                .single_issuer(true)
                .defer_taskrun(true)
                .coop_taskrun(true);
            let rt = runtime(
                &mut builder,
                FaultPlan {
                    refuse_single_issuer: single,
                    refuse_defer_taskrun: defer,
                    ..plan()
                },
            );
            let stats = rt.stats();
            let got = (stats.single_issuer, stats.defer_taskrun, stats.coop_taskrun);
            assert_eq!(got, want, "refusing ({single}, {defer})");
            let path = pattern_file("setup", 64);
            let read = rt.block_on(async {
                sleep(Duration::from_millis(5)).await;
                let task = crate::spawn(async { 7 });
                assert_eq!(task.await.unwrap(), 7);
                let file = File::open(&path).await.unwrap();
                let (res, buf) = file.read_at(vec![0u8; 8], 8).await;
                res.unwrap();
                buf
            });
            assert_eq!(read, (8..16u8).collect::<Vec<u8>>());
            std::fs::remove_file(path).unwrap();
        }
    }

    /// Resolves once a plain thread woke it, 20 ms after its first poll.
    struct WokenByThread {
        woken: Arc<AtomicBool>,
        sent: bool,
    }

    impl Future for WokenByThread {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.woken.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            if !self.sent {
                self.sent = true;
                let (woken, waker) = (self.woken.clone(), cx.waker().clone());
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    woken.store(true, Ordering::Release);
                    waker.wake();
                });
            }
            Poll::Pending
        }
    }

    #[test]
    fn a_doorbell_read_that_keeps_failing_pauses_instead_of_spinning() {
        // HARDENING row 18: every read of the doorbell eventfd fails at once. Re-armed at once
        // it would wake every wait: a spin. It pauses instead (up to 100 ms), and a wake from
        // another thread still gets through.
        let rt = runtime(
            &mut Builder::new(),
            FaultPlan {
                doorbell_errno: Some(libc::EINVAL),
                ..plan()
            },
        );
        rt.block_on(async {
            let before = crate::RuntimeStats::current().ring_enters;
            sleep(Duration::from_millis(500)).await;
            let stats = crate::RuntimeStats::current();
            let enters = stats.ring_enters - before;
            println!("{enters} enters in 500 ms; {stats:?}");
            assert!(stats.doorbell_failures >= 3, "{stats:?}");
            // 100 ms pauses give ~5 wake-ups; 1 ms ones ~500. A spin gives tens of thousands.
            assert!(
                enters < 500,
                "{enters} enters in 500 ms: the doorbell spins"
            );

            let start = Instant::now();
            WokenByThread {
                woken: Arc::default(),
                sent: false,
            }
            .await;
            let took = start.elapsed();
            assert!(took < Duration::from_secs(2), "a remote wake took {took:?}");
        });
    }

    #[test]
    fn a_pooled_receive_whose_arm_fails_ends_with_the_error_instead_of_re_arming() {
        // HARDENING row 18: a persistent error on arm surfaces, once, and nothing re-arms.
        let rt = runtime(
            &mut Builder::new(),
            FaultPlan {
                sqe_error: 1.0,
                sqe_errno: libc::EINVAL,
                ..plan()
            },
        );
        rt.block_on(async {
            let pool = BufferPool::new(4, 64).unwrap();
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let server = TcpStream::from_std(listener.accept().unwrap().0).unwrap();
            let mut rx = server.recv_pooled(&pool);
            let first = rx.next().await.expect("an item").expect_err("an error");
            assert_eq!(first.raw_os_error(), Some(libc::EINVAL));
            assert!(
                rx.next().await.is_none(),
                "the stream goes on after its error"
            );
            assert!(poll_fn(|cx| Poll::Ready(rx.poll_next(cx).is_ready())).await);
            assert_eq!(injected(), 1, "the receive was armed more than once");
            assert_eq!(pool.available(), 4);
        });
    }
}
