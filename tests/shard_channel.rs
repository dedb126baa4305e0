//! The cross-shard channel: order per sender, no loss, backpressure, close.

use std::time::Duration;

use ringloop::shard::{self, TrySendError};

#[test]
fn a_million_messages_from_two_shards_arrive_in_order_per_sender_and_none_lost() {
    const PER_SENDER: u64 = 500_000;
    let (tx, rx) = shard::channel::<(u8, u64)>(1024);
    let rx = std::sync::Mutex::new(Some(rx));
    // One sender per producing shard; the original is dropped so the receiver sees the end
    // once both producers are done.
    let senders = std::sync::Mutex::new(vec![tx.clone(), tx]);
    let out = shard::Builder::new()
        .shards(3)
        .pin_cores(false)
        .build()
        .unwrap()
        .run(move |s| {
            let rx = if s.id() == 0 {
                rx.lock().unwrap().take()
            } else {
                None
            };
            let tx = if s.id() != 0 {
                senders.lock().unwrap().pop()
            } else {
                None
            };
            async move {
                match (rx, tx) {
                    (Some(mut rx), _) => {
                        let mut next = [0u64; 2];
                        let mut got = 0u64;
                        while let Some((sender, n)) = rx.recv().await {
                            let expected = &mut next[sender as usize - 1];
                            assert_eq!(n, *expected, "sender {sender} out of order");
                            *expected += 1;
                            got += 1;
                        }
                        got
                    }
                    (None, Some(tx)) => {
                        for n in 0..PER_SENDER {
                            tx.send((s.id() as u8, n)).await.unwrap();
                        }
                        0
                    }
                    (None, None) => 0,
                }
            }
        });
    assert_eq!(*out[0].as_ref().unwrap(), 2 * PER_SENDER);
}

#[test]
fn a_full_channel_says_full_and_a_closed_one_gives_the_value_back() {
    ringloop::block_on(async {
        let (tx, mut rx) = shard::channel::<u32>(2);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        // A blocked send completes once the receiver makes room.
        let blocked = {
            let tx = tx.clone();
            ringloop::spawn(async move { tx.send(3).await })
        };
        ringloop::time::sleep(Duration::from_millis(2)).await;
        assert!(
            !blocked.is_finished(),
            "send must wait while the channel is full"
        );
        assert_eq!(rx.recv().await, Some(1));
        blocked.await.unwrap().unwrap();
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, Some(3));
        drop(rx);
        assert!(matches!(tx.try_send(4), Err(TrySendError::Closed(4))));
        assert_eq!(tx.send(5).await.unwrap_err().0, 5);
    });
}

#[test]
fn the_receiver_ends_when_every_sender_is_gone() {
    ringloop::block_on(async {
        let (tx, mut rx) = shard::channel::<u8>(4);
        let tx2 = tx.clone();
        tx.send(1).await.unwrap();
        drop(tx);
        tx2.send(2).await.unwrap();
        drop(tx2);
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, None);
    });
}

#[test]
fn dropped_waiting_senders_do_not_strand_a_live_one() {
    ringloop::block_on(async {
        let (tx, mut rx) = shard::channel::<u8>(1);
        tx.send(0).await.unwrap();
        // A sender that starts waiting and is then dropped.
        let tx_a = tx.clone();
        let stale = ringloop::spawn(async move { tx_a.send(1).await });
        ringloop::task::yield_now().await;
        stale.abort();
        let _ = stale.await;
        // A live sender waiting behind it.
        let tx_b = tx.clone();
        let live = ringloop::spawn(async move { tx_b.send(2).await });
        ringloop::task::yield_now().await;
        assert_eq!(rx.recv().await, Some(0));
        let done = ringloop::time::timeout(Duration::from_secs(10), live).await;
        assert!(done.is_ok(), "the live sender was never woken");
        assert_eq!(rx.recv().await, Some(2));
    });
}

#[test]
fn values_in_the_receivers_batch_count_against_capacity_until_consumed() {
    ringloop::block_on(async {
        // Capacity 8: the receiver takes all 8 in one batch and gives room back every 2.
        let (tx, mut rx) = shard::channel::<u32>(8);
        for i in 0..8 {
            tx.try_send(i).unwrap();
        }
        assert_eq!(rx.recv().await, Some(0));
        assert!(
            matches!(tx.try_send(8), Err(TrySendError::Full(8))),
            "one value consumed but not yet reported: still full"
        );
        assert_eq!(rx.recv().await, Some(1));
        tx.try_send(8).unwrap();
        tx.try_send(9).unwrap();
        assert!(matches!(tx.try_send(10), Err(TrySendError::Full(10))));
        assert_eq!(rx.len(), 8);
        for want in 2..10 {
            assert_eq!(rx.recv().await, Some(want));
        }
        assert!(rx.is_empty());
    });
}
