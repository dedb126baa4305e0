//! UDP: round trips on IPv4 and IPv6 loopback, connected sockets, a dropped receive, and
//! datagrams larger than the buffer.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringloop::net::UdpSocket;
use ringloop::time::timeout;
use support::{wait_until, watchdog, CountedBuf};

const LIMIT: Duration = Duration::from_secs(60);

/// Sends a datagram from a fresh socket on `host` to another, which answers; checks bytes and
/// addresses both ways.
async fn round_trip_on(host: &str) {
    let server = UdpSocket::bind((host, 0)).unwrap();
    let client = UdpSocket::bind((host, 0)).unwrap();
    let server_addr = server.local_addr().unwrap();
    let client_addr = client.local_addr().unwrap();
    assert_ne!(
        server_addr.port(),
        0,
        "port 0 was replaced by the system's choice"
    );

    let (res, _) = client.send_to(b"ping".to_vec(), server_addr).await;
    assert_eq!(res.unwrap(), 4);
    let (res, buf) = server.recv_from(Vec::with_capacity(64)).await;
    let (n, from) = res.unwrap();
    assert_eq!((n, &buf[..]), (4, &b"ping"[..]));
    assert_eq!(from, client_addr);

    let (res, _) = server.send_to(b"pong!".to_vec(), from).await;
    assert_eq!(res.unwrap(), 5);
    let (res, buf) = client.recv_from(Vec::with_capacity(64)).await;
    let (n, from) = res.unwrap();
    assert_eq!((n, &buf[..]), (5, &b"pong!"[..]));
    assert_eq!(from, server_addr);
}

#[test]
fn send_to_and_recv_from_round_trip_on_ipv4_loopback() {
    watchdog("udp v4", LIMIT, || {
        ringloop::block_on(round_trip_on("127.0.0.1"))
    });
}

#[test]
fn send_to_and_recv_from_round_trip_on_ipv6_loopback() {
    if let Err(e) = std::net::UdpSocket::bind("[::1]:0") {
        println!("skipped: IPv6 loopback ::1 is unavailable here ({e})");
        return;
    }
    watchdog("udp v6", LIMIT, || ringloop::block_on(round_trip_on("::1")));
}

#[test]
fn connected_sockets_send_and_recv_and_report_their_peer() {
    watchdog("udp connected", LIMIT, || {
        ringloop::block_on(async {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
            assert_eq!(
                a.peer_addr().unwrap_err().kind(),
                std::io::ErrorKind::NotConnected
            );
            a.connect(b_addr).unwrap();
            b.connect(a_addr).unwrap();
            assert_eq!(a.peer_addr().unwrap(), b_addr);

            for i in 0..10u8 {
                let (res, _) = a.send(vec![i; usize::from(i) + 1]).await;
                assert_eq!(res.unwrap(), usize::from(i) + 1);
                let (res, buf) = b.recv(Vec::with_capacity(64)).await;
                assert_eq!(res.unwrap(), usize::from(i) + 1);
                assert!(buf.iter().all(|&x| x == i), "datagram {i}: {buf:?}");
            }
            let (res, _) = b.send(b"back".to_vec()).await;
            res.unwrap();
            let (res, buf) = a.recv(Vec::with_capacity(64)).await;
            assert_eq!(res.unwrap(), 4);
            assert_eq!(buf, b"back");
        });
    });
}

#[test]
fn send_on_an_unconnected_socket_is_an_error_not_a_panic() {
    ringloop::block_on(async {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (res, buf) = s.send(b"nowhere".to_vec()).await;
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EDESTADDRREQ));
        assert_eq!(buf, b"nowhere", "the buffer comes back with the error");
    });
}

#[test]
fn a_connected_socket_hears_connection_refused_from_a_closed_port() {
    watchdog("udp refused", LIMIT, || {
        ringloop::block_on(async {
            let closed: SocketAddr = {
                let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                s.local_addr().unwrap()
            };
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.connect(closed).unwrap();
            // The ICMP port-unreachable answering this send comes back as an error on the
            // socket, reported by its next call.
            s.send(b"anyone?".to_vec()).await.0.unwrap();
            let (res, _) = timeout(Duration::from_secs(10), s.recv(Vec::with_capacity(16)))
                .await
                .expect("the refusal arrives");
            assert_eq!(
                res.unwrap_err().kind(),
                std::io::ErrorKind::ConnectionRefused
            );
        });
    });
}

#[test]
fn a_dropped_pending_recv_from_leaves_the_socket_usable_and_frees_its_buffer() {
    watchdog("udp dropped recv_from", LIMIT, || {
        let rt = ringloop::Runtime::new().unwrap();
        let alive = Arc::new(AtomicUsize::new(0));
        rt.block_on(async {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            let addr = server.local_addr().unwrap();
            for _ in 0..20 {
                let buf = CountedBuf::new(64, &alive);
                assert!(timeout(Duration::from_millis(1), server.recv_from(buf))
                    .await
                    .is_err());
            }
            // Let the cancels land before the datagram, or a dropped receive may take it.
            wait_until("cancelled receives complete", LIMIT, || {
                rt.stats().ops_in_flight == 0
            })
            .await;
            assert_eq!(
                alive.load(Ordering::SeqCst),
                0,
                "each dropped receive's buffer is freed once the kernel lets go"
            );
            client
                .send_to(b"still here".to_vec(), addr)
                .await
                .0
                .unwrap();
            let (res, buf) = server.recv_from(Vec::with_capacity(64)).await;
            let (n, from) = res.unwrap();
            assert_eq!(&buf[..n], b"still here");
            assert_eq!(from, client.local_addr().unwrap());
        });
    });
}

/// A datagram longer than the buffer is cut to the buffer's size and its tail discarded: the
/// next receive gets the next datagram, not the rest of this one.
#[test]
fn a_datagram_larger_than_the_buffer_is_truncated_and_its_tail_discarded() {
    watchdog("udp truncation", LIMIT, || {
        ringloop::block_on(async {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            let addr = server.local_addr().unwrap();
            let big: Vec<u8> = (0..60_000u32).map(|i| (i % 251) as u8).collect();
            let (res, _) = client.send_to(big.clone(), addr).await;
            assert_eq!(res.unwrap(), big.len());
            client.send_to(b"next".to_vec(), addr).await.0.unwrap();

            let (res, buf) = server.recv_from(Vec::with_capacity(100)).await;
            let (n, _) = res.unwrap();
            assert_eq!(
                n,
                buf.capacity(),
                "the result is the buffer's size, not the datagram's"
            );
            assert_eq!(&buf[..], &big[..n]);

            let (res, buf) = server.recv_from(Vec::with_capacity(100)).await;
            assert_eq!(res.unwrap().0, 4);
            assert_eq!(buf, b"next");

            // A buffer of the largest UDP payload gets any datagram whole.
            client.send_to(big.clone(), addr).await.0.unwrap();
            let (res, buf) = server.recv_from(Vec::with_capacity(65_507)).await;
            assert_eq!(res.unwrap().0, big.len());
            assert!(buf == big);
        });
    });
}

#[test]
fn an_empty_datagram_arrives_as_zero_bytes() {
    watchdog("udp empty", LIMIT, || {
        ringloop::block_on(async {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            let (res, _) = client
                .send_to(Vec::new(), server.local_addr().unwrap())
                .await;
            assert_eq!(res.unwrap(), 0);
            let (res, buf) = server.recv_from(Vec::with_capacity(8)).await;
            let (n, from) = res.unwrap();
            assert_eq!((n, buf.len()), (0, 0));
            assert_eq!(from, client.local_addr().unwrap());
        });
    });
}

#[test]
fn an_oversized_datagram_is_refused_whole() {
    ringloop::block_on(async {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (res, _) = s.send_to(vec![1u8; 70_000], s.local_addr().unwrap()).await;
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EMSGSIZE));
    });
}

#[test]
fn many_datagrams_in_flight_from_concurrent_tasks_all_arrive() {
    watchdog("udp concurrent", LIMIT, || {
        ringloop::block_on(async {
            let server = std::rc::Rc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
            let addr = server.local_addr().unwrap();
            const SENDERS: u8 = 16;
            let receiver = {
                let server = server.clone();
                ringloop::spawn(async move {
                    let mut seen = vec![false; usize::from(SENDERS)];
                    for _ in 0..SENDERS {
                        let (res, buf) = server.recv_from(Vec::with_capacity(8)).await;
                        let (n, _) = res.unwrap();
                        assert_eq!(n, 1);
                        seen[usize::from(buf[0])] = true;
                    }
                    seen
                })
            };
            let senders: Vec<_> = (0..SENDERS)
                .map(|i| {
                    ringloop::spawn(async move {
                        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                        s.send_to(vec![i], addr).await.0.unwrap();
                    })
                })
                .collect();
            for s in senders {
                s.await.unwrap();
            }
            let seen = receiver.await.unwrap();
            assert!(
                seen.iter().all(|&s| s),
                "every sender's datagram arrived: {seen:?}"
            );
        });
    });
}

#[test]
fn from_std_makes_the_socket_blocking_and_usable() {
    watchdog("udp from_std", LIMIT, || {
        ringloop::block_on(async {
            let std_sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            std_sock.set_nonblocking(true).unwrap();
            let s = UdpSocket::from_std(std_sock).unwrap();
            let flags = nix::fcntl::fcntl(&s, nix::fcntl::FcntlArg::F_GETFL).unwrap();
            let flags = nix::fcntl::OFlag::from_bits_truncate(flags);
            assert!(
                !flags.contains(nix::fcntl::OFlag::O_NONBLOCK),
                "O_NONBLOCK was cleared"
            );
            let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
            // A receive posted before the datagram arrives waits (older kernels answer EAGAIN
            // on an O_NONBLOCK socket instead).
            let addr = s.local_addr().unwrap();
            let rx = ringloop::spawn(async move { s.recv_from(Vec::with_capacity(8)).await });
            ringloop::task::yield_now().await;
            peer.send_to(b"hi".to_vec(), addr).await.0.unwrap();
            let (res, buf) = rx.await.unwrap();
            assert_eq!(res.unwrap().0, 2);
            assert_eq!(buf, b"hi");
        });
    });
}

/// A group joined on the loopback interface gets what a local socket sends to it, and stops
/// getting it once left. Everything stays on `lo`: the receiver is bound to the group address
/// and the sender to 127.0.0.1.
#[test]
fn a_multicast_group_joined_on_loopback_receives_until_it_is_left() {
    use std::net::Ipv4Addr;

    watchdog("udp multicast", Duration::from_secs(60), || {
        ringloop::block_on(async {
            let group = Ipv4Addr::new(239, 255, 77, 7);
            let receiver = UdpSocket::bind((group, 0)).unwrap();
            let port = receiver.local_addr().unwrap().port();
            if let Err(e) = receiver.join_multicast_v4(group, Ipv4Addr::LOCALHOST) {
                // A loopback device without multicast: nothing to test on this machine.
                eprintln!("skipped: cannot join {group} on lo ({e})");
                return;
            }
            let not_a_group = receiver.join_multicast_v4(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST);
            assert_eq!(
                not_a_group.unwrap_err().kind(),
                std::io::ErrorKind::InvalidInput
            );

            let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
            sender.set_multicast_loop_v4(true).unwrap();
            assert!(sender.multicast_loop_v4().unwrap());
            sender.set_multicast_ttl_v4(1).unwrap();
            assert_eq!(sender.multicast_ttl_v4().unwrap(), 1);
            assert_eq!(
                sender.set_multicast_ttl_v4(256).unwrap_err().kind(),
                std::io::ErrorKind::InvalidInput
            );

            let (res, _) = sender
                .send_to(b"to the group".to_vec(), (group, port))
                .await;
            res.unwrap();
            let (res, buf) = ringloop::time::timeout(
                Duration::from_secs(10),
                receiver.recv_from(Vec::with_capacity(64)),
            )
            .await
            .expect("the group's datagram arrives");
            let (n, from) = res.unwrap();
            assert_eq!(&buf[..n], b"to the group");
            assert_eq!(from, sender.local_addr().unwrap());

            receiver
                .leave_multicast_v4(group, Ipv4Addr::LOCALHOST)
                .unwrap();
            let (res, _) = sender
                .send_to(b"after leaving".to_vec(), (group, port))
                .await;
            res.unwrap();
            let late = ringloop::time::timeout(
                Duration::from_millis(200),
                receiver.recv_from(Vec::with_capacity(64)),
            )
            .await;
            assert!(late.is_err(), "a left group delivers nothing");
        })
    });
}

#[test]
fn pooled_datagrams_arrive_whole_with_their_senders() {
    watchdog("udp pooled", LIMIT, || {
        ringloop::block_on(async {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let server_addr = server.local_addr().unwrap();
            let pool = ringloop::net::BufferPool::new(64, 2048).unwrap();
            let mut datagrams = server.recv_from_pooled(&pool).unwrap();
            let mut clients = Vec::new();
            // UDP drops what the socket's receive buffer cannot hold: senders keep at most 16
            // datagrams unreceived between them.
            let received = std::rc::Rc::new(std::cell::Cell::new(0usize));
            let sent = std::rc::Rc::new(std::cell::Cell::new(0usize));
            for c in 0..3u8 {
                let received = received.clone();
                let sent = sent.clone();
                let client = UdpSocket::bind("127.0.0.1:0").unwrap();
                let addr = client.local_addr().unwrap();
                clients.push(addr);
                ringloop::spawn(async move {
                    for i in 0..100usize {
                        // Sizes 0 to 1,485, each byte saying who sent it and which one it is.
                        let len = i * 15;
                        let payload: Vec<u8> = (0..len).map(|k| (k + i) as u8 ^ c).collect();
                        while sent.get() - received.get() >= 16 {
                            ringloop::task::yield_now().await;
                        }
                        sent.set(sent.get() + 1);
                        let (res, _) = client.send_to(payload, server_addr).await;
                        res.unwrap();
                    }
                    client
                });
            }
            let mut next = [0usize; 3];
            for _ in 0..300 {
                let datagram = timeout(LIMIT, datagrams.next())
                    .await
                    .expect("every datagram arrives")
                    .unwrap()
                    .unwrap();
                let c = clients
                    .iter()
                    .position(|a| *a == datagram.peer_addr())
                    .expect("a known sender");
                let i = next[c];
                next[c] += 1;
                received.set(received.get() + 1);
                assert!(!datagram.is_truncated());
                let expected: Vec<u8> = (0..i * 15).map(|k| (k + i) as u8 ^ c as u8).collect();
                assert_eq!(&datagram[..], &expected[..], "client {c} datagram {i}");
            }
            assert_eq!(next, [100; 3]);
            assert_eq!(pool.available(), pool.count(), "every buffer is back");
        });
    });
}

#[test]
fn a_pooled_datagram_longer_than_its_buffer_is_cut_and_says_so() {
    watchdog("udp pooled cut", LIMIT, || {
        ringloop::block_on(async {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            let pool = ringloop::net::BufferPool::new(4, 256).unwrap();
            let mut datagrams = server.recv_from_pooled(&pool).unwrap();
            let long: Vec<u8> = (0..1000).map(|i| i as u8).collect();
            let (res, _) = client
                .send_to(long.clone(), server.local_addr().unwrap())
                .await;
            res.unwrap();
            let (res, _) = client
                .send_to(b"short".to_vec(), server.local_addr().unwrap())
                .await;
            res.unwrap();
            let cut = datagrams.next().await.unwrap().unwrap();
            assert!(cut.is_truncated());
            assert!(!cut.is_empty() && cut.len() <= 256);
            assert_eq!(&cut[..], &long[..cut.len()], "the datagram's start");
            let short = datagrams.next().await.unwrap().unwrap();
            assert!(!short.is_truncated());
            assert_eq!(&short[..], b"short", "the next datagram is whole");
            // Buffers too small for the header and a byte are refused up front.
            let tiny = ringloop::net::BufferPool::new(4, 44).unwrap();
            let err = server.recv_from_pooled(&tiny).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        });
    });
}

#[test]
fn a_tiny_pool_held_by_a_slow_consumer_pauses_and_loses_no_datagram() {
    watchdog("udp pooled slow", LIMIT, || {
        ringloop::block_on(async {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            let pool = ringloop::net::BufferPool::new(4, 512).unwrap();
            let mut datagrams = server.recv_from_pooled(&pool).unwrap();
            // 40 small datagrams wait in the socket (well within its receive buffer).
            for i in 0..40u8 {
                let (res, _) = client
                    .send_to(vec![i; 8], server.local_addr().unwrap())
                    .await;
                res.unwrap();
            }
            let mut held = Vec::new();
            let mut got = Vec::new();
            while got.len() < 40 {
                let datagram = timeout(LIMIT, datagrams.next())
                    .await
                    .expect("receiving resumes once buffers come back")
                    .unwrap()
                    .unwrap();
                got.push(datagram[0]);
                held.push(datagram);
                if held.len() == 4 {
                    // The whole pool is held: give it back in one go.
                    held.clear();
                }
            }
            assert_eq!(got, (0..40).collect::<Vec<u8>>(), "in order, none lost");
        });
    });
}

#[test]
fn an_error_on_a_pooled_receive_is_reported_and_receiving_goes_on() {
    watchdog("udp pooled error", LIMIT, || {
        ringloop::block_on(async {
            let port_addr: SocketAddr = {
                let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                s.local_addr().unwrap()
            };
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.connect(port_addr).unwrap();
            let pool = ringloop::net::BufferPool::new(4, 512).unwrap();
            let mut datagrams = s.recv_from_pooled(&pool).unwrap();
            // Nobody listens yet: the ICMP answer comes back as ConnectionRefused.
            s.send(b"anyone?".to_vec()).await.0.unwrap();
            let first = timeout(Duration::from_secs(10), datagrams.next())
                .await
                .expect("the refusal arrives")
                .unwrap();
            assert_eq!(
                first.unwrap_err().kind(),
                std::io::ErrorKind::ConnectionRefused
            );
            // Now someone does, and answers: the same stream receives it.
            let peer = UdpSocket::bind(port_addr).unwrap();
            let (res, _) = peer
                .send_to(b"here".to_vec(), s.local_addr().unwrap())
                .await;
            res.unwrap();
            let answer = timeout(Duration::from_secs(10), datagrams.next())
                .await
                .expect("the stream receives after the error")
                .unwrap()
                .unwrap();
            assert_eq!(&answer[..], b"here");
            assert_eq!(answer.peer_addr(), port_addr);
        });
    });
}

#[test]
fn a_send_queue_delivers_every_datagram_and_drops_every_buffer() {
    watchdog("udp send queue", LIMIT, || {
        let alive = Arc::new(AtomicUsize::new(0));
        ringloop::block_on(async {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            let to = server.local_addr().unwrap();
            let pool = ringloop::net::BufferPool::new(64, 512).unwrap();
            let mut datagrams = server.recv_from_pooled(&pool).unwrap();
            let mut queue = client.send_queue::<CountedBuf>(8);
            assert_eq!(queue.depth(), 8);
            for round in 0..20u32 {
                // Rounds of 50 keep the server's receive buffer from overflowing (UDP drops).
                for i in 0..50u32 {
                    let mut buf = CountedBuf::new(8, &alive);
                    buf.buf = (round * 50 + i).to_le_bytes().repeat(2);
                    queue.send_to(buf, to).await.unwrap();
                    assert!(queue.in_flight() <= 8);
                }
                queue.flush().await.unwrap();
                assert_eq!(queue.in_flight(), 0);
                for i in 0..50u32 {
                    let datagram = timeout(LIMIT, datagrams.next())
                        .await
                        .unwrap()
                        .unwrap()
                        .unwrap();
                    assert_eq!(&datagram[..], &(round * 50 + i).to_le_bytes().repeat(2)[..]);
                    assert_eq!(datagram.peer_addr(), client.local_addr().unwrap());
                }
            }
            assert_eq!(
                alive.load(Ordering::SeqCst),
                0,
                "every sent buffer was dropped"
            );
        });
    });
}

#[test]
fn pooled_datagrams_echo_back_through_a_send_queue_without_a_copy() {
    watchdog("udp zero-copy echo", LIMIT, || {
        ringloop::block_on(async {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let server_addr = server.local_addr().unwrap();
            let pool = ringloop::net::BufferPool::new(8, 2048).unwrap();
            let echo_pool = pool.clone();
            let echo = ringloop::spawn(async move {
                let mut datagrams = server.recv_from_pooled(&echo_pool).unwrap();
                let mut replies = server.send_queue(4);
                for _ in 0..200 {
                    let datagram = datagrams.next().await.unwrap().unwrap();
                    let peer = datagram.peer_addr();
                    // The pooled buffer itself goes out, and back to the pool after.
                    replies.send_to(datagram, peer).await.unwrap();
                }
                replies.flush().await.unwrap();
            });
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            for i in 0..200usize {
                let payload: Vec<u8> = (0..i * 7).map(|k| (k * 31 + i) as u8).collect();
                let (res, payload) = client.send_to(payload, server_addr).await;
                res.unwrap();
                let (res, back) = timeout(LIMIT, client.recv_from(Vec::with_capacity(2048)))
                    .await
                    .unwrap();
                assert_eq!(res.unwrap(), (payload.len(), server_addr));
                assert_eq!(back, payload, "datagram {i}");
            }
            echo.await.unwrap();
            assert_eq!(
                pool.available(),
                pool.count(),
                "every pooled buffer is back"
            );
        });
    });
}

#[test]
fn a_send_error_is_flushs_once_and_the_queue_keeps_sending() {
    watchdog("udp send queue error", LIMIT, || {
        ringloop::block_on(async {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            let to = server.local_addr().unwrap();
            let mut queue = client.send_queue::<Vec<u8>>(4);
            // Larger than any UDP datagram over IPv4: EMSGSIZE, for this datagram only.
            queue.send_to(vec![0; 70_000], to).await.unwrap();
            queue.send_to(b"fine".to_vec(), to).await.unwrap();
            let err = queue.flush().await.unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EMSGSIZE));
            queue.flush().await.unwrap();
            let (res, got) = timeout(LIMIT, server.recv_from(Vec::with_capacity(16)))
                .await
                .unwrap();
            res.unwrap();
            assert_eq!(got, b"fine");
        });
    });
}

#[test]
fn a_dropped_send_queue_lets_its_sends_finish_and_lets_go_of_its_socket() {
    watchdog("udp send queue drop", LIMIT, || {
        let alive = Arc::new(AtomicUsize::new(0));
        ringloop::block_on(async {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let to = server.local_addr().unwrap();
            let fds_before = support::open_fds();
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut queue = client.send_queue::<CountedBuf>(4);
            for _ in 0..4 {
                queue
                    .send_to(CountedBuf::new(32, &alive), to)
                    .await
                    .unwrap();
            }
            queue.flush().await.unwrap(); // four slots idle, each holding its driver slot
            for _ in 0..2 {
                queue
                    .send_to(CountedBuf::new(32, &alive), to)
                    .await
                    .unwrap();
            }
            drop(queue); // two idle slots, and two sends not reaped yet
            drop(client);
            wait_until("the sends' buffers dropped", LIMIT, || {
                alive.load(Ordering::SeqCst) == 0
            })
            .await;
            // The queue's slots held its state, and the state the socket: all of it let go.
            wait_until("the socket closed", LIMIT, || {
                support::open_fds() == fds_before
            })
            .await;
            let mut got = 0;
            while got < 6 {
                let (res, _) = timeout(LIMIT, server.recv_from(Vec::with_capacity(64)))
                    .await
                    .unwrap();
                assert_eq!(res.unwrap().0, 32);
                got += 1;
            }
        });
    });
}
