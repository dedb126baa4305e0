//! `Mutex` and `RwLock`: held across `.await`, exclusive (or shared for readers), served in
//! order, cancel safe, and released by a task that panics while holding them.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use ringloop::sync::{Mutex, RwLock};
use ringloop::task::yield_now;
use ringloop::time::{sleep, timeout};

#[test]
fn a_mutex_held_across_awaits_lets_one_task_in_at_a_time_in_arrival_order() {
    ringloop::block_on(async {
        let lock = Rc::new(Mutex::new(Vec::new()));
        let inside = Rc::new(Cell::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let (lock, inside) = (lock.clone(), inside.clone());
                ringloop::spawn(async move {
                    let mut order = lock.lock().await;
                    inside.set(inside.get() + 1);
                    assert_eq!(inside.get(), 1, "two tasks inside the lock");
                    for _ in 0..i % 3 {
                        yield_now().await;
                    }
                    sleep(Duration::from_micros(50)).await;
                    order.push(i);
                    inside.set(inside.get() - 1);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let order = Rc::try_unwrap(lock).unwrap().into_inner();
        assert_eq!(
            order,
            (0..20).collect::<Vec<_>>(),
            "first come, first served"
        );
    });
}

#[test]
fn try_lock_fails_while_the_lock_is_held_or_waited_for() {
    ringloop::block_on(async {
        let lock = Rc::new(Mutex::new(5));
        let guard = lock.try_lock().unwrap();
        assert!(lock.try_lock().is_err(), "held");
        let waiter = {
            let lock = lock.clone();
            ringloop::spawn(async move { *lock.lock().await += 1 })
        };
        yield_now().await;
        drop(guard);
        assert!(lock.try_lock().is_err(), "the waiter's turn came first");
        waiter.await.unwrap();
        assert_eq!(*lock.try_lock().unwrap(), 6);
        assert!(format!("{lock:?}").contains('6'));
    });
}

#[test]
fn a_lock_dropped_while_waiting_passes_the_turn_on() {
    ringloop::block_on(async {
        let lock = Rc::new(Mutex::new(()));
        let guard = lock.lock().await;
        // Waits, then gives up (a select! or timeout dropping `lock()`).
        assert!(timeout(Duration::from_millis(5), lock.lock())
            .await
            .is_err());
        let next = {
            let lock = lock.clone();
            ringloop::spawn(async move {
                let _held = lock.lock().await;
            })
        };
        yield_now().await;
        drop(guard);
        timeout(Duration::from_secs(10), next)
            .await
            .expect("the abandoned waiter did not keep the turn")
            .unwrap();
        assert!(lock.try_lock().is_ok());
    });
}

#[test]
fn a_task_that_panics_holding_the_lock_releases_it() {
    ringloop::block_on(async {
        let lock = Rc::new(Mutex::new(0));
        let panicker = {
            let lock = lock.clone();
            ringloop::spawn(async move {
                let mut value = lock.lock().await;
                *value = 1;
                yield_now().await;
                panic!("while holding the lock");
            })
        };
        assert!(panicker.await.unwrap_err().is_panic());
        let value = timeout(Duration::from_secs(10), lock.lock())
            .await
            .expect("the lock was released by the unwinding task");
        assert_eq!(*value, 1, "no poisoning: the value is as the task left it");
    });
}

#[test]
fn readers_share_an_rwlock_and_a_writer_waits_for_them_alone() {
    ringloop::block_on(async {
        let lock = Rc::new(RwLock::new(0u32));
        let readers_in = Rc::new(Cell::new(0));
        let most_readers = Rc::new(Cell::new(0));
        let mut tasks = Vec::new();
        for i in 0..30u32 {
            let (lock, readers_in, most_readers) =
                (lock.clone(), readers_in.clone(), most_readers.clone());
            tasks.push(ringloop::spawn(async move {
                if i % 10 == 9 {
                    let mut value = lock.write().await;
                    assert_eq!(readers_in.get(), 0, "a writer beside readers");
                    *value += 1;
                    sleep(Duration::from_micros(100)).await;
                } else {
                    let value = lock.read().await;
                    readers_in.set(readers_in.get() + 1);
                    most_readers.set(most_readers.get().max(readers_in.get()));
                    let seen = *value;
                    sleep(Duration::from_micros(100)).await;
                    assert_eq!(*value, seen, "a write during a read");
                    readers_in.set(readers_in.get() - 1);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*lock.read().await, 3);
        assert!(most_readers.get() > 1, "readers never shared the lock");
    });
}

#[test]
fn a_waiting_writer_holds_back_later_readers_until_it_gives_up() {
    ringloop::block_on(async {
        let lock = Rc::new(RwLock::new(String::from("v1")));
        let first = lock.read().await;
        // A writer queues behind the reader...
        let writer = {
            let lock = lock.clone();
            ringloop::spawn(async move {
                timeout(Duration::from_millis(20), lock.write())
                    .await
                    .is_err()
            })
        };
        yield_now().await;
        // ...so a later reader waits too (writers do not starve)...
        assert!(lock.try_read().is_err());
        assert!(lock.try_write().is_err());
        let late_reader = {
            let lock = lock.clone();
            ringloop::spawn(async move { lock.read().await.clone() })
        };
        // ...until the writer gives up, and the reader behind it goes ahead while `first` is
        // still held.
        assert!(writer.await.unwrap(), "the writer could not have got in");
        let seen = timeout(Duration::from_secs(10), late_reader)
            .await
            .expect("the reader behind the abandoned writer never got in")
            .unwrap();
        assert_eq!(seen, "v1");
        drop(first);
        lock.write().await.push_str("-v2");
        assert_eq!(Rc::try_unwrap(lock).unwrap().into_inner(), "v1-v2");
    });
}
