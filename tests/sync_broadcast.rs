//! broadcast: every receiver sees every value; `Lagged(n)` counts exactly the values missed.

mod support;

use std::future::Future;
use std::task::{Context, Waker};

use proptest::prelude::*;
use ringloop::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use ringloop::time::timeout;
use support::{run, LIMIT};

proptest! {
    /// For any capacity and any interleaving of sends and receives, a receiver gets exactly
    /// the values sent after it subscribed, minus the ones reported in `Lagged(n)`, in order.
    #[test]
    fn lagged_counts_exactly_the_values_missed(
        capacity in 1usize..8,
        ops in proptest::collection::vec(any::<bool>(), 0..200),
    ) {
        let (tx, mut rx) = broadcast::channel::<u64>(capacity);
        let mut sent = 0u64;
        let mut seen = 0u64; // values received + values reported missed
        for send in ops {
            if send {
                tx.send(sent).unwrap();
                sent += 1;
            } else {
                match rx.try_recv() {
                    Ok(v) => {
                        prop_assert_eq!(v, seen);
                        seen += 1;
                    }
                    Err(TryRecvError::Lagged(n)) => {
                        prop_assert!(n > 0);
                        // Only values beyond the ring's reach are reported missed.
                        prop_assert_eq!(seen + n, sent - capacity as u64);
                        seen += n;
                    }
                    Err(TryRecvError::Empty) => prop_assert_eq!(seen, sent),
                    Err(TryRecvError::Closed) => prop_assert!(false, "closed with a sender"),
                }
            }
        }
        drop(tx);
        loop {
            match rx.try_recv() {
                Ok(v) => { prop_assert_eq!(v, seen); seen += 1; }
                Err(TryRecvError::Lagged(n)) => seen += n,
                Err(TryRecvError::Closed) => break,
                Err(TryRecvError::Empty) => prop_assert!(false, "empty without a sender"),
            }
        }
        prop_assert_eq!(seen, sent);
    }
}

#[test]
fn a_slow_receiver_lags_while_a_fast_one_sees_everything() {
    run(async {
        let (tx, mut fast) = broadcast::channel(4);
        let mut slow = tx.subscribe();
        for i in 0..10u32 {
            assert_eq!(tx.send(i).unwrap(), 2);
            assert_eq!(fast.recv().await, Ok(i));
        }
        assert_eq!(slow.recv().await, Err(RecvError::Lagged(6)));
        for i in 6..10 {
            assert_eq!(slow.recv().await, Ok(i));
        }
        assert_eq!(slow.try_recv(), Err(TryRecvError::Empty));
    });
}

#[test]
fn waiting_receivers_are_woken_by_a_send_and_see_closed_when_senders_go() {
    run(async {
        let (tx, rx) = broadcast::channel::<u32>(8);
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let mut rx = rx.resubscribe();
            tasks.push(ringloop::spawn(async move {
                let mut got = Vec::new();
                loop {
                    match rx.recv().await {
                        Ok(v) => got.push(v),
                        Err(RecvError::Closed) => return got,
                        Err(RecvError::Lagged(n)) => panic!("lagged {n}"),
                    }
                }
            }));
        }
        drop(rx);
        ringloop::task::yield_now().await;
        for i in 0..3 {
            assert_eq!(tx.send(i).unwrap(), 50);
            ringloop::task::yield_now().await;
        }
        drop(tx);
        for task in tasks {
            assert_eq!(timeout(LIMIT, task).await.unwrap().unwrap(), vec![0, 1, 2]);
        }
    });
}

#[test]
fn send_without_receivers_hands_the_value_back() {
    let (tx, rx) = broadcast::channel::<u32>(2);
    drop(rx);
    assert_eq!(tx.send(9).unwrap_err().0, 9);
    let _rx = tx.subscribe();
    assert_eq!(tx.send(9).unwrap(), 1);
}

#[test]
fn a_dropped_pending_recv_leaves_no_waiter_and_loses_nothing() {
    let (tx, mut rx) = broadcast::channel::<u32>(2);
    {
        let mut fut = Box::pin(rx.recv());
        assert!(fut
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending());
    }
    tx.send(1).unwrap();
    assert_eq!(rx.try_recv(), Ok(1));
}
