//! An echo server over ringloop's TCP, and clients that check every byte it sends back.

use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use ringloop::net::{BufferPool, Incoming, TcpListener, TcpStream};
use ringloop::time::sleep;
use ringloop::IoBufExt;

/// An echo server task on `listener`: pooled receive when `pool` is given, plain reads otherwise.
pub fn serve(listener: TcpListener, pool: Option<BufferPool>) -> ringloop::JoinHandle<()> {
    ringloop::spawn(async move {
        let mut incoming = listener.incoming();
        while let Ok(stream) = incoming.next().await {
            let pool = pool.clone();
            drop(ringloop::spawn(async move {
                match pool {
                    Some(pool) => {
                        let mut rx = stream.recv_pooled(&pool);
                        while let Some(Ok(chunk)) = rx.next().await {
                            if stream.write_all(chunk).await.0.is_err() {
                                return;
                            }
                        }
                    }
                    None => {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let (res, b) = stream.read(buf).await;
                            let n = match res {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            let (res, slice) = stream.write_all(b.slice(..n)).await;
                            buf = slice.into_inner();
                            if res.is_err() {
                                return;
                            }
                        }
                    }
                }
                // Peer closed: close our side too.
                let _ = stream.shutdown(Shutdown::Write);
            }));
        }
    })
}

/// A connected TCP pair on loopback: (client, server side).
pub async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = ringloop::join!(TcpStream::connect(addr), listener.accept());
    (client.unwrap(), accepted.unwrap().0)
}

/// Every byte of `want` arrived, in order, and nothing else.
pub fn assert_same_bytes(got: &[u8], want: &[u8]) {
    assert!(
        got == want,
        "bytes lost or reordered: got {} of {}",
        got.len(),
        want.len()
    );
}

/// `len` pseudo-random bytes from `seed`.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.u8(..)).collect()
}

/// Sends `data` and reads it back concurrently (so large messages cannot deadlock on full
/// socket buffers), returning what came back.
pub async fn round_trip(addr: SocketAddr, data: Vec<u8>) -> Vec<u8> {
    let (rd, wr) = TcpStream::connect(addr)
        .await
        .expect("connect")
        .into_split();
    let len = data.len();
    let writer = ringloop::spawn(async move {
        let (res, _) = wr.write_all(data).await;
        res.expect("write_all");
        wr.shutdown().expect("shutdown write");
    });
    let (res, back) = rd.read_exact(Vec::with_capacity(len)).await;
    res.expect("read_exact");
    writer.await.unwrap();
    back
}

/// `clients` concurrent clients of the echo server at `addr`, each sending 1..=`max_size`
/// bytes of its own pattern: each gets exactly its bytes back.
pub async fn check_echo_clients(addr: SocketAddr, seed: u64, clients: u64, max_size: usize) {
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let size = fastrand::Rng::with_seed(seed ^ i).usize(1..=max_size);
            ringloop::spawn(async move {
                let data = pattern(seed ^ i, size);
                assert!(
                    round_trip(addr, data.clone()).await == data,
                    "client {i}: {size} bytes came back different (seed {seed})"
                );
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

/// Every buffer of `pool` comes back within 10 s (receives being cancelled give theirs back
/// when the kernel answers).
pub async fn assert_pool_refills(pool: &BufferPool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.available() < pool.count() && Instant::now() < deadline {
        sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(pool.available(), pool.count(), "pooled buffers leaked");
}

/// A pooled echo server (receiving into `pool`) and `clients` clients of up to `max_size`
/// bytes: each gets exactly its bytes back, and every buffer returns to the pool.
pub async fn check_pooled_echo(pool: BufferPool, seed: u64, clients: u64, max_size: usize) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = serve(listener, Some(pool.clone()));
    check_echo_clients(addr, seed, clients, max_size).await;
    server.abort();
    // Every buffer comes back once the connections are gone.
    assert_pool_refills(&pool).await;
}

/// A peer sends `messages` numbered lines while the receiver, through `pool` (4 buffers),
/// holds every buffer for 50 ms at a time, so the pool runs dry again and again: every byte
/// arrives in order and every buffer returns. Returns how many times the pool was held empty.
pub async fn hold_the_pool_while_the_peer_sends(pool: &BufferPool, messages: u32) -> u32 {
    assert_eq!(pool.count(), 4);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sender = ringloop::spawn(async move {
        let stream = TcpStream::connect(addr).await.unwrap();
        for i in 0..messages {
            let line = format!("message {i:04}\n").into_bytes();
            stream.write_all(line).await.0.unwrap();
        }
        stream.shutdown(Shutdown::Write).unwrap();
    });
    let (stream, _) = listener.accept().await.unwrap();
    let mut rx = stream.recv_pooled(pool);
    let (mut held, mut got, mut starvations) = (Vec::new(), Vec::new(), 0);
    while let Some(chunk) = rx.next().await {
        let chunk = chunk.unwrap();
        got.extend_from_slice(&chunk);
        held.push(chunk);
        if held.len() == 4 {
            // The app holds every buffer: the kernel runs out (ENOBUFS) meanwhile.
            starvations += 1;
            sleep(Duration::from_millis(50)).await;
            held.clear();
        }
    }
    sender.await.unwrap();
    let want: Vec<u8> = (0..messages)
        .flat_map(|i| format!("message {i:04}\n").into_bytes())
        .collect();
    assert_same_bytes(&got, &want);
    drop((held, rx));
    assert_pool_refills(pool).await;
    starvations
}

/// A plain blocking client of `addr` that sends its number `i` (4 bytes, little-endian).
pub fn numbered_client(addr: SocketAddr, i: usize) -> std::net::TcpStream {
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(&mut client, &(i as u32).to_le_bytes()).unwrap();
    client
}

/// Accepts `count` connections, each within 10 s.
pub async fn accept_count(incoming: &mut Incoming<'_>, count: usize) -> Vec<TcpStream> {
    let mut accepted = Vec::with_capacity(count);
    while accepted.len() < count {
        let next = ringloop::time::timeout(Duration::from_secs(10), incoming.next()).await;
        let next = next.unwrap_or_else(|_| panic!("only {} accepted", accepted.len()));
        accepted.push(next.unwrap());
    }
    accepted
}

/// The accepted connections are the [`numbered_client`]s 0..n, each exactly once.
pub async fn assert_numbered_clients(accepted: &[TcpStream]) {
    let mut ids = Vec::with_capacity(accepted.len());
    for stream in accepted {
        let (res, buf) = stream.read_exact(Vec::with_capacity(4)).await;
        res.unwrap();
        ids.push(u32::from_le_bytes(buf[..4].try_into().unwrap()));
    }
    ids.sort_unstable();
    let want: Vec<u32> = (0..accepted.len() as u32).collect();
    assert_eq!(ids, want, "a connection was lost or accepted twice");
}
