//! The event bus: topics, delivered counts, exact `Lagged(n)`, bounded memory, closing, and
//! delivery across shards (including a shard too busy to keep up).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringloop::event::{EventBus, RecvError, SharedBus, TryRecvError};
use ringloop::time::timeout;
use support::{run, LIMIT};

#[test]
fn publish_counts_live_subscribers_of_that_topic_only() {
    run(async {
        let bus = EventBus::new(8);
        let mut a = bus.subscribe("orders");
        let b = bus.subscribe("orders");
        let mut c = bus.subscribe("couriers");
        assert_eq!(bus.subscriber_count("orders"), 2);
        assert_eq!(bus.publish("orders", 1), 2);
        drop(b);
        assert_eq!(bus.subscriber_count("orders"), 1);
        assert_eq!(bus.publish("orders", 2), 1);
        assert_eq!(bus.publish("nobody", 3), 0);
        assert_eq!(a.recv().await, Ok(1));
        assert_eq!(a.recv().await, Ok(2));
        assert_eq!(c.try_recv(), Err(TryRecvError::Empty));
        drop(a);
        assert_eq!(bus.publish("orders", 4), 0);
        assert_eq!(bus.subscriber_count("orders"), 0);
    });
}

#[test]
fn lagged_counts_exactly_the_events_missed() {
    run(async {
        const CAPACITY: usize = 16;
        let bus = EventBus::new(CAPACITY);
        let mut slow = bus.subscribe("t");
        let mut fast = bus.subscribe("t");
        for round in 0..5u64 {
            let missed = 3 + round * 7;
            let total = CAPACITY as u64 + missed;
            let base = round * 1_000;
            for i in 0..total {
                assert_eq!(bus.publish("t", base + i), 2);
                assert_eq!(fast.recv().await, Ok(base + i));
            }
            assert_eq!(slow.recv().await, Err(RecvError::Lagged(missed)));
            for i in missed..total {
                assert_eq!(slow.recv().await, Ok(base + i));
            }
            assert_eq!(slow.try_recv(), Err(TryRecvError::Empty));
        }
    });
}

#[test]
fn a_subscriber_that_never_reads_does_not_grow_memory_or_stall_the_publisher() {
    run(async {
        let bus = EventBus::new(4);
        let mut idle = bus.subscribe("t");
        for i in 0..1_000_000u64 {
            assert_eq!(bus.publish("t", i), 1);
        }
        // Only the last 4 are held: everything else is reported missed.
        assert_eq!(idle.try_recv(), Err(TryRecvError::Lagged(1_000_000 - 4)));
        for i in 1_000_000 - 4..1_000_000 {
            assert_eq!(idle.try_recv(), Ok(i));
        }
    });
}

#[test]
fn subscribers_see_closed_after_the_last_event_once_the_bus_is_dropped() {
    run(async {
        let bus = EventBus::new(4);
        let mut sub = bus.subscribe("t");
        let waiting = ringloop::spawn({
            let mut sub = bus.subscribe("t");
            async move { (sub.recv().await, sub.recv().await) }
        });
        ringloop::task::yield_now().await;
        bus.publish("t", "last");
        drop(bus);
        assert_eq!(sub.recv().await, Ok("last"));
        assert_eq!(sub.recv().await, Err(RecvError::Closed));
        let got = timeout(LIMIT, waiting).await.unwrap().unwrap();
        assert_eq!(got, (Ok("last"), Err(RecvError::Closed)));
    });
}

#[test]
fn shared_bus_on_one_runtime_delivers_then_closes() {
    run(async {
        let bus = SharedBus::new(1, 8);
        let mut sub = bus.subscribe("t");
        assert_eq!(bus.subscriber_count("t"), 1);
        assert_eq!(bus.publish("t", 1), 1);
        assert_eq!(bus.publish("other", 2), 0);
        drop(bus);
        assert_eq!(timeout(LIMIT, sub.recv()).await.unwrap(), Ok(1));
        assert_eq!(
            timeout(LIMIT, sub.recv()).await.unwrap(),
            Err(RecvError::Closed)
        );
    });
}

#[test]
#[should_panic(expected = "not inside a ringloop runtime")]
fn shared_bus_subscribe_outside_a_runtime_panics_with_a_clear_message() {
    let bus = SharedBus::<u32>::new(1, 8);
    let _ = bus.subscribe("t");
}

#[test]
fn event_bus_across_two_shards() {
    const EVENTS: u64 = 10_000;
    // Room for everything both shards publish: this test is about delivery, not loss.
    let bus = SharedBus::<(usize, u64)>::new(2, 2 * EVENTS as usize);
    let results = ringloop::shard::Builder::new()
        .shards(2)
        .pin_cores(false)
        .build()
        .unwrap()
        .run(move |shard| {
            let bus = bus.clone();
            async move {
                // Every shard subscribes, waits for the other, then publishes: each shard
                // must receive both shards' events, each sender's in order.
                let mut sub = bus.subscribe("t");
                timeout(LIMIT, async {
                    while bus.subscriber_count("t") < 2 {
                        ringloop::time::sleep(Duration::from_millis(1)).await;
                    }
                })
                .await
                .expect("both shards subscribe");
                let publisher = ringloop::spawn({
                    let bus = bus.clone();
                    async move {
                        for i in 0..EVENTS {
                            assert_eq!(bus.publish("t", (shard.id(), i)), 2);
                            if i % 64 == 0 {
                                ringloop::task::yield_now().await;
                            }
                        }
                    }
                });
                let mut next = [0u64; 2];
                timeout(LIMIT, async {
                    while next != [EVENTS; 2] {
                        let (from, i) = sub.recv().await.expect("no lag, no close");
                        assert_eq!(i, next[from], "events from shard {from} out of order");
                        next[from] += 1;
                    }
                })
                .await
                .expect("every event from both shards arrives");
                publisher.await.unwrap();
                next
            }
        });
    for result in results {
        assert_eq!(result.unwrap(), [EVENTS; 2]);
    }
}

#[test]
fn a_shard_too_busy_to_drain_loses_events_as_lagged_without_blocking_the_publisher() {
    const CAPACITY: u64 = 8;
    const LOST: u64 = 5;
    let bus = SharedBus::<u64>::new(2, CAPACITY as usize);
    let (subscribed_tx, subscribed_rx) = std::sync::mpsc::channel::<()>();
    let (published_tx, published_rx) = std::sync::mpsc::channel::<()>();
    let subscribed_rx = Arc::new(Mutex::new(subscribed_rx));
    let published_rx = Arc::new(Mutex::new(published_rx));
    let results = ringloop::shard::Builder::new()
        .shards(2)
        .pin_cores(false)
        .build()
        .unwrap()
        .run(move |shard| {
            let bus = bus.clone();
            let (subscribed_tx, subscribed_rx) = (subscribed_tx.clone(), subscribed_rx.clone());
            let (published_tx, published_rx) = (published_tx.clone(), published_rx.clone());
            async move {
                let mut counts = Vec::new();
                let mut got = Vec::new();
                if shard.id() == 1 {
                    let mut sub = bus.subscribe("t");
                    subscribed_tx.send(()).unwrap();
                    // Busy: this thread does not return to its runtime (so its forwarder
                    // cannot run) until shard 0 has published everything.
                    published_rx.lock().unwrap().recv_timeout(LIMIT).unwrap();
                    for _ in 0..=CAPACITY {
                        got.push(timeout(LIMIT, sub.recv()).await.expect("delivered"));
                    }
                } else {
                    subscribed_rx.lock().unwrap().recv_timeout(LIMIT).unwrap();
                    counts = (0..CAPACITY + LOST).map(|i| bus.publish("t", i)).collect();
                    published_tx.send(()).unwrap();
                }
                (counts, got)
            }
        });
    let mut results = results.into_iter().map(|r| r.unwrap());
    let (counts, _) = results.next().unwrap();
    let (_, got) = results.next().unwrap();
    // Queued for shard 1 while there was room (counted), dropped after (not counted).
    let mut want_counts = vec![1; CAPACITY as usize];
    want_counts.extend([0; LOST as usize]);
    assert_eq!(counts, want_counts);
    let mut want: Vec<Result<u64, RecvError>> = (0..CAPACITY).map(Ok).collect();
    want.push(Err(RecvError::Lagged(LOST)));
    assert_eq!(got, want);
}
