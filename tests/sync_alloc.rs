//! Once warm, the local sync primitives allocate nothing per message or per wake (a counting
//! global allocator proves it): the mpsc ring, the broadcast ring and the waiter slabs are
//! reused.

mod support;

use std::rc::Rc;

use ringloop::sync::{broadcast, mpsc, Notify, Semaphore};
use support::{allocations, CountingAlloc, LIMIT};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[test]
fn steady_state_messages_and_wakes_allocate_nothing() {
    let rt = ringloop::Runtime::new().unwrap();
    rt.block_on(async {
        ringloop::time::timeout(LIMIT, async {
            // Bounded mpsc with backpressure: a producer task waits for room, the consumer
            // frees it, both wake each other.
            let (tx, mut rx) = mpsc::channel::<u64>(4);
            let (more_tx, mut more_rx) = mpsc::channel::<u64>(1);
            let producer = ringloop::spawn(async move {
                while let Some(n) = more_rx.recv().await {
                    for i in 0..n {
                        tx.send(i).await.unwrap();
                    }
                }
            });
            // Rounds 0..10 warm up (grow the rings, slabs and run queue); the rest are counted.
            let mut before = 0;
            for round in 0..110 {
                if round == 10 {
                    before = allocations();
                }
                more_tx.send(64).await.unwrap();
                for i in 0..64 {
                    assert_eq!(rx.recv().await, Some(i));
                }
            }
            let n = allocations() - before;
            assert_eq!(n, 0, "mpsc allocated {n} times for 6,400 messages");
            drop(more_tx);
            producer.await.unwrap();

            // Broadcast to waiting receivers, and Notify / Semaphore waits and wakes.
            let (btx, mut brx) = broadcast::channel::<u64>(8);
            let notify = Rc::new(Notify::new());
            let sem = Rc::new(Semaphore::new(1));
            let echo = ringloop::spawn({
                let (notify, sem) = (notify.clone(), sem.clone());
                async move {
                    while let Ok(v) = brx.recv().await {
                        let _permit = sem.acquire().await.unwrap();
                        notify.notify_one();
                        if v == u64::MAX {
                            return;
                        }
                    }
                }
            });
            let mut before = 0;
            for round in 0..1_010 {
                if round == 10 {
                    before = allocations();
                }
                let permit = sem.acquire().await.unwrap();
                btx.send(1).unwrap();
                // The echo task now waits for the permit this task holds.
                ringloop::task::yield_now().await;
                drop(permit);
                notify.notified().await;
            }
            let n = allocations() - before;
            assert_eq!(n, 0, "broadcast/Notify/Semaphore allocated {n} times");
            btx.send(u64::MAX).unwrap();
            echo.await.unwrap();
        })
        .await
        .expect("test timed out");
    });
}
