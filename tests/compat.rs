//! `compat`: ringloop streams behind tokio's, futures' and hyper's poll-based I/O traits, and
//! hyper's timer and executor, so crates written for them (tokio's io helpers, hyper) run on
//! ringloop. Built with `--features tokio-compat,futures-io,hyper` (`cargo test
//! --all-features`, as `.ci/run` does).
#![cfg(all(feature = "tokio-compat", feature = "futures-io", feature = "hyper"))]

mod support;

use std::future::poll_fn;
use std::pin::Pin;
use std::time::Duration;

use ringloop::compat::Compat;
use ringloop::net::{TcpListener, UnixStream};
use support::echo::{assert_same_bytes, pattern, tcp_pair};
use support::watchdog;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: Duration = Duration::from_secs(60);

/// A hyper service's answer: 200 with `body`.
fn text(
    body: impl Into<hyper::body::Bytes>,
) -> Result<hyper::Response<http_body_util::Full<hyper::body::Bytes>>, std::convert::Infallible> {
    Ok(hyper::Response::new(http_body_util::Full::new(body.into())))
}

#[test]
fn tokio_io_helpers_echo_a_megabyte_in_uneven_writes() {
    watchdog("compat echo", LIMIT, || {
        ringloop::block_on(async {
            let (client, server) = tcp_pair().await;
            // The server echoes with tokio's own `copy` over a tokio `split`.
            let echo = ringloop::spawn(async move {
                let (mut reader, mut writer) = tokio::io::split(Compat::new(server));
                let copied = tokio::io::copy(&mut reader, &mut writer).await.unwrap();
                writer.shutdown().await.unwrap();
                copied
            });
            let data = pattern(7, 1 << 20);
            let (mut rx, mut tx) = tokio::io::split(Compat::with_capacity(client, 3000, 5000));
            let sender = {
                let data = data.clone();
                ringloop::spawn(async move {
                    let mut rest = &data[..];
                    let mut size = 1;
                    while !rest.is_empty() {
                        let n = size.min(rest.len());
                        tx.write_all(&rest[..n]).await.unwrap();
                        rest = &rest[n..];
                        size = size * 3 % 40_000 + 1;
                    }
                    tx.shutdown().await.unwrap();
                })
            };
            let mut back = Vec::new();
            rx.read_to_end(&mut back).await.unwrap();
            sender.await.unwrap();
            assert_eq!(echo.await.unwrap(), data.len() as u64);
            assert_same_bytes(&back, &data);
        })
    });
}

#[test]
fn a_read_given_up_on_keeps_its_bytes_for_the_next_read() {
    watchdog("compat cancelled read", LIMIT, || {
        ringloop::block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let mut a = Compat::new(a);
            let mut b = Compat::new(b);
            let mut buf = [0u8; 64];
            // Nothing to read yet: the read times out and its future is dropped, but the
            // receive it started stays with `Compat`.
            let gave_up =
                ringloop::time::timeout(Duration::from_millis(20), b.read(&mut buf)).await;
            assert!(gave_up.is_err());
            a.write_all(b"hello, after a timeout").await.unwrap();
            a.flush().await.unwrap();
            let mut got = vec![0u8; 22];
            b.read_exact(&mut got).await.unwrap();
            assert_eq!(got, b"hello, after a timeout");
        })
    });
}

#[test]
fn writes_wait_for_a_slow_reader_and_arrive_in_order() {
    watchdog("compat slow reader", LIMIT, || {
        ringloop::block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let data = pattern(11, 4 << 20);
            // 4 MiB through a 16 KiB staging buffer into a socket nobody reads for 50 ms:
            // `poll_write` must wait (the kernel's buffer fills) and then resume in order.
            let writer = {
                let data = data.clone();
                ringloop::spawn(async move {
                    let mut a = Compat::with_capacity(a, 1024, 16 * 1024);
                    for chunk in data.chunks(10_000) {
                        a.write_all(chunk).await.unwrap();
                    }
                    a.flush().await.unwrap();
                    // Flushed means sent: dropping now loses nothing.
                })
            };
            ringloop::time::sleep(Duration::from_millis(50)).await;
            assert!(
                !writer.is_finished(),
                "4 MiB cannot fit in an unread socket"
            );
            let mut b = Compat::new(b);
            let mut back = Vec::new();
            b.read_to_end(&mut back).await.unwrap();
            writer.await.unwrap();
            assert_same_bytes(&back, &data);
        })
    });
}

/// The bytes a writer hands over go out even if it never polls the write side again: a
/// request written in two parts (the second while the first is still in the kernel) and then
/// an await on the answer, with no flush between, must not wait forever.
#[test]
fn accepted_bytes_go_out_without_a_flush_while_the_writer_waits_on_a_read() {
    watchdog("compat no flush", Duration::from_secs(30), || {
        ringloop::block_on(async {
            let (client, server) = tcp_pair().await;
            let body = pattern(5, 1 << 20);
            let peer = ringloop::spawn({
                let want = body.len() + 4;
                async move {
                    let mut server = Compat::new(server);
                    // Not reading for a while: the client's first send stays in the kernel.
                    ringloop::time::sleep(Duration::from_millis(20)).await;
                    let mut got = vec![0u8; want];
                    server.read_exact(&mut got).await.unwrap();
                    assert_eq!(&got[want - 4..], b"END\n");
                    server.write_all(b"ok").await.unwrap();
                    server.flush().await.unwrap();
                }
            });
            let mut client = Compat::new(client);
            client.write_all(&body).await.unwrap();
            client.write_all(b"END\n").await.unwrap();
            let mut answer = [0u8; 2];
            client.read_exact(&mut answer).await.unwrap();
            assert_eq!(&answer, b"ok");
            peer.await.unwrap();
        })
    });
}

#[test]
fn a_peer_that_resets_makes_a_later_write_or_flush_fail() {
    watchdog("compat reset", LIMIT, || {
        ringloop::block_on(async {
            let (client, server) = tcp_pair().await;
            server.set_linger(Some(Duration::ZERO)).unwrap();
            drop(server); // RST
            ringloop::time::sleep(Duration::from_millis(20)).await;
            let mut client = Compat::new(client);
            let chunk = vec![1u8; 64 * 1024];
            let mut failed = None;
            for _ in 0..1000 {
                let result = match client.write_all(&chunk).await {
                    Ok(()) => client.flush().await,
                    Err(e) => Err(e),
                };
                if let Err(e) = result {
                    failed = Some(e);
                    break;
                }
            }
            let e = failed.expect("writes to a reset connection fail within 1,000 tries");
            assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ),
                "{e:?}"
            );
            let mut buf = [0u8; 8];
            let read = client.read(&mut buf).await;
            assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        })
    });
}

#[test]
fn lines_split_across_receives_are_read_whole() {
    use tokio::io::AsyncBufReadExt;
    watchdog("compat lines", LIMIT, || {
        ringloop::block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let lines: Vec<String> = (0..200)
                .map(|i| "x".repeat(i * 7 % 50) + &i.to_string())
                .collect();
            let writer = {
                let text = lines.join("\n") + "\n";
                ringloop::spawn(async move {
                    let mut a = Compat::new(a);
                    // Dribbled out 13 bytes at a time, so lines straddle receives.
                    for piece in text.as_bytes().chunks(13) {
                        a.write_all(piece).await.unwrap();
                        a.flush().await.unwrap();
                    }
                    a.shutdown().await.unwrap();
                })
            };
            // A 16-byte receive buffer: most lines need several receives.
            let mut reader = Compat::with_capacity(b, 16, 16).lines();
            let mut got = Vec::new();
            while let Some(line) = reader.next_line().await.unwrap() {
                got.push(line);
            }
            writer.await.unwrap();
            assert_eq!(got, lines);
        })
    });
}

/// A client that closes first (as wrk does) leaves no writing side to shut down: the
/// kernel answers `ENOTCONN`, which is what was asked for, not an error (hyper logged one per
/// connection before).
#[test]
fn shutting_down_after_the_peer_is_gone_is_not_an_error() {
    watchdog("compat shutdown after close", LIMIT, || {
        ringloop::block_on(async {
            let (client, server) = tcp_pair().await;
            client.set_linger(Some(Duration::ZERO)).unwrap();
            drop(client); // RST: the server's socket is no longer connected
            let mut server = Compat::new(server);
            let mut buf = Vec::new();
            let _ = server.read_to_end(&mut buf).await;
            server.shutdown().await.unwrap();
        })
    });
}

/// The pooled read side: a tiny pool (8 × 1 KiB) runs dry again and again under a 1 MiB
/// echo, loses no byte, and has every buffer back once the reader is done.
#[test]
fn a_pooled_compat_echoes_through_a_pool_that_runs_dry_and_gets_every_buffer_back() {
    use ringloop::net::BufferPool;
    watchdog("compat pooled", LIMIT, || {
        ringloop::block_on(async {
            let pool = BufferPool::new(8, 1024).unwrap();
            let (client, server) = tcp_pair().await;
            let echo = ringloop::spawn({
                let pool = pool.clone();
                async move {
                    let (mut reader, mut writer) =
                        tokio::io::split(Compat::with_pool(server, &pool));
                    let copied = tokio::io::copy(&mut reader, &mut writer).await.unwrap();
                    writer.shutdown().await.unwrap();
                    copied
                }
            });
            let data = pattern(9, 1 << 20);
            let (mut rx, mut tx) = tokio::io::split(Compat::with_pool(client, &pool));
            let sender = {
                let data = data.clone();
                ringloop::spawn(async move {
                    for piece in data.chunks(3000) {
                        tx.write_all(piece).await.unwrap();
                    }
                    tx.shutdown().await.unwrap();
                })
            };
            let mut back = Vec::new();
            rx.read_to_end(&mut back).await.unwrap();
            sender.await.unwrap();
            assert_eq!(echo.await.unwrap(), data.len() as u64);
            assert_same_bytes(&back, &data);
            drop(rx);
            support::echo::assert_pool_refills(&pool).await;
        })
    });
}

/// Lines through the pooled read side, straddling 16-byte chunks.
#[test]
fn pooled_lines_split_across_chunks_are_read_whole() {
    use ringloop::net::BufferPool;
    use tokio::io::AsyncBufReadExt;
    watchdog("compat pooled lines", LIMIT, || {
        ringloop::block_on(async {
            let pool = BufferPool::new(16, 16).unwrap();
            let (a, b) = UnixStream::pair().unwrap();
            let writer = ringloop::spawn(async move {
                let mut a = Compat::new(a);
                for i in 0..300 {
                    a.write_all(format!("line {i} {}\n", "y".repeat(i % 40)).as_bytes())
                        .await
                        .unwrap();
                }
                a.shutdown().await.unwrap();
            });
            let mut lines = Compat::with_pool(b, &pool).lines();
            let mut n = 0;
            while let Some(line) = lines.next_line().await.unwrap() {
                assert_eq!(line, format!("line {n} {}", "y".repeat(n % 40)));
                n += 1;
            }
            writer.await.unwrap();
            assert_eq!(n, 300);
        })
    });
}

#[test]
fn futures_io_traits_read_and_write() {
    watchdog("compat futures-io", LIMIT, || {
        ringloop::block_on(async {
            use futures_io::{AsyncRead, AsyncWrite};
            let (a, b) = UnixStream::pair().unwrap();
            let mut a = Compat::new(a);
            let mut b = Compat::new(b);
            let mut written = 0;
            while written < 5 {
                written += poll_fn(|cx| Pin::new(&mut a).poll_write(cx, &b"futur"[written..]))
                    .await
                    .unwrap();
            }
            poll_fn(|cx| Pin::new(&mut a).poll_close(cx)).await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 2];
            loop {
                let n = poll_fn(|cx| Pin::new(&mut b).poll_read(cx, &mut buf))
                    .await
                    .unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, b"futur");
        })
    });
}

/// hyper's HTTP/1.1 server, unchanged, serving on ringloop: `Compat` gives tokio's traits,
/// hyper-util's `TokioIo` turns them into hyper's.
#[test]
fn a_hyper_server_answers_keep_alive_requests() {
    use hyper::Request;
    use hyper_util::rt::TokioIo;

    watchdog("compat hyper", LIMIT, || {
        ringloop::block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = ringloop::spawn(async move {
                let (stream, _) = listener.accept().await.unwrap();
                let service =
                    hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                        text(format!("{} {}", req.method(), req.uri().path()))
                    });
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(Compat::new(stream)), service)
                    .await
            });
            // A plain client, two requests on one connection, so nothing of hyper's client
            // side is under test.
            let client = ringloop::net::TcpStream::connect(addr).await.unwrap();
            let mut client = Compat::new(client);
            let mut seen = Vec::new();
            for path in ["/first", "/second"] {
                let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
                client.write_all(request.as_bytes()).await.unwrap();
                client.flush().await.unwrap();
                let want_body = format!("GET {path}");
                let mut response = Vec::new();
                let mut buf = [0u8; 1024];
                while !response.ends_with(want_body.as_bytes()) {
                    let n = client.read(&mut buf).await.unwrap();
                    assert_ne!(
                        n,
                        0,
                        "server closed early: {:?}",
                        String::from_utf8_lossy(&response)
                    );
                    response.extend_from_slice(&buf[..n]);
                }
                let text = String::from_utf8(response).unwrap();
                assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
                assert!(
                    text.contains(&format!("content-length: {}\r\n", want_body.len())),
                    "{text}"
                );
                seen.push(text);
            }
            client.shutdown().await.unwrap();
            // The client's end of stream ends the connection cleanly.
            server.await.unwrap().unwrap();
            assert_eq!(seen.len(), 2);
        })
    });
}

/// hyper served straight from `Compat` (hyper's own `rt::Read`/`rt::Write`, no `TokioIo`),
/// with ringloop's timer: a client that sends half a request head and then nothing is cut
/// off by `header_read_timeout`, while a client that sends a whole one is answered.
#[test]
fn hyper_header_read_timeout_cuts_off_a_silent_client() {
    use hyper::rt::Timer as _;
    use ringloop::compat::HyperTimer;

    watchdog("compat hyper timeout", LIMIT, || {
        ringloop::block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = ringloop::spawn(async move {
                let mut results = Vec::new();
                for _ in 0..2 {
                    let (stream, _) = listener.accept().await.unwrap();
                    let service = hyper::service::service_fn(|_req| async { text("hi") });
                    let start = std::time::Instant::now();
                    let served = hyper::server::conn::http1::Builder::new()
                        .timer(HyperTimer)
                        .header_read_timeout(Duration::from_millis(100))
                        .serve_connection(Compat::new(stream), service)
                        .await;
                    results.push((served.map_err(|e| e.is_timeout()), start.elapsed()));
                }
                results
            });

            // A slow-loris client: half a head, then silence.
            let mut silent = Compat::new(ringloop::net::TcpStream::connect(addr).await.unwrap());
            silent.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
            silent.flush().await.unwrap();
            let mut buf = [0u8; 256];
            let cut = silent.read(&mut buf).await;
            // hyper may answer 408 before closing; either way the connection ends.
            let mut rest = Vec::new();
            if let Ok(n) = cut {
                rest.extend_from_slice(&buf[..n]);
                let _ = silent.read_to_end(&mut rest).await;
            }

            let mut polite = Compat::new(ringloop::net::TcpStream::connect(addr).await.unwrap());
            polite
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            polite.flush().await.unwrap();
            let mut answer = Vec::new();
            polite.read_to_end(&mut answer).await.unwrap();
            let answer = String::from_utf8(answer).unwrap();
            assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
            assert!(answer.ends_with("hi"), "{answer}");

            let results = server.await.unwrap();
            let (silent_result, silent_took) = &results[0];
            assert_eq!(
                silent_result,
                &Err(true),
                "the silent client ends in hyper's timeout"
            );
            assert!(
                *silent_took >= Duration::from_millis(100),
                "{silent_took:?}"
            );
            assert_eq!(results[1].0, Ok(()));

            // And the timer on its own: never early.
            let start = std::time::Instant::now();
            HyperTimer.sleep(Duration::from_millis(3)).await;
            assert!(start.elapsed() >= Duration::from_millis(3));
            HyperTimer.sleep_until(std::time::Instant::now()).await;
        })
    });
}

/// hyper may drop its sleeps on any thread: the wheel entry of one dropped elsewhere is
/// removed on its runtime, not leaked.
#[test]
fn a_hyper_sleep_dropped_on_another_thread_frees_its_wheel_entry() {
    use hyper::rt::Timer as _;
    use ringloop::compat::HyperTimer;

    watchdog("compat hyper sleep drop", LIMIT, || {
        let rt = ringloop::Runtime::new().unwrap();
        // The sleep leaves `block_on` unawaited on purpose: it is dropped on another thread.
        #[allow(clippy::async_yields_async)]
        let sleep = rt.block_on(async {
            let mut sleep = HyperTimer.sleep(Duration::from_secs(3600));
            assert!(support::poll_once(&mut sleep).await.is_pending());
            sleep
        });
        assert_eq!(rt.stats().timers_alive, 1);
        std::thread::spawn(move || drop(sleep)).join().unwrap();
        // The removal arrives as a task sent to this runtime, run at its next turns.
        rt.block_on(support::wait_until(
            "the dropped sleep's wheel entry is removed",
            Duration::from_secs(10),
            || rt.stats().timers_alive == 0,
        ));

        // Dropped on its own thread, it is removed at once.
        rt.block_on(async {
            let mut sleep = HyperTimer.sleep(Duration::from_secs(3600));
            assert!(support::poll_once(&mut sleep).await.is_pending());
            drop(sleep);
        });
        assert_eq!(rt.stats().timers_alive, 0);
    });
}

/// hyper hands what it spawns (HTTP/2 streams, client connections) to its executor: these run
/// as ringloop tasks, which need not be `Send`.
#[test]
fn hyper_executor_runs_futures_as_local_tasks() {
    use hyper::rt::Executor as _;
    use ringloop::compat::HyperExecutor;

    watchdog("compat hyper executor", LIMIT, || {
        ringloop::block_on(async {
            let ran = std::rc::Rc::new(std::cell::Cell::new(0));
            for _ in 0..3 {
                let ran = ran.clone();
                HyperExecutor.execute(async move {
                    ringloop::task::yield_now().await;
                    ran.set(ran.get() + 1);
                });
            }
            support::wait_until("the executed futures ran", Duration::from_secs(10), || {
                ran.get() == 3
            })
            .await;
        })
    });
}

/// hyper's HTTP/2, client and server both on ringloop: the server spawns each stream and the
/// client its connection driver through `HyperExecutor` (local tasks: the I/O is not `Send`),
/// and both keep their timers on `HyperTimer`. Ten requests multiplexed on one connection.
#[test]
fn hyper_http2_multiplexes_requests_on_one_connection() {
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    use hyper::Request;
    use ringloop::compat::{HyperExecutor, HyperTimer};

    watchdog("compat hyper http2", LIMIT, || {
        ringloop::block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = ringloop::spawn(async move {
                let (stream, _) = listener.accept().await.unwrap();
                let service =
                    hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                        ringloop::time::sleep(Duration::from_millis(2)).await;
                        text(format!("{} over h2", req.uri().path()))
                    });
                hyper::server::conn::http2::Builder::new(HyperExecutor)
                    .timer(HyperTimer)
                    .serve_connection(Compat::new(stream), service)
                    .await
            });

            let stream = ringloop::net::TcpStream::connect(addr).await.unwrap();
            let (sender, connection) = hyper::client::conn::http2::Builder::new(HyperExecutor)
                .timer(HyperTimer)
                .handshake::<_, Empty<Bytes>>(Compat::new(stream))
                .await
                .unwrap();
            let driver = ringloop::spawn(connection);
            let requests: Vec<_> = (0..10)
                .map(|i| {
                    let mut sender = sender.clone();
                    ringloop::spawn(async move {
                        let request = Request::builder()
                            .uri(format!("http://{addr}/r{i}"))
                            .body(Empty::<Bytes>::new())
                            .unwrap();
                        let response = sender.send_request(request).await.unwrap();
                        assert_eq!(response.version(), hyper::Version::HTTP_2);
                        let body = response.into_body().collect().await.unwrap().to_bytes();
                        assert_eq!(body, format!("/r{i} over h2").as_bytes());
                    })
                })
                .collect();
            for request in requests {
                request.await.unwrap();
            }
            drop(sender);
            driver.await.unwrap().unwrap();
            server.await.unwrap().unwrap();
        })
    });
}
