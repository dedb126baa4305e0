//! `TcpSocket`: options set before connecting or listening take effect, and the socket becomes
//! a working stream or listener.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use ringloop::net::{ListenOptions, TcpListener, TcpSocket};
use support::watchdog;

const LIMIT: Duration = Duration::from_secs(60);

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[test]
fn a_bound_client_connects_from_the_address_it_chose() {
    watchdog("bound connect", LIMIT, || {
        ringloop::block_on(async {
            let listener = TcpListener::bind(loopback()).unwrap();
            let client = TcpSocket::new_v4().unwrap();
            client.bind(loopback()).unwrap();
            let from = client.local_addr().unwrap();
            assert_ne!(from.port(), 0);
            let stream = client
                .connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (accepted, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, from);
            assert_eq!(stream.local_addr().unwrap(), from);
            // And it carries bytes both ways.
            let (res, _) = stream.write_all(b"ping".to_vec()).await;
            res.unwrap();
            let (res, buf) = accepted.read_exact(Vec::with_capacity(4)).await;
            res.unwrap();
            assert_eq!(buf, b"ping");
        })
    });
}

#[test]
fn options_read_back_what_was_set() {
    ringloop::block_on(async {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.set_keepalive(true).unwrap();
        socket.set_nodelay(true).unwrap();
        socket.set_send_buffer_size(64 * 1024).unwrap();
        socket.set_recv_buffer_size(96 * 1024).unwrap();
        assert!(socket.reuseaddr().unwrap());
        assert!(socket.keepalive().unwrap());
        assert!(socket.nodelay().unwrap());
        assert!(!socket.reuseport().unwrap());
        // Linux doubles the sizes it is given (and caps them at net.core.[rw]mem_max).
        assert!(socket.send_buffer_size().unwrap() >= 64 * 1024);
        assert!(socket.recv_buffer_size().unwrap() >= 96 * 1024);
        socket.set_keepalive(false).unwrap();
        assert!(!socket.keepalive().unwrap());
    });
}

#[test]
fn reuseport_lets_two_listeners_share_a_port_and_its_absence_refuses_the_second() {
    watchdog("reuseport", LIMIT, || {
        ringloop::block_on(async {
            let first = TcpSocket::new_v4().unwrap();
            first.set_reuseport(true).unwrap();
            first.bind(loopback()).unwrap();
            let addr = first.local_addr().unwrap();
            let first = first.listen(64).unwrap();

            let second = TcpSocket::new_v4().unwrap();
            second.set_reuseport(true).unwrap();
            second.bind(addr).unwrap();
            let second = second.listen(64).unwrap();
            assert_eq!(second.local_addr().unwrap(), addr);

            let third = TcpSocket::new_v4().unwrap();
            let refused = third.bind(addr).unwrap_err();
            assert_eq!(refused.kind(), std::io::ErrorKind::AddrInUse);

            // Both listen: connections reach one or the other.
            let mut accepted = 0;
            for _ in 0..4 {
                let client = ringloop::net::TcpStream::connect(addr).await.unwrap();
                ringloop::select! {
                    Ok(_) = first.accept() => accepted += 1,
                    Ok(_) = second.accept() => accepted += 1,
                }
                drop(client);
            }
            assert_eq!(accepted, 4);
        })
    });
}

#[test]
fn a_backlog_beyond_somaxconn_is_capped_not_refused() {
    ringloop::block_on(async {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(loopback()).unwrap();
        let listener = socket.listen(1_000_000).unwrap();
        assert_ne!(listener.local_addr().unwrap().port(), 0);
        let listener =
            TcpListener::bind_with(loopback(), &ListenOptions::new().backlog(u32::MAX)).unwrap();
        assert_ne!(listener.local_addr().unwrap().port(), 0);
    });
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    watchdog("refused", LIMIT, || {
        ringloop::block_on(async {
            let closed = {
                let listener = std::net::TcpListener::bind(loopback()).unwrap();
                listener.local_addr().unwrap()
            };
            let err = TcpSocket::new_v4()
                .unwrap()
                .connect(closed)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
        })
    });
}

#[test]
fn an_ipv6_socket_listens_and_connects_on_loopback() {
    watchdog("v6", LIMIT, || {
        ringloop::block_on(async {
            let any: SocketAddr = "[::1]:0".parse().unwrap();
            let socket = TcpSocket::new_v6().unwrap();
            if let Err(e) = socket.bind(any) {
                // A machine without IPv6 loopback: nothing to test here.
                eprintln!("skipped: no ::1 ({e})");
                return;
            }
            let listener = socket.listen(16).unwrap();
            let addr = listener.local_addr().unwrap();
            let stream = TcpSocket::new_v6().unwrap().connect(addr).await.unwrap();
            let (_accepted, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, stream.local_addr().unwrap());
        })
    });
}
