//! Socket options and peeking: `peek` (TCP, Unix, connected UDP) leaves the bytes for the next
//! read, TTL and
//! `SO_BROADCAST` read back what was set, and `SO_LINGER` of zero resets the connection on
//! close while a non-zero linger, which would block the runtime's thread, is refused.

mod support;

use std::time::Duration;

use ringloop::net::{TcpListener, UdpSocket, UnixStream};
use support::echo::tcp_pair;
use support::watchdog;

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn peek_returns_the_bytes_and_leaves_them_for_the_next_read() {
    watchdog("peek", LIMIT, || {
        ringloop::block_on(async {
            let (client, server) = tcp_pair().await;
            let (res, _) = client.write_all(b"hello world".to_vec()).await;
            res.unwrap();
            // A peek may see fewer bytes than were sent (they arrive in segments): wait for all.
            let mut seen = 0;
            for _ in 0..1000 {
                let (res, buf) = server.peek(vec![0u8; 64]).await;
                seen = res.unwrap();
                assert_eq!(&buf[..seen], &b"hello world"[..seen]);
                if seen == 11 {
                    break;
                }
                ringloop::time::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(seen, 11, "the whole message became visible to peek");
            let (res, again) = server.peek(vec![0u8; 5]).await;
            assert_eq!(res.unwrap(), 5);
            assert_eq!(again, b"hello", "a second peek sees the same bytes");
            let (res, read) = server.read_exact(Vec::with_capacity(11)).await;
            res.unwrap();
            assert_eq!(read, b"hello world", "the read gets what peek left");

            // The read half peeks too.
            let (rx, _tx) = server.into_split();
            let (res, _) = client.write_all(b"more".to_vec()).await;
            res.unwrap();
            let (res, buf) = rx.peek(vec![0u8; 4]).await;
            assert!(res.unwrap() >= 1);
            assert_eq!(buf[0], b'm');
            let (res, buf) = rx.read_exact(Vec::with_capacity(4)).await;
            res.unwrap();
            assert_eq!(buf, b"more");
        })
    });
}

#[test]
fn unix_and_udp_peeks_leave_the_data_queued() {
    watchdog("peek unix udp", LIMIT, || {
        ringloop::block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let (res, _) = a.write_all(b"unix".to_vec()).await;
            res.unwrap();
            let (res, peeked) = b.peek(vec![0u8; 4]).await;
            assert!(res.unwrap() >= 1);
            assert_eq!(peeked[0], b'u');
            let (res, read) = b.read_exact(Vec::with_capacity(4)).await;
            res.unwrap();
            assert_eq!(read, b"unix");

            let x = UdpSocket::bind("127.0.0.1:0").unwrap();
            let y = UdpSocket::bind("127.0.0.1:0").unwrap();
            y.connect(x.local_addr().unwrap()).unwrap();
            x.connect(y.local_addr().unwrap()).unwrap();
            let (res, _) = x.send(b"first".to_vec()).await;
            res.unwrap();
            let (res, _) = x.send(b"second".to_vec()).await;
            res.unwrap();
            let (res, peeked) = y.peek(vec![0u8; 3]).await;
            assert_eq!(
                res.unwrap(),
                3,
                "a peek into a short buffer truncates the copy"
            );
            assert_eq!(peeked, b"fir");
            let (res, got) = y.recv(Vec::with_capacity(16)).await;
            assert_eq!(res.unwrap(), 5);
            assert_eq!(
                got, b"first",
                "the peeked datagram is still the next one, whole"
            );
            let (res, got) = y.recv(Vec::with_capacity(16)).await;
            assert_eq!(res.unwrap(), 6);
            assert_eq!(got, b"second");
        })
    });
}

#[test]
fn ttl_reads_back_what_was_set_on_streams_listeners_and_datagrams() {
    watchdog("ttl", LIMIT, || {
        ringloop::block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_ttl(17).unwrap();
            assert_eq!(listener.ttl().unwrap(), 17);
            let (client, server) = tcp_pair().await;
            client.set_ttl(33).unwrap();
            assert_eq!(client.ttl().unwrap(), 33);
            assert_ne!(server.ttl().unwrap(), 0);
            assert!(
                client.set_ttl(u32::MAX).is_err(),
                "an out-of-range TTL is an error"
            );

            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            udp.set_ttl(5).unwrap();
            assert_eq!(udp.ttl().unwrap(), 5);
            assert!(!udp.broadcast().unwrap());
            udp.set_broadcast(true).unwrap();
            assert!(udp.broadcast().unwrap());
        })
    });
}

#[test]
fn a_zero_linger_resets_the_connection_on_close_and_a_longer_one_is_refused() {
    watchdog("linger", LIMIT, || {
        ringloop::block_on(async {
            let (client, server) = tcp_pair().await;
            assert_eq!(client.linger().unwrap(), None);
            let refused = client.set_linger(Some(Duration::from_secs(5))).unwrap_err();
            assert_eq!(refused.kind(), std::io::ErrorKind::InvalidInput);
            assert!(refused.to_string().contains("block"), "{refused}");
            assert_eq!(
                client.linger().unwrap(),
                None,
                "a refused linger changes nothing"
            );

            client.set_linger(Some(Duration::ZERO)).unwrap();
            assert_eq!(client.linger().unwrap(), Some(Duration::ZERO));
            client.close().await.unwrap();
            let (res, _) = server.read(vec![0u8; 16]).await;
            let err = res.expect_err("a zero-linger close resets, it does not end the stream");
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);

            let (client, _server) = tcp_pair().await;
            client.set_linger(Some(Duration::ZERO)).unwrap();
            client.set_linger(None).unwrap();
            assert_eq!(client.linger().unwrap(), None);
        })
    });
}
