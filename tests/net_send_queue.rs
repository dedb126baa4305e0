//! `SendQueue`: writes sent in order by the reactor, without waking the writer per write.

mod support;

use std::net::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringloop::net::{BufferPool, TcpListener, TcpStream, UnixStream};
use ringloop::time::sleep;
use support::echo::{pattern, tcp_pair};
use support::{run, watchdog, CountedBuf, LIMIT};

/// Shrinks `writer`'s send buffer to 2 KiB, so big sends come back short.
fn tiny_send_buffer(writer: &TcpStream) {
    nix::sys::socket::setsockopt(writer, nix::sys::socket::sockopt::SndBuf, &2048).unwrap();
}

/// Reads until EOF, a few bytes at a time with pauses: a reader slower than the writer.
async fn read_slowly(reader: &TcpStream, seed: u64) -> Vec<u8> {
    let mut got = Vec::new();
    let mut rng = fastrand::Rng::with_seed(seed);
    loop {
        let (res, buf) = reader.read(Vec::with_capacity(rng.usize(1..512))).await;
        if res.unwrap() == 0 {
            return got;
        }
        got.extend_from_slice(&buf);
        if rng.u8(..) < 8 {
            sleep(Duration::from_micros(200)).await;
        }
    }
}

#[test]
fn queued_writes_through_a_tiny_send_buffer_arrive_complete_and_in_order() {
    watchdog("send queue short writes", LIMIT, || {
        run(async {
            let (writer, reader) = tcp_pair().await;
            tiny_send_buffer(&writer);
            // A fixed receive buffer (no autotuning) so most of the 512 KiB must wait in the
            // writer; not smaller than loopback's 64 KiB segments, or TCP drops them and crawls
            // through retransmits.
            nix::sys::socket::setsockopt(&reader, nix::sys::socket::sockopt::RcvBuf, &65536)
                .unwrap();
            // Buffers of uneven sizes, several far larger than the socket buffer, so most
            // sends are short and must be continued before the next buffer goes out.
            let mut rng = fastrand::Rng::with_seed(11);
            let chunks: Vec<Vec<u8>> = (0..64)
                .map(|i| pattern(i, rng.usize(1..16 * 1024)))
                .collect();
            let expected: Vec<u8> = chunks.concat();
            let sender = ringloop::spawn(async move {
                let mut queue = writer.send_queue(4);
                for chunk in chunks {
                    queue.send(chunk).await.unwrap();
                    assert!(queue.queued() <= 4, "send waits while the queue is full");
                }
                queue.flush().await.unwrap();
                assert_eq!(
                    queue.queued(),
                    0,
                    "flush returns once everything was written"
                );
                writer.shutdown(Shutdown::Write).unwrap();
            });
            let got = read_slowly(&reader, 5).await;
            sender.await.unwrap();
            assert_eq!(got.len(), expected.len());
            assert!(got == expected, "bytes arrived out of order");
        });
    });
}

#[test]
fn every_queued_buffer_is_dropped_once_after_its_bytes_were_sent() {
    watchdog("send queue releases buffers", LIMIT, || {
        run(async {
            let (writer, reader) = tcp_pair().await;
            let alive = Arc::new(AtomicUsize::new(0));
            let reading = ringloop::spawn(async move { read_slowly(&reader, 9).await.len() });
            let mut queue = writer.send_queue(8);
            for i in 0..500 {
                let mut buf = CountedBuf::new(0, &alive);
                buf.buf = pattern(i, 1000);
                queue.send(buf).await.unwrap();
                assert!(
                    alive.load(Ordering::SeqCst) <= 8,
                    "at most `depth` buffers held"
                );
            }
            queue.flush().await.unwrap();
            assert_eq!(
                alive.load(Ordering::SeqCst),
                0,
                "each buffer dropped once sent"
            );
            drop(queue);
            writer.shutdown(Shutdown::Write).unwrap();
            assert_eq!(reading.await.unwrap(), 500 * 1000);
        });
    });
}

#[test]
fn a_peer_that_resets_makes_later_sends_and_flush_fail_and_releases_the_queue() {
    watchdog("send queue peer reset", LIMIT, || {
        run(async {
            let (writer, reader) = tcp_pair().await;
            // Unread data at close: the kernel answers with a reset.
            let (res, _) = writer.write_all(vec![1u8; 1024]).await;
            res.unwrap();
            drop(reader);
            let alive = Arc::new(AtomicUsize::new(0));
            let mut queue = writer.send_queue(2);
            let mut error = None;
            for _ in 0..10_000 {
                let mut buf = CountedBuf::new(0, &alive);
                buf.buf = vec![2u8; 64 * 1024];
                if let Err(e) = queue.send(buf).await {
                    error = Some(e);
                    break;
                }
            }
            let error = match error {
                Some(e) => e,
                None => queue
                    .flush()
                    .await
                    .expect_err("a reset peer takes no 640 MB"),
            };
            assert!(
                matches!(
                    error.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ),
                "{error}"
            );
            let again = queue.flush().await.expect_err("the failure sticks");
            assert_eq!(again.kind(), error.kind());
            let mut buf = CountedBuf::new(0, &alive);
            buf.buf = vec![3u8; 10];
            assert!(queue.send(buf).await.is_err());
            assert_eq!(
                alive.load(Ordering::SeqCst),
                0,
                "a failed queue holds nothing"
            );
        });
    });
}

#[test]
fn dropping_a_queue_with_a_blocked_write_cancels_it_and_frees_every_buffer_after_the_kernel() {
    watchdog("send queue drop", LIMIT, || {
        run(async {
            let (writer, reader) = tcp_pair().await;
            tiny_send_buffer(&writer);
            let alive = Arc::new(AtomicUsize::new(0));
            let mut queue = writer.send_queue(3);
            for _ in 0..3 {
                let mut buf = CountedBuf::new(0, &alive);
                buf.buf = vec![4u8; 8 << 20];
                queue.send(buf).await.unwrap();
            }
            // Nobody reads: the first send blocks in the kernel with its buffer lent.
            sleep(Duration::from_millis(20)).await;
            assert_eq!(alive.load(Ordering::SeqCst), 3);
            drop(queue);
            // The two buffers never lent go at once; the one in flight only after its CQE.
            assert!(alive.load(Ordering::SeqCst) <= 1);
            let deadline = std::time::Instant::now() + LIMIT;
            while alive.load(Ordering::SeqCst) > 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the cancel never completed"
                );
                sleep(Duration::from_millis(1)).await;
            }
            // The stream itself is still usable for ordinary writes.
            drop(reader);
        });
    });
}

#[test]
fn a_runtime_dropped_with_a_blocked_queue_returns_and_frees_every_buffer() {
    watchdog("send queue runtime drop", LIMIT, || {
        let alive = Arc::new(AtomicUsize::new(0));
        let rt = ringloop::Runtime::new().unwrap();
        let held = alive.clone();
        rt.block_on(async move {
            let (writer, reader) = tcp_pair().await;
            tiny_send_buffer(&writer);
            // A task that never finishes: its queue's first send blocks (nobody reads).
            let counted = held.clone();
            drop(ringloop::spawn(async move {
                let _reader = reader;
                let mut queue = writer.send_queue(2);
                for _ in 0..2 {
                    let mut buf = CountedBuf::new(0, &counted);
                    buf.buf = vec![5u8; 8 << 20];
                    queue.send(buf).await.unwrap();
                }
                queue.flush().await.unwrap();
                unreachable!("nobody reads: 16 MiB cannot be flushed");
            }));
            sleep(Duration::from_millis(20)).await;
            assert_eq!(held.load(Ordering::SeqCst), 2, "both buffers queued");
        });
        let started = std::time::Instant::now();
        drop(rt);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "runtime drop hung"
        );
        // The task's drop cancelled the send; shutdown reaped its CQE, which released the
        // buffer the kernel was reading from. Nothing leaked, nothing freed early.
        assert_eq!(alive.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn an_echo_relaying_pooled_chunks_through_a_queue_returns_every_byte_and_buffer() {
    watchdog("send queue echo", LIMIT, || {
        run(async {
            let pool = BufferPool::new(8, 1024).unwrap();
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server_pool = pool.clone();
            let server = ringloop::spawn(async move {
                let mut handlers = Vec::new();
                for _ in 0..8 {
                    let (stream, _) = listener.accept().await.unwrap();
                    let pool = server_pool.clone();
                    handlers.push(ringloop::spawn(async move {
                        let mut rx = stream.recv_pooled(&pool);
                        let mut tx = stream.send_queue(2);
                        while let Some(chunk) = rx.next().await {
                            tx.send(chunk.unwrap()).await.unwrap();
                        }
                        tx.flush().await.unwrap();
                    }));
                }
                for h in handlers {
                    h.await.unwrap();
                }
            });
            let mut clients = Vec::new();
            for c in 0..8u64 {
                clients.push(ringloop::spawn(async move {
                    let stream = TcpStream::connect(addr).await.unwrap();
                    let data = pattern(c, 200_000);
                    let (res, data) = stream.write_all(data).await;
                    res.unwrap();
                    // Half-close: the server sees EOF and must still send back what it got.
                    stream.shutdown(Shutdown::Write).unwrap();
                    let mut got = Vec::new();
                    loop {
                        let (res, buf) = stream.read(Vec::with_capacity(8192)).await;
                        if res.unwrap() == 0 {
                            break;
                        }
                        got.extend_from_slice(&buf);
                    }
                    assert!(got == data, "client {c}: echo differs");
                }));
            }
            for c in clients {
                c.await.unwrap();
            }
            server.await.unwrap();
            assert_eq!(pool.available(), 8, "every pooled buffer is back");
        });
    });
}

#[test]
fn a_unix_stream_queue_sends_in_order() {
    watchdog("send queue unix", LIMIT, || {
        run(async {
            let (a, b) = UnixStream::pair().unwrap();
            let expected = pattern(3, 300_000);
            let data = expected.clone();
            let sender = ringloop::spawn(async move {
                let mut queue = a.send_queue(2);
                for chunk in data.chunks(7_000) {
                    queue.send(chunk.to_vec()).await.unwrap();
                }
                queue.flush().await.unwrap();
            });
            let (res, got) = b.read_exact(Vec::with_capacity(expected.len())).await;
            res.unwrap();
            sender.await.unwrap();
            assert!(got == expected);
        });
    });
}

#[test]
fn an_idle_queue_holds_no_operation_in_flight() {
    watchdog("send queue idle", LIMIT, || {
        run(async {
            let (writer, reader) = tcp_pair().await;
            // Let the connect's and accept's last completions settle.
            sleep(Duration::from_millis(10)).await;
            let baseline = ringloop::RuntimeStats::current().ops_in_flight;
            let mut queue = writer.send_queue(2);
            for i in 0..100 {
                queue.send(pattern(i, 100)).await.unwrap();
            }
            queue.flush().await.unwrap();
            assert_eq!(
                ringloop::RuntimeStats::current().ops_in_flight,
                baseline,
                "a flushed queue keeps its slot parked, not in flight"
            );
            drop(queue);
            writer.shutdown(Shutdown::Write).unwrap();
            assert_eq!(read_slowly(&reader, 1).await.len(), 100 * 100);
        });
    });
}

#[test]
fn a_queue_that_outlives_its_runtime_fails_its_sends_and_holds_nothing() {
    watchdog("send queue outlives runtime", LIMIT, || {
        let alive = Arc::new(AtomicUsize::new(0));
        let rt = ringloop::Runtime::new().unwrap();
        let (mut queue, _reader) = rt.block_on(async {
            let (writer, reader) = tcp_pair().await;
            let mut queue = writer.send_queue(2);
            let mut buf = CountedBuf::new(0, &Arc::new(AtomicUsize::new(0)));
            buf.buf = b"parked".to_vec();
            queue.send(buf).await.unwrap();
            queue.flush().await.unwrap();
            (queue, reader)
        });
        drop(rt);
        let mut buf = CountedBuf::new(0, &alive);
        buf.buf = vec![1u8; 10];
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let send = std::pin::pin!(queue.send(buf));
        match std::future::Future::poll(send, &mut cx) {
            std::task::Poll::Ready(Err(e)) => {
                assert_eq!(e.raw_os_error(), Some(libc::ECANCELED), "{e}")
            }
            other => panic!("a send after shutdown must fail at once, got {other:?}"),
        }
        assert_eq!(
            alive.load(Ordering::SeqCst),
            0,
            "the refused buffer was dropped"
        );
    });
}
