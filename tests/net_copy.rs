//! Relaying: `io::copy` moves every byte until the reader ends, and `net::copy_bidirectional`
//! makes a proxy that carries both directions and passes a half-close on.

mod support;

use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use ringloop::net::{copy_bidirectional, TcpListener, TcpStream};
use support::echo::{assert_same_bytes, pattern, round_trip, serve, tcp_pair};
use support::watchdog;

const LIMIT: Duration = Duration::from_secs(60);

/// A proxy on a fresh port to `upstream`, serving `clients` connections; its task returns
/// what each `copy_bidirectional` returned.
fn proxy(
    upstream: SocketAddr,
    clients: usize,
) -> (SocketAddr, ringloop::JoinHandle<Vec<(u64, u64)>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let task = ringloop::spawn(async move {
        let mut relays = Vec::new();
        for _ in 0..clients {
            let (client, _) = listener.accept().await.unwrap();
            relays.push(ringloop::spawn(async move {
                let server = TcpStream::connect(upstream).await.unwrap();
                copy_bidirectional(&client, &server).await.unwrap()
            }));
        }
        let mut copied = Vec::new();
        for relay in relays {
            copied.push(relay.await.unwrap());
        }
        copied
    });
    (addr, task)
}

#[test]
fn copy_moves_every_byte_until_the_reader_ends() {
    watchdog("copy", LIMIT, || {
        ringloop::block_on(async {
            let (src_peer, src) = tcp_pair().await;
            let (dst, dst_peer) = tcp_pair().await;
            let data = pattern(7, 300 * 1024 + 17);
            let sent = data.clone();
            let writer = ringloop::spawn(async move {
                let (res, _) = src_peer.write_all(sent).await;
                res.unwrap();
                src_peer.shutdown(Shutdown::Write).unwrap();
            });
            let reader = ringloop::spawn(async move {
                let (res, got) = dst_peer
                    .read_exact(Vec::with_capacity(300 * 1024 + 17))
                    .await;
                res.unwrap();
                got
            });
            let copied = ringloop::io::copy(&src, &dst).await.unwrap();
            assert_eq!(copied, data.len() as u64);
            writer.await.unwrap();
            assert_same_bytes(&reader.await.unwrap(), &data);
        })
    });
}

#[test]
fn a_proxy_relays_both_ways_for_many_clients_and_reports_the_bytes() {
    watchdog("proxy", LIMIT, || {
        ringloop::block_on(async {
            let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
            let upstream_addr = upstream.local_addr().unwrap();
            let _server = serve(upstream, None);
            let sizes: Vec<usize> = (0..20).map(|i| 1 + i * 37_001).collect();
            let (proxy_addr, proxy) = proxy(upstream_addr, sizes.len());
            let clients: Vec<_> = sizes
                .iter()
                .enumerate()
                .map(|(i, &len)| {
                    ringloop::spawn(async move {
                        let data = pattern(i as u64, len);
                        // Sends, half-closes, reads everything back.
                        let back = round_trip(proxy_addr, data.clone()).await;
                        assert_same_bytes(&back, &data);
                    })
                })
                .collect();
            for c in clients {
                c.await.unwrap();
            }
            let mut copied = proxy.await.unwrap();
            copied.sort_unstable();
            let mut want: Vec<(u64, u64)> = sizes.iter().map(|&n| (n as u64, n as u64)).collect();
            want.sort_unstable();
            assert_eq!(copied, want, "each relay counts each direction's bytes");
        })
    });
}

#[test]
fn a_half_close_travels_through_the_proxy_and_the_other_direction_goes_on() {
    watchdog("proxy half-close", LIMIT, || {
        ringloop::block_on(async {
            // An upstream that waits for the client's end of stream, then answers.
            let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
            let upstream_addr = upstream.local_addr().unwrap();
            let server = ringloop::spawn(async move {
                let (stream, _) = upstream.accept().await.unwrap();
                let mut got = Vec::new();
                loop {
                    let (res, buf) = stream.read(Vec::with_capacity(4096)).await;
                    match res.unwrap() {
                        0 => break,
                        _ => got.extend_from_slice(&buf),
                    }
                }
                let (res, _) = stream
                    .write_all(format!("got {} bytes", got.len()).into_bytes())
                    .await;
                res.unwrap();
                got.len()
            });
            let (proxy_addr, proxy) = proxy(upstream_addr, 1);
            let client = TcpStream::connect(proxy_addr).await.unwrap();
            let (res, _) = client.write_all(vec![1u8; 5000]).await;
            res.unwrap();
            client.shutdown(Shutdown::Write).unwrap();
            let mut answer = Vec::new();
            loop {
                let (res, buf) = client.read(Vec::with_capacity(64)).await;
                match res.unwrap() {
                    0 => break,
                    _ => answer.extend_from_slice(&buf),
                }
            }
            assert_eq!(answer, b"got 5000 bytes");
            assert_eq!(server.await.unwrap(), 5000);
            assert_eq!(proxy.await.unwrap(), [(5000, 14)]);
        })
    });
}

#[test]
fn a_reset_on_one_side_ends_the_relay_with_the_error() {
    watchdog("proxy reset", LIMIT, || {
        ringloop::block_on(async {
            let (client, proxy_client_side) = tcp_pair().await;
            let (proxy_server_side, server) = tcp_pair().await;
            let relay = ringloop::spawn(async move {
                copy_bidirectional(&proxy_client_side, &proxy_server_side).await
            });
            let (res, _) = client.write_all(b"hello".to_vec()).await;
            res.unwrap();
            let (res, got) = server.read_exact(Vec::with_capacity(5)).await;
            res.unwrap();
            assert_eq!(got, b"hello");
            // The server resets its connection (a zero linger makes close send RST).
            server.set_linger(Some(Duration::ZERO)).unwrap();
            server.close().await.unwrap();
            let err = relay
                .await
                .unwrap()
                .expect_err("a reset is an error, not an end");
            assert!(
                matches!(
                    err.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ),
                "{err}"
            );
            drop(client);
        })
    });
}
