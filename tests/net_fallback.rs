//! The fallbacks of HARDENING row 15: with multishot requests off, provided-buffer rings off,
//! or both (the Builder's switches; what a kernel older than 5.19 gets on its own), listeners
//! and pooled receives keep their whole contract: every connection accepted, every byte
//! delivered in order, every buffer back in its pool. CI also runs every suite with
//! `RINGLOOP_FALLBACK=all`.

mod support;

use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ringloop::net::{BufferPool, TcpListener, TcpStream};
use ringloop::time::{sleep, timeout};
use support::echo::{
    accept_count, assert_numbered_clients, assert_pool_refills, check_pooled_echo,
    hold_the_pool_while_the_peer_sends, numbered_client,
};
use support::watchdog;

const LIMIT: Duration = Duration::from_secs(120);

/// (name, multishot, buffer rings) for each fallback.
const FALLBACKS: [(&str, bool, bool); 3] = [
    ("no multishot", false, true),
    ("no buffer rings", true, false),
    ("neither", false, false),
];

fn runtime(multishot: bool, buf_rings: bool) -> ringloop::Runtime {
    ringloop::Builder::new()
        .multishot(multishot)
        .buf_rings(buf_rings)
        .build()
        .unwrap()
}

/// Polls once with a waker that does nothing: arms what the poll arms.
fn poll_once<T>(poll: impl FnOnce(&mut Context<'_>) -> Poll<T>) -> Poll<T> {
    poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn stats_report_the_path_each_switch_chose() {
    for (name, multishot, buf_rings) in FALLBACKS.into_iter().chain([("both", true, true)]) {
        let rt = runtime(multishot, buf_rings);
        rt.block_on(async {
            // A pool decides for itself whether the kernel takes its ring.
            let _pool = BufferPool::new(4, 64).unwrap();
        });
        let stats = rt.stats();
        // Linux 6.x (the suite's floor) has both features: each is on unless switched off.
        assert_eq!(
            (stats.multishot, stats.buf_rings),
            (multishot, buf_rings),
            "{name}"
        );
    }
}

#[test]
fn pooled_echo_returns_every_byte_on_every_fallback() {
    let seed = fastrand::u64(..);
    println!("seed {seed}");
    for (name, multishot, buf_rings) in FALLBACKS {
        watchdog(name, LIMIT, || {
            runtime(multishot, buf_rings).block_on(async {
                // Fewer buffers than clients: receives wait for buffers all the time.
                let pool = BufferPool::new(8, 4096).unwrap();
                check_pooled_echo(pool, seed, 40, 128 * 1024).await;
            });
        });
    }
}

#[test]
fn a_tiny_pool_held_by_a_slow_consumer_loses_no_bytes_on_every_fallback() {
    // HARDENING row 8 on each fallback: the app holds all four buffers for 50 ms at a time.
    for (name, multishot, buf_rings) in FALLBACKS {
        watchdog(name, LIMIT, || {
            runtime(multishot, buf_rings).block_on(async {
                let pool = BufferPool::new(4, 64).unwrap();
                let starvations = hold_the_pool_while_the_peer_sends(&pool, 300).await;
                assert!(starvations > 0, "{name}: the app never starved the pool");
            });
        });
    }
}

#[test]
fn without_multishot_each_connection_is_accepted_by_one_request_and_none_is_lost() {
    const CLIENTS: usize = 100;
    watchdog("single-shot accept", LIMIT, || {
        let rt = runtime(false, true);
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let mut incoming = listener.incoming();
            // Clients on a plain thread: the only SQEs in this runtime are the accepts.
            let clients = std::thread::spawn(move || {
                (0..CLIENTS)
                    .map(|i| numbered_client(addr, i))
                    .collect::<Vec<_>>()
            });
            let before = rt.stats().sqes_submitted;
            let accepted = accept_count(&mut incoming, CLIENTS).await;
            let accept_sqes = rt.stats().sqes_submitted - before;
            assert_numbered_clients(&accepted).await;
            // One request per connection (the last one still armed), re-armed only when asked
            // for the next connection: no more, or the listener spins.
            assert!(
                (CLIENTS as u64..=CLIENTS as u64 + 2).contains(&accept_sqes),
                "{accept_sqes} accept SQEs for {CLIENTS} connections"
            );
            drop(clients.join().unwrap());
        });
    });
}

#[test]
fn without_buffer_rings_each_armed_receive_holds_one_buffer_until_its_completion() {
    watchdog("lent buffers", LIMIT, || {
        let rt = runtime(true, false);
        rt.block_on(async {
            let pool = BufferPool::new(2, 64).unwrap();
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let mut clients = Vec::new();
            let mut servers = Vec::new();
            for _ in 0..3 {
                clients.push(TcpStream::connect(addr).await.unwrap());
                servers.push(listener.accept().await.unwrap().0);
            }
            let in_flight = || rt.stats().ops_in_flight;
            let baseline = in_flight();
            let mut a = servers[0].recv_pooled(&pool);
            let mut b = servers[1].recv_pooled(&pool);
            assert_eq!(pool.available(), 0, "two idle receives hold both buffers");
            assert_eq!(in_flight(), baseline + 2);
            // A third receive finds no buffer: it waits without arming anything.
            let mut c = servers[2].recv_pooled(&pool);
            assert!(poll_once(|cx| c.poll_next(cx)).is_pending());
            assert_eq!(in_flight(), baseline + 2, "armed without a buffer");

            clients[0].write_all(b"to a".to_vec()).await.0.unwrap();
            let chunk = a.next().await.unwrap().unwrap();
            assert_eq!(&chunk[..], b"to a");
            // `a` cannot re-arm while its chunk holds the buffer; the buffer is not free.
            assert!(poll_once(|cx| a.poll_next(cx)).is_pending());
            assert_eq!(pool.available(), 0);
            drop(chunk);
            // The buffer came back: whichever waiting receive arms first gets it, and the
            // other one keeps waiting; no byte goes missing either way.
            clients[2].write_all(b"to c".to_vec()).await.0.unwrap();
            let chunk = timeout(Duration::from_secs(10), c.next())
                .await
                .expect("a receive waiting for a buffer was never armed")
                .unwrap()
                .unwrap();
            assert_eq!(&chunk[..], b"to c");
            drop(chunk);
            clients[1].write_all(b"to b".to_vec()).await.0.unwrap();
            assert_eq!(&b.next().await.unwrap().unwrap()[..], b"to b");

            // Dropping armed receives cancels them; each lent buffer returns with its CQE.
            drop((a, b, c));
            assert_pool_refills(&pool).await;
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while in_flight() > baseline && std::time::Instant::now() < deadline {
                sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(
                in_flight(),
                baseline,
                "a cancelled receive stayed in flight"
            );
        });
    });
}
