//! Unix sockets: stream echo through a path, pairs, half-close, split halves, datagrams with
//! paths, dropped pending reads, and the errors of missing or overlong paths.

mod support;

use std::net::Shutdown;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use ringloop::net::{UnixDatagram, UnixListener, UnixStream};
use ringloop::time::timeout;
use ringloop::IoBufExt;
use support::{temp_path, wait_until, watchdog};

const LIMIT: Duration = Duration::from_secs(60);

/// A socket path in the temp directory, removed before use and when dropped.
struct SockPath(PathBuf);

impl SockPath {
    fn new(name: &str) -> SockPath {
        let path = temp_path(&format!("{name}.sock"));
        let _ = std::fs::remove_file(&path);
        SockPath(path)
    }
}

impl std::ops::Deref for SockPath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for SockPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Echoes one connection until its peer shuts down writing, then shuts down its own.
async fn echo(stream: UnixStream) {
    let mut buf = vec![0u8; 16 * 1024];
    for _ in 0..10_000 {
        let (res, b) = stream.read(buf).await;
        let n = res.expect("server read");
        if n == 0 {
            stream.shutdown(Shutdown::Write).expect("server shutdown");
            return;
        }
        let (res, slice) = stream.write_all(b.slice(..n)).await;
        buf = slice.into_inner();
        res.expect("server write");
    }
    panic!("echo: more reads than the test sends");
}

/// Sends `data` and reads it back concurrently (so large messages cannot deadlock on full
/// socket buffers).
async fn round_trip(stream: UnixStream, data: Vec<u8>) -> Vec<u8> {
    let (rd, wr) = stream.into_split();
    let len = data.len();
    let writer = ringloop::spawn(async move {
        wr.write_all(data).await.0.expect("client write_all");
        wr.shutdown().expect("client shutdown");
    });
    let (res, back) = rd.read_exact(Vec::with_capacity(len)).await;
    res.expect("client read_exact");
    let (res, _) = rd.read(vec![0u8; 1]).await;
    assert_eq!(
        res.expect("client read at end"),
        0,
        "the server shut down writing"
    );
    writer.await.unwrap();
    back
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 253) as u8 + 1).collect()
}

#[test]
fn stream_echo_round_trips_through_a_temp_path() {
    let path = SockPath::new("echo");
    watchdog("unix echo", LIMIT, || {
        ringloop::block_on(async {
            let listener = UnixListener::bind(&*path).unwrap();
            assert_eq!(listener.local_addr().unwrap().as_pathname(), Some(&*path));
            let server = ringloop::spawn(async move {
                let (stream, peer) = listener.accept().await.unwrap();
                assert!(peer.is_unnamed(), "the client did not bind: {peer:?}");
                echo(stream).await;
            });
            let client = UnixStream::connect(&*path).await.unwrap();
            assert_eq!(client.peer_addr().unwrap().as_pathname(), Some(&*path));
            assert!(client.local_addr().unwrap().is_unnamed());
            let data = pattern(1 << 20);
            let back = round_trip(client, data.clone()).await;
            assert!(back == data, "a mebibyte came back different");
            server.await.unwrap();
        });
    });
}

#[test]
fn incoming_serves_many_connections_from_one_listener() {
    let path = SockPath::new("incoming");
    watchdog("unix incoming", LIMIT, || {
        ringloop::block_on(async {
            let listener = UnixListener::bind(&*path).unwrap();
            const CLIENTS: usize = 32;
            let server = ringloop::spawn(async move {
                let mut incoming = listener.incoming();
                let mut tasks = Vec::new();
                for _ in 0..CLIENTS {
                    let stream = incoming.next().await.unwrap();
                    tasks.push(ringloop::spawn(echo(stream)));
                }
                for t in tasks {
                    t.await.unwrap();
                }
            });
            let clients: Vec<_> = (0..CLIENTS)
                .map(|i| {
                    let path = path.to_path_buf();
                    ringloop::spawn(async move {
                        let stream = UnixStream::connect(&path).await.unwrap();
                        let data = pattern(100 + i * 1000);
                        assert!(round_trip(stream, data.clone()).await == data, "client {i}");
                    })
                })
                .collect();
            for c in clients {
                c.await.unwrap();
            }
            server.await.unwrap();
        });
    });
}

#[test]
fn a_socketpair_talks_both_ways() {
    watchdog("unix pair", LIMIT, || {
        ringloop::block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            assert!(a.local_addr().unwrap().is_unnamed());
            assert!(a.peer_addr().unwrap().is_unnamed());
            for i in 1..=50u8 {
                a.write_all(vec![i; usize::from(i)]).await.0.unwrap();
                let (res, buf) = b.read_exact(Vec::with_capacity(usize::from(i))).await;
                res.unwrap();
                assert!(buf.iter().all(|&x| x == i));
                b.write_all(vec![i]).await.0.unwrap();
                let (res, buf) = a.read(vec![0u8; 8]).await;
                assert_eq!(res.unwrap(), 1);
                assert_eq!(buf[0], i);
            }
            drop(b);
            let (res, _) = a.read(vec![0u8; 8]).await;
            assert_eq!(res.unwrap(), 0, "the peer closed: end of stream");
            let (res, _) = a.write(b"gone".to_vec()).await;
            assert_eq!(
                res.unwrap_err().kind(),
                std::io::ErrorKind::BrokenPipe,
                "writing to a closed peer is an error, not SIGPIPE"
            );
        });
    });
}

#[test]
fn half_close_lets_the_peer_read_eof_and_still_write_back() {
    let path = SockPath::new("half-close");
    watchdog("unix half close", LIMIT, || {
        ringloop::block_on(async {
            let listener = UnixListener::bind(&*path).unwrap();
            let server = ringloop::spawn(async move {
                let (stream, _) = listener.accept().await.unwrap();
                let (res, buf) = stream.read_exact(Vec::with_capacity(5)).await;
                res.unwrap();
                let (res, _) = stream.read(vec![0u8; 16]).await;
                assert_eq!(res.unwrap(), 0, "the peer shut down writing: end of stream");
                let (res, _) = stream.write_all([b"got ".to_vec(), buf].concat()).await;
                res.unwrap();
            });
            let client = UnixStream::connect(&*path).await.unwrap();
            client.write_all(b"hello".to_vec()).await.0.unwrap();
            client.shutdown(Shutdown::Write).unwrap();
            let (res, buf) = client.read_exact(Vec::with_capacity(9)).await;
            res.unwrap();
            assert_eq!(buf, b"got hello");
            server.await.unwrap();
        });
    });
}

#[test]
fn a_dropped_pending_read_leaves_the_stream_usable() {
    watchdog("unix dropped read", LIMIT, || {
        let rt = ringloop::Runtime::new().unwrap();
        rt.block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            for _ in 0..20 {
                assert!(timeout(Duration::from_millis(1), b.read(vec![0u8; 16]))
                    .await
                    .is_err());
            }
            // Let the cancels land before the bytes, or a dropped read may take them.
            wait_until("cancelled reads complete", LIMIT, || {
                rt.stats().ops_in_flight == 0
            })
            .await;
            a.write_all(b"still here".to_vec()).await.0.unwrap();
            let (res, buf) = b.read_exact(Vec::with_capacity(10)).await;
            res.unwrap();
            assert_eq!(buf, b"still here");
        });
    });
}

#[test]
fn a_dropped_pending_accept_loses_no_connection() {
    let path = SockPath::new("dropped-accept");
    watchdog("unix dropped accept", LIMIT, || {
        ringloop::block_on(async {
            let listener = UnixListener::bind(&*path).unwrap();
            for _ in 0..20 {
                assert!(timeout(Duration::from_millis(1), listener.accept())
                    .await
                    .is_err());
            }
            let client = UnixStream::connect(&*path).await.unwrap();
            let (server, _) = listener.accept().await.unwrap();
            client.write_all(b"hi".to_vec()).await.0.unwrap();
            let (res, buf) = server.read_exact(Vec::with_capacity(2)).await;
            res.unwrap();
            assert_eq!(buf, b"hi");
        });
    });
}

#[test]
fn datagrams_round_trip_between_paths() {
    let (server_path, client_path) = (SockPath::new("dgram-server"), SockPath::new("dgram-client"));
    watchdog("unix datagram", LIMIT, || {
        ringloop::block_on(async {
            let server = UnixDatagram::bind(&*server_path).unwrap();
            let client = UnixDatagram::bind(&*client_path).unwrap();
            assert_eq!(
                server.local_addr().unwrap().as_pathname(),
                Some(&*server_path)
            );

            for i in 0..10u8 {
                let msg = vec![b'a' + i; usize::from(i) + 1];
                let (res, _) = client.send_to(msg.clone(), &*server_path).await;
                assert_eq!(res.unwrap(), msg.len());
                let (res, buf) = server.recv_from(Vec::with_capacity(64)).await;
                let (n, from) = res.unwrap();
                assert_eq!(&buf[..n], &msg[..]);
                assert_eq!(from.as_pathname(), Some(&*client_path), "the sender's path");

                let reply = [b"re:".to_vec(), msg].concat();
                let to = from.as_pathname().unwrap();
                server.send_to(reply.clone(), to).await.0.unwrap();
                let (res, buf) = client.recv_from(Vec::with_capacity(64)).await;
                let (n, from) = res.unwrap();
                assert_eq!(&buf[..n], &reply[..]);
                assert_eq!(from.as_pathname(), Some(&*server_path));
            }
        });
    });
}

#[test]
fn an_unbound_sender_is_unnamed_and_a_connected_one_can_hear_back() {
    let path = SockPath::new("dgram-unbound");
    watchdog("unix unbound", LIMIT, || {
        ringloop::block_on(async {
            let server = UnixDatagram::bind(&*path).unwrap();
            let client = UnixDatagram::unbound().unwrap();
            client.send_to(b"anon".to_vec(), &*path).await.0.unwrap();
            let (res, buf) = server.recv_from(Vec::with_capacity(16)).await;
            let (n, from) = res.unwrap();
            assert_eq!(&buf[..n], b"anon");
            assert!(from.is_unnamed(), "{from:?}");

            client.connect(&*path).unwrap();
            assert_eq!(client.peer_addr().unwrap().as_pathname(), Some(&*path));
            client.send(b"connected".to_vec()).await.0.unwrap();
            let (res, buf) = server.recv(Vec::with_capacity(16)).await;
            assert_eq!(res.unwrap(), 9);
            assert_eq!(buf, b"connected");
        });
    });
}

#[test]
fn a_datagram_pair_sends_and_truncates_like_udp() {
    watchdog("unix datagram pair", LIMIT, || {
        ringloop::block_on(async {
            let (a, b) = UnixDatagram::pair().unwrap();
            a.send(vec![7u8; 100]).await.0.unwrap();
            a.send(b"next".to_vec()).await.0.unwrap();
            let (res, buf) = b.recv(Vec::with_capacity(10)).await;
            assert_eq!(res.unwrap(), 10, "cut to the buffer");
            assert_eq!(buf, vec![7u8; 10]);
            let (res, buf) = b.recv_from(Vec::with_capacity(10)).await;
            let (n, from) = res.unwrap();
            assert_eq!(
                &buf[..n],
                b"next",
                "the tail of the long datagram was discarded"
            );
            assert!(from.is_unnamed());
        });
    });
}

#[test]
fn a_dropped_pending_recv_from_leaves_the_datagram_socket_usable() {
    watchdog("unix dropped recv_from", LIMIT, || {
        let rt = ringloop::Runtime::new().unwrap();
        rt.block_on(async {
            let (a, b) = UnixDatagram::pair().unwrap();
            for _ in 0..20 {
                assert!(
                    timeout(Duration::from_millis(1), b.recv_from(vec![0u8; 16]))
                        .await
                        .is_err()
                );
            }
            wait_until("cancelled receives complete", LIMIT, || {
                rt.stats().ops_in_flight == 0
            })
            .await;
            a.send(b"after".to_vec()).await.0.unwrap();
            let (res, buf) = b.recv_from(Vec::with_capacity(16)).await;
            assert_eq!(res.unwrap().0, 5);
            assert_eq!(buf, b"after");
        });
    });
}

#[test]
fn split_halves_work_from_two_tasks() {
    watchdog("unix split", LIMIT, || {
        ringloop::block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let (rd, wr) = a.into_split();
            let rd = Rc::new(rd);
            let reader = {
                let rd = rd.clone();
                ringloop::spawn(async move {
                    let (res, buf) = rd.read_exact(Vec::with_capacity(6)).await;
                    res.unwrap();
                    buf
                })
            };
            let writer = ringloop::spawn(async move {
                wr.write_all(b"to b".to_vec()).await.0.unwrap();
                wr.shutdown().unwrap();
            });
            let (res, buf) = b.read_exact(Vec::with_capacity(4)).await;
            res.unwrap();
            assert_eq!(buf, b"to b");
            writer.await.unwrap();
            let (res, _) = b.read(vec![0u8; 4]).await;
            assert_eq!(res.unwrap(), 0, "the write half shut down");
            b.write_all(b"back!!".to_vec()).await.0.unwrap();
            assert_eq!(reader.await.unwrap(), b"back!!");
        });
    });
}

#[test]
fn missing_stale_and_overlong_paths_are_errors() {
    let path = SockPath::new("stale");
    ringloop::block_on(async {
        let err = UnixStream::connect(&*path).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);

        // A socket file nobody listens on any more.
        drop(UnixListener::bind(&*path).unwrap());
        let err = UnixStream::connect(&*path).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
        let err = UnixListener::bind(&*path).unwrap_err();
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::AddrInUse,
            "binding over a stale file"
        );

        let err = UnixStream::connect("/tmp/nul\0inside").await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");

        let long = std::env::temp_dir().join("x".repeat(200));
        for err in [
            UnixStream::connect(&long).await.unwrap_err(),
            UnixListener::bind(&long).unwrap_err(),
            UnixDatagram::bind(&long).unwrap_err(),
            UnixDatagram::unbound()
                .unwrap()
                .send_to(b"x".to_vec(), &long)
                .await
                .0
                .unwrap_err(),
        ] {
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
        }
    });
}

#[test]
fn from_std_wraps_standard_library_sockets() {
    let path = SockPath::new("from-std");
    watchdog("unix from_std", LIMIT, || {
        ringloop::block_on(async {
            let std_listener = std::os::unix::net::UnixListener::bind(&*path).unwrap();
            std_listener.set_nonblocking(true).unwrap();
            let listener = UnixListener::from_std(std_listener).unwrap();
            let std_client = std::os::unix::net::UnixStream::connect(&*path).unwrap();
            let client = UnixStream::from_std(std_client).unwrap();
            let (server, _) = listener.accept().await.unwrap();
            client.write_all(b"std".to_vec()).await.0.unwrap();
            let (res, buf) = server.read_exact(Vec::with_capacity(3)).await;
            res.unwrap();
            assert_eq!(buf, b"std");

            let (x, y) = std::os::unix::net::UnixDatagram::pair().unwrap();
            let (x, y) = (
                UnixDatagram::from_std(x).unwrap(),
                UnixDatagram::from_std(y).unwrap(),
            );
            x.send(b"d".to_vec()).await.0.unwrap();
            assert_eq!(y.recv(Vec::with_capacity(4)).await.0.unwrap(), 1);
        });
    });
}

#[test]
fn peer_credentials_name_the_connecting_process() {
    ringloop::block_on(async {
        let dir = std::env::temp_dir().join(format!("ringloop-cred-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        let listener = ringloop::net::UnixListener::bind(&path).unwrap();
        let client = ringloop::net::UnixStream::connect(&path).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        // The effective ids (the second column of /proc/self/status's Uid: and Gid: lines).
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let effective = |key: &str| -> u32 {
            let line = status.lines().find(|l| l.starts_with(key)).unwrap();
            line.split_whitespace().nth(2).unwrap().parse().unwrap()
        };
        let me = (
            Some(std::process::id() as i32),
            effective("Uid:"),
            effective("Gid:"),
        );
        for cred in [server.peer_cred().unwrap(), client.peer_cred().unwrap()] {
            assert_eq!((cred.pid(), cred.uid(), cred.gid()), me);
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
}
