//! An echo server over ringloop's TCP, and clients that check every byte it sends back.

use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use ringloop::net::{BufferPool, TcpListener, TcpStream};
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
