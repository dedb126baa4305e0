//! Dropped operations: the kernel may still own their buffers and fds after the future is gone.
//!
//! HARDENING rows 1 (buffer freed only after the kernel is done; pipes and sockets), 3 (an fd
//! outlives its in-flight operations; pipes and sockets), 4 (an abandoned open never leaks its
//! fd) and 10 (a cancel hits the operation it was meant for, never the one that reused its
//! slot).

mod support;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use ringloop::fs::File;
use ringloop::time::timeout;
use ringloop::{Builder, Runtime};
use support::{open_fds, poll_once, wait_until, watchdog, Witness, WitnessLog};

const LIMIT: Duration = Duration::from_secs(60);
/// How long a test waits for something the kernel does at once (a safety net only).
const SETTLE: Duration = Duration::from_secs(10);

fn reader(fd: OwnedFd) -> File {
    File::from_std(std::fs::File::from(fd))
}

async fn wait_freed(log: &WitnessLog, what: &str) {
    wait_until(what, SETTLE, || log.drops.get() > 0).await;
}

/// The ring setups whose races differ: with `DEFER_TASKRUN` a completion is only posted when
/// the runtime enters the ring (after it submitted the cancel); without it the kernel completes
/// a read as soon as the peer writes, so the orphaned buffer really is written into.
fn flag_setups() -> [(&'static str, Builder); 2] {
    let mut off = Builder::new();
    off.single_issuer(false)
        .defer_taskrun(false)
        .coop_taskrun(false);
    [("default flags", Builder::new()), ("ring flags off", off)]
}

#[test]
fn dropped_read_keeps_buffer_until_completion() {
    const ROUNDS: usize = 1500;
    const LEN: usize = 64 * 1024;
    support::isolated("dropped_read_keeps_buffer_until_completion", || {
        watchdog("dropped_read_keeps_buffer_until_completion", LIMIT, || {
            let fds_before = open_fds();
            let alive = Arc::new(AtomicUsize::new(0));
            let payload = vec![0xabu8; LEN];
            for (setup, builder) in flag_setups() {
                let rt = builder.build().unwrap();
                let start = rt.stats();
                let mut logs = Vec::with_capacity(ROUNDS);
                rt.block_on(async {
                    for round in 0..ROUNDS {
                        let (r, w) = support::pipe();
                        support::set_nonblocking(w.as_fd(), true);
                        let file = reader(r);
                        let (buf, log) = Witness::new(LEN, &alive);
                        let res = timeout(Duration::from_millis(1), file.read_at(buf, 0)).await;
                        assert!(
                            res.is_err(),
                            "round {round}: nothing was written, yet the read completed"
                        );
                        // The future is gone, but the kernel still owns the buffer.
                        assert_eq!(
                            log.drops.get(),
                            0,
                            "round {round}: buffer freed while the read was in flight"
                        );
                        drop(file);
                        // The peer writes while the cancel is on its way: the kernel may fill
                        // the orphaned buffer now, which is sound only because the runtime
                        // still holds it.
                        let _ = nix::unistd::write(&w, &payload);
                        drop(w);
                        wait_freed(&log, "the orphaned read's buffer to be released").await;
                        logs.push(log);
                    }
                    wait_until("every operation to leave the ring", SETTLE, || {
                        rt.stats().ops_in_flight == 0
                    })
                    .await;
                });
                let stats = rt.stats();
                let won = logs
                    .iter()
                    .filter(|log| !log.data.borrow().is_empty())
                    .count();
                println!(
                    "{setup}: {ROUNDS} dropped reads; {won} filled by the kernel after the drop, \
                     {} cancelled; {stats:?}",
                    ROUNDS - won
                );
                assert!(
                    logs.iter().all(|log| log.drops.get() == 1),
                    "a buffer was dropped twice"
                );
                assert!(logs
                    .iter()
                    .all(|log| log.data.borrow().iter().all(|b| *b == 0xab)));
                assert_eq!(
                    alive.load(Ordering::SeqCst),
                    0,
                    "{setup}: buffers still alive"
                );
                assert_eq!(stats.ops_in_flight, 0);
                assert_eq!(stats.unknown_completions, start.unknown_completions);
                assert!(
                    stats.cancels_submitted - start.cancels_submitted >= ROUNDS as u64,
                    "{setup}: one cancel per dropped read: {stats:?}"
                );
            }
            assert_eq!(open_fds(), fds_before, "fds leaked");
        });
    });
}

/// One dropped read per round; `yield_first` decides whether its SQE reached the kernel before
/// the future and the `File` were dropped.
async fn drop_read_then_reuse_fd(round: usize, yield_first: bool, wait_for_release: bool) -> bool {
    let alive = Arc::new(AtomicUsize::new(0));
    let (ra, wa) = support::pipe();
    let a = reader(ra);
    let a_raw = a.as_raw_fd();
    let (buf, log) = Witness::new(64, &alive);
    let mut read = Box::pin(a.read_at(buf, 0));
    assert!(poll_once(&mut read).await.is_pending());
    if yield_first {
        ringloop::task::yield_now().await;
    }
    drop(read);
    drop(a);
    if wait_for_release {
        wait_freed(&log, "the dropped read to be cancelled").await;
    }
    // A new pipe takes the lowest free numbers: A's, if A's read end was already closed.
    let (rb, wb) = support::pipe();
    let reused = rb.as_raw_fd() == a_raw;
    let payload = format!("pipe B, round {round}");
    nix::unistd::write(&wb, payload.as_bytes()).unwrap();
    let b = reader(rb);
    let (res, buf) = timeout(Duration::from_secs(5), b.read_at(vec![0u8; 64], 0))
        .await
        .unwrap_or_else(|_| panic!("round {round}: a fresh read on pipe B never got B's bytes"));
    assert_eq!(
        &buf[..res.unwrap()],
        payload.as_bytes(),
        "round {round}: a fresh read on pipe B must get all of B's bytes"
    );
    wait_freed(&log, "the dropped read to be cancelled").await;
    assert!(
        log.data.borrow().is_empty(),
        "round {round}: the read on dropped pipe A delivered {:?}",
        String::from_utf8_lossy(&log.data.borrow())
    );
    assert_eq!(alive.load(Ordering::SeqCst), 0);
    drop(wa);
    reused
}

#[test]
fn read_on_a_dropped_file_never_delivers_the_next_pipes_bytes() {
    watchdog(
        "read_on_a_dropped_file_never_delivers_the_next_pipes_bytes",
        LIMIT,
        || {
            let rt = Runtime::new().unwrap();
            let mut reused = [0usize; 3];
            rt.block_on(async {
                for round in 0..300 {
                    // 0: the SQE is still unsubmitted when the File goes; 1: it is in the kernel;
                    // 2: the cancel has completed, so the fd number is free and B usually gets it.
                    let variant = round % 3;
                    if drop_read_then_reuse_fd(round, variant != 0, variant == 2).await {
                        reused[variant] += 1;
                    }
                }
            });
            println!("fd number reused by pipe B (unsubmitted, in kernel, cancelled): {reused:?}");
            assert_eq!(rt.stats().ops_in_flight, 0);
        },
    );
}

#[test]
fn dropped_write_at_then_close_returns() {
    watchdog("dropped_write_at_then_close_returns", LIMIT, || {
        let rt = Runtime::new().unwrap();
        let alive = Arc::new(AtomicUsize::new(0));
        rt.block_on(async {
            for round in 0..200 {
                let (r, w) = support::pipe();
                support::fill_pipe(w.as_fd());
                let writer = File::from_std(std::fs::File::from(w));
                let buf = support::CountedBuf::new(4096, &alive);
                if round % 2 == 0 {
                    // Dropped by a timeout, as in a select.
                    let res = timeout(Duration::from_millis(1), writer.write_at(buf, 0)).await;
                    assert!(
                        res.is_err(),
                        "round {round}: the pipe is full, the write cannot finish"
                    );
                } else {
                    // Dropped after a single poll, before its SQE was even submitted.
                    let mut write = Box::pin(writer.write_at(buf, 0));
                    assert!(poll_once(&mut write).await.is_pending());
                }
                let closed = timeout(Duration::from_secs(5), writer.close()).await;
                closed
                    .unwrap_or_else(|_| panic!("round {round}: close() hung after a dropped write"))
                    .unwrap();
                drop(r);
            }
        });
        assert_eq!(alive.load(Ordering::SeqCst), 0, "write buffers still alive");
        assert_eq!(rt.stats().ops_in_flight, 0);
    });
}

#[test]
fn dropped_open_never_leaks_its_fd() {
    const ROUNDS: usize = 10_000;
    support::isolated("dropped_open_never_leaks_its_fd", || {
        watchdog("dropped_open_never_leaks_its_fd", LIMIT, || {
            let path = support::temp_path("dropped-open");
            std::fs::write(&path, b"open me").unwrap();
            let rt = Runtime::new().unwrap();
            let before = open_fds();
            let mut opened_before_drop = 0;
            rt.block_on(async {
                for round in 0..ROUNDS {
                    let mut open = Box::pin(File::open(&path));
                    if let Poll::Ready(file) = poll_once(&mut open).await {
                        panic!("an open cannot complete before the ring turns: {file:?}");
                    }
                    // Vary how far the open got before its future is dropped: not submitted,
                    // submitted (maybe completed and reaped, waiting to be polled).
                    for _ in 0..round % 3 {
                        ringloop::task::yield_now().await;
                    }
                    if round % 3 == 2 {
                        if let Poll::Ready(file) = poll_once(&mut open).await {
                            // The open won: dropping the File closes it like any other.
                            file.unwrap();
                            opened_before_drop += 1;
                        }
                    }
                    drop(open);
                }
                wait_until("every open to leave the ring", SETTLE, || {
                    rt.stats().ops_in_flight == 0
                })
                .await;
            });
            let after = open_fds();
            println!(
                "{ROUNDS} opens polled once then dropped ({opened_before_drop} had completed); \
                 fds {before} -> {after}; {:?}",
                rt.stats()
            );
            assert_eq!(after, before, "abandoned opens leaked fds");
            std::fs::remove_file(path).unwrap();
        });
    });
}

#[test]
fn new_read_in_a_reused_slot_gets_the_data() {
    watchdog("new_read_in_a_reused_slot_gets_the_data", LIMIT, || {
        let rt = Runtime::new().unwrap();
        let alive = Arc::new(AtomicUsize::new(0));
        let (r, w) = support::pipe();
        rt.block_on(async {
            let file = reader(r);
            for round in 0..2000 {
                let (buf, log) = Witness::new(32, &alive);
                let mut first = Box::pin(file.read_at(buf, 0));
                assert!(poll_once(&mut first).await.is_pending());
                if round % 2 == 0 {
                    ringloop::task::yield_now().await;
                }
                drop(first);
                // Half the rounds arm the new read while the cancel is still on its way (same
                // fd, another slot); the other half after it freed the slot, which the new
                // read then reuses under a new generation.
                let reuse = round % 4 >= 2;
                if reuse {
                    wait_freed(&log, "the first read's cancel (did it hit another op?)").await;
                }
                let mut second = Box::pin(file.read_at(vec![0u8; 32], 0));
                assert!(poll_once(&mut second).await.is_pending());
                if !reuse {
                    wait_freed(
                        &log,
                        "the first read's cancel (did it hit the second read?)",
                    )
                    .await;
                }
                let payload = format!("round {round}");
                nix::unistd::write(&w, payload.as_bytes()).unwrap();
                let (res, buf) = timeout(Duration::from_secs(5), second)
                    .await
                    .unwrap_or_else(|_| {
                        panic!("round {round}: the second read never got the data")
                    });
                let n =
                    res.unwrap_or_else(|e| panic!("round {round}: the second read failed: {e}"));
                assert_eq!(&buf[..n], payload.as_bytes(), "round {round}");
                assert!(
                    log.data.borrow().is_empty(),
                    "round {round}: the cancelled read got data"
                );
            }
        });
        assert_eq!(alive.load(Ordering::SeqCst), 0);
        assert_eq!(rt.stats().ops_in_flight, 0);
    });
}

#[test]
fn queued_cancels_never_hit_the_reads_that_reuse_their_slots() {
    // A 4-entry SQ: most cancels wait in the runtime's queue while the reads they target
    // complete with data, free their slots, and new reads take those slots. A cancel matched
    // by slot alone (not slot and generation) would cancel the new reads.
    const PIPES: usize = 32;
    const ROUNDS: usize = 100;
    watchdog(
        "queued_cancels_never_hit_the_reads_that_reuse_their_slots",
        LIMIT,
        || {
            let rt = Builder::new().entries(4).build().unwrap();
            let alive = Arc::new(AtomicUsize::new(0));
            let (reads, writes): (Vec<OwnedFd>, Vec<OwnedFd>) =
                (0..PIPES).map(|_| support::pipe()).unzip();
            let mut orphan_wins = 0;
            rt.block_on(async {
                let files: Vec<File> = reads.into_iter().map(reader).collect();
                for round in 0..ROUNDS {
                    let mut logs: Vec<Rc<WitnessLog>> = Vec::with_capacity(PIPES);
                    let mut first: Vec<Pin<Box<_>>> = files
                        .iter()
                        .map(|f| {
                            let (buf, log) = Witness::new(16, &alive);
                            logs.push(log);
                            Box::pin(f.read_at(buf, 0))
                        })
                        .collect();
                    for read in &mut first {
                        assert!(poll_once(read).await.is_pending());
                    }
                    ringloop::task::yield_now().await;
                    for w in &writes {
                        nix::unistd::write(w, b"a").unwrap();
                    }
                    drop(first);
                    // One turn: the first reads complete (with "a" or cancelled); slots free.
                    ringloop::task::yield_now().await;
                    let mut second: Vec<Pin<Box<_>>> = files
                        .iter()
                        .map(|f| Box::pin(f.read_at(vec![0u8; 16], 0)))
                        .collect();
                    for read in &mut second {
                        assert!(poll_once(read).await.is_pending());
                    }
                    for w in &writes {
                        nix::unistd::write(w, b"b").unwrap();
                    }
                    let deadline = Instant::now() + Duration::from_secs(10);
                    let mut got = Vec::with_capacity(PIPES);
                    for (i, read) in second.into_iter().enumerate() {
                        let (res, buf) = ringloop::time::timeout_at(deadline, read)
                            .await
                            .unwrap_or_else(|_| {
                                panic!("round {round}, pipe {i}: the new read hung")
                            });
                        let n = res.unwrap_or_else(|e| {
                            panic!(
                                "round {round}, pipe {i}: the new read failed ({e}): stale cancel?"
                            )
                        });
                        assert!(n > 0, "round {round}, pipe {i}: end of file on a live pipe");
                        got.push(buf[..n].to_vec());
                    }
                    wait_until("the dropped reads to be released", SETTLE, || {
                        logs.iter().all(|log| log.drops.get() > 0)
                    })
                    .await;
                    // Every byte written went to exactly one reader, or is still in the pipe.
                    for (i, ((file, log), got)) in files.iter().zip(&logs).zip(got).enumerate() {
                        let mut seen = log.data.borrow().clone();
                        orphan_wins += usize::from(!seen.is_empty());
                        seen.extend_from_slice(&got);
                        let left = support::bytes_readable(file.as_fd_for_test());
                        let mut rest = vec![0u8; left];
                        if left > 0 {
                            assert_eq!(
                                nix::unistd::read(file.as_fd_for_test(), &mut rest).unwrap(),
                                left
                            );
                        }
                        seen.extend_from_slice(&rest);
                        assert_eq!(
                            seen, b"ab",
                            "round {round}, pipe {i}: bytes lost or duplicated"
                        );
                    }
                }
                wait_until("every operation to leave the ring", SETTLE, || {
                    rt.stats().ops_in_flight == 0
                })
                .await;
                let queued = (PIPES * ROUNDS) as u64 - rt.stats().cancels_submitted;
                println!("cancels still queued after the last round: {queued}");
                // Queued, never dropped: every cancel reaches the kernel eventually.
                wait_until("every queued cancel to be submitted", SETTLE, || {
                    rt.stats().cancels_submitted >= (PIPES * ROUNDS) as u64
                })
                .await;
            });
            let stats = rt.stats();
            println!(
                "{} dropped reads, {orphan_wins} got their byte before the cancel reached them; \
             {stats:?}",
                PIPES * ROUNDS
            );
            assert_eq!(alive.load(Ordering::SeqCst), 0);
            assert_eq!(stats.ops_in_flight, 0);
        },
    );
}

/// `File` has no `AsFd`; the tests only need its number for `FIONREAD` and a plain `read`.
trait AsFdForTest {
    fn as_fd_for_test(&self) -> std::os::fd::BorrowedFd<'_>;
}

impl AsFdForTest for File {
    fn as_fd_for_test(&self) -> std::os::fd::BorrowedFd<'_> {
        // SAFETY: the File owns this fd and outlives the borrow.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(self.as_raw_fd()) }
    }
}

/// A loopback TCP connection: the runtime's end and a plain, non-blocking peer.
fn tcp_pair(listener: &std::net::TcpListener) -> (ringloop::net::TcpStream, std::net::TcpStream) {
    let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    peer.set_nonblocking(true).unwrap();
    let (ours, _) = listener.accept().unwrap();
    (ringloop::net::TcpStream::from_std(ours).unwrap(), peer)
}

/// Writes up to `data.len()` bytes without blocking; returns how many went in.
fn write_nonblocking(peer: &mut std::net::TcpStream, data: &[u8]) -> usize {
    let mut sent = 0;
    while sent < data.len() {
        match std::io::Write::write(peer, &data[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("peer write: {e}"),
        }
    }
    sent
}

/// Reads (and counts) whatever is waiting in `fd` without blocking.
fn drain(fd: std::os::fd::BorrowedFd<'_>) -> usize {
    let mut total = 0;
    let mut scratch = vec![0u8; 64 * 1024];
    loop {
        let waiting = support::bytes_readable(fd);
        if waiting == 0 {
            return total;
        }
        let n = nix::unistd::read(fd, &mut scratch[..waiting.min(64 * 1024)]).unwrap();
        total += n;
    }
}

#[test]
fn dropped_socket_recvs_keep_their_buffers_until_the_kernel_answers() {
    // HARDENING row 1 on a socket: a recv with no data is dropped (by a 1 ms timeout, or right
    // after its SQE went in), then the peer writes 64 KiB. 10,000 rounds per ring setup: each
    // buffer is freed exactly once, only after its CQE, and every byte the peer wrote went to
    // the orphaned buffer or is still in the socket.
    const ROUNDS: usize = 10_000;
    const LEN: usize = 64 * 1024;
    let name = "dropped_socket_recvs_keep_their_buffers_until_the_kernel_answers";
    support::isolated(name, || {
        watchdog(name, LIMIT, || {
            let fds_before = open_fds();
            let alive = Arc::new(AtomicUsize::new(0));
            let payload = vec![0xabu8; LEN];
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            for (setup, builder) in flag_setups() {
                let rt = builder.build().unwrap();
                let start = rt.stats();
                let (mut won, mut timed_out) = (0usize, 0usize);
                rt.block_on(async {
                    let (stream, mut peer) = tcp_pair(&listener);
                    for round in 0..ROUNDS {
                        let (buf, log) = Witness::new(LEN, &alive);
                        let mut recv = Box::pin(stream.read(buf));
                        if round % 10 == 0 {
                            let res = timeout(Duration::from_millis(1), &mut recv).await;
                            assert!(
                                res.is_err(),
                                "round {round}: no data, yet the recv completed"
                            );
                            timed_out += 1;
                        } else {
                            assert!(poll_once(&mut recv).await.is_pending());
                            ringloop::task::yield_now().await;
                        }
                        drop(recv);
                        assert_eq!(
                            log.drops.get(),
                            0,
                            "round {round}: buffer freed while the recv was in flight"
                        );
                        let sent = write_nonblocking(&mut peer, &payload);
                        wait_freed(&log, "the orphaned recv's buffer to be released").await;
                        let got = log.data.borrow().len();
                        won += usize::from(got > 0);
                        let left = drain(stream.as_fd());
                        assert_eq!(
                            got + left,
                            sent,
                            "round {round}: bytes lost ({got} to the orphan, {left} left)"
                        );
                        assert_eq!(log.drops.get(), 1, "round {round}: buffer dropped twice");
                    }
                    wait_until("every recv to leave the ring", SETTLE, || {
                        rt.stats().ops_in_flight == 0
                    })
                    .await;
                });
                let stats = rt.stats();
                println!(
                    "{setup}: {ROUNDS} dropped recvs ({timed_out} by timeout); {won} got the \
                     peer's bytes after the drop; {stats:?}"
                );
                assert_eq!(
                    alive.load(Ordering::SeqCst),
                    0,
                    "{setup}: buffers still alive"
                );
                assert_eq!(stats.unknown_completions, start.unknown_completions);
                assert!(
                    stats.cancels_submitted - start.cancels_submitted >= ROUNDS as u64,
                    "{setup}: one cancel per dropped recv: {stats:?}"
                );
            }
            drop(listener);
            assert_eq!(open_fds(), fds_before, "fds leaked");
        });
    });
}

#[test]
fn recv_on_a_dropped_socket_never_delivers_the_next_connections_bytes() {
    // HARDENING row 3 on sockets: a recv is pending on connection A; A is dropped; connection
    // B is accepted (usually into A's fd number) and its peer sends: only B's reader sees it.
    watchdog(
        "recv_on_a_dropped_socket_never_delivers_the_next_connections_bytes",
        LIMIT,
        || {
            let rt = Runtime::new().unwrap();
            let alive = Arc::new(AtomicUsize::new(0));
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let mut reused = [0usize; 3];
            rt.block_on(async {
                for round in 0..300 {
                    let variant = round % 3;
                    let (a, _a_peer) = tcp_pair(&listener);
                    let a_raw = a.as_raw_fd();
                    let (buf, log) = Witness::new(64, &alive);
                    let mut recv = Box::pin(a.read(buf));
                    assert!(poll_once(&mut recv).await.is_pending());
                    if variant != 0 {
                        ringloop::task::yield_now().await;
                    }
                    // B's peer connects first, so B's accepted socket takes the lowest free
                    // number: A's, once the runtime let go of it.
                    let mut b_peer = std::net::TcpStream::connect(addr).unwrap();
                    drop(recv);
                    drop(a);
                    if variant == 2 {
                        wait_freed(&log, "the dropped recv to be cancelled").await;
                    }
                    let (b, _) = listener.accept().unwrap();
                    reused[variant] += usize::from(b.as_raw_fd() == a_raw);
                    let b = ringloop::net::TcpStream::from_std(b).unwrap();
                    let payload = format!("connection B, round {round}");
                    std::io::Write::write_all(&mut b_peer, payload.as_bytes()).unwrap();
                    let (res, buf) = timeout(
                        Duration::from_secs(5),
                        b.read_exact(Vec::with_capacity(payload.len())),
                    )
                    .await
                    .unwrap_or_else(|_| panic!("round {round}: B never got its bytes"));
                    res.unwrap_or_else(|e| panic!("round {round}: reading B: {e}"));
                    assert_eq!(buf, payload.as_bytes(), "round {round}");
                    wait_freed(&log, "the dropped recv to be cancelled").await;
                    assert!(
                        log.data.borrow().is_empty(),
                        "round {round}: the recv on dropped socket A delivered {:?}",
                        String::from_utf8_lossy(&log.data.borrow())
                    );
                }
            });
            println!("fd number reused by B (unsubmitted, in kernel, cancelled): {reused:?}");
            assert!(
                reused[2] > 0,
                "B never took A's fd number: the scenario was not provoked"
            );
            assert_eq!(alive.load(Ordering::SeqCst), 0);
            assert_eq!(rt.stats().ops_in_flight, 0);
        },
    );
}

#[test]
fn sends_cancelled_in_their_own_batch_complete_once_and_the_awaited_ones_all_arrive() {
    // HARDENING row 10: 100,000 datagram sends, half of them dropped in the batch that
    // submits them (SQE and ASYNC_CANCEL go to the kernel together). The receiver's queue is
    // short, so some sends wait in the kernel and the cancel really races them. Every send
    // completes exactly once (no stray or duplicate CQE), every awaited one arrives once, and
    // a dropped one arrives at most once, whole.
    const SENDS: u64 = 100_000;
    const BATCH: u64 = 100;
    const STOP: u64 = u64::MAX;
    watchdog(
        "sends_cancelled_in_their_own_batch_complete_once_and_the_awaited_ones_all_arrive",
        LIMIT,
        || {
            let (ours, theirs) = std::os::unix::net::UnixDatagram::pair().unwrap();
            let receiver = std::thread::spawn(move || {
                let mut seen = vec![0u8; SENDS as usize];
                let mut buf = [0u8; 16];
                loop {
                    let n = theirs.recv(&mut buf).unwrap();
                    assert_eq!(n, 8, "a torn datagram");
                    let id = u64::from_le_bytes(buf[..8].try_into().unwrap());
                    if id == STOP {
                        return seen;
                    }
                    seen[id as usize] += 1;
                }
            });
            let rt = Runtime::new().unwrap();
            let start = rt.stats();
            rt.block_on(async {
                let socket = ringloop::net::UnixDatagram::from_std(ours).unwrap();
                for batch in 0..SENDS / BATCH {
                    let mut sends: Vec<_> = (batch * BATCH..(batch + 1) * BATCH)
                        .map(|id| Box::pin(socket.send(id.to_le_bytes().to_vec())))
                        .collect();
                    for send in &mut sends {
                        assert!(poll_once(send).await.is_pending());
                    }
                    // Odd ids are dropped before the ring turns: their cancels share the batch.
                    let mut kept = Vec::with_capacity(BATCH as usize / 2);
                    for (i, send) in sends.into_iter().enumerate() {
                        if i % 2 == 0 {
                            kept.push(send);
                        }
                    }
                    for send in kept {
                        let (res, _) = timeout(Duration::from_secs(10), send)
                            .await
                            .unwrap_or_else(|_| panic!("batch {batch}: an awaited send hung"));
                        assert_eq!(res.unwrap(), 8);
                    }
                }
                wait_until("every send to leave the ring", SETTLE, || {
                    rt.stats().ops_in_flight == 0
                })
                .await;
                let (res, _) = socket.send(STOP.to_le_bytes().to_vec()).await;
                res.unwrap();
            });
            let seen = receiver.join().unwrap();
            let stats = rt.stats();
            let dropped_won = (1..SENDS)
                .step_by(2)
                .filter(|&id| seen[id as usize] == 1)
                .count();
            println!(
                "{} dropped sends: {dropped_won} were sent before their cancel; {stats:?}",
                SENDS / 2
            );
            for (id, times) in seen.iter().enumerate() {
                if id % 2 == 0 {
                    assert_eq!(*times, 1, "awaited send {id} arrived {times} times");
                } else {
                    assert!(*times <= 1, "dropped send {id} arrived {times} times");
                }
            }
            assert_eq!(stats.ops_in_flight, 0);
            assert_eq!(
                stats.unknown_completions, start.unknown_completions,
                "a stray or duplicated completion"
            );
            assert!(stats.cancels_submitted - start.cancels_submitted >= SENDS / 2);
        },
    );
}
