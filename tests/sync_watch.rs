//! watch: receivers see the latest value, once per change; close in both directions.

mod support;

use std::future::Future;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ringloop::sync::watch;
use ringloop::time::timeout;
use support::{run, LIMIT};

#[test]
fn a_receiver_sees_the_latest_value_not_every_value() {
    run(async {
        let (tx, mut rx) = watch::channel(0);
        for i in 1..=100 {
            tx.send(i).unwrap();
        }
        timeout(LIMIT, rx.changed()).await.unwrap().unwrap();
        assert_eq!(*rx.borrow_and_update(), 100);
        assert!(!rx.has_changed().unwrap());
        let again = timeout(Duration::from_millis(2), rx.changed()).await;
        assert!(again.is_err(), "changed completed twice for one version");
    });
}

#[test]
fn waiting_receivers_are_all_woken_by_a_send() {
    run(async {
        let (tx, rx) = watch::channel("a");
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let mut rx = rx.clone();
            tasks.push(ringloop::spawn(async move {
                rx.changed().await.unwrap();
                *rx.borrow()
            }));
        }
        ringloop::task::yield_now().await;
        tx.send("b").unwrap();
        for task in tasks {
            assert_eq!(timeout(LIMIT, task).await.unwrap().unwrap(), "b");
        }
    });
}

#[test]
fn dropping_the_sender_ends_changed_after_the_last_unseen_value() {
    run(async {
        let (tx, mut rx) = watch::channel(1);
        tx.send(2).unwrap();
        drop(tx);
        assert!(rx.changed().await.is_ok());
        assert_eq!(*rx.borrow(), 2);
        assert!(rx.changed().await.is_err());
    });
}

#[test]
fn send_fails_without_receivers_but_send_replace_stores() {
    run(async {
        let (tx, rx) = watch::channel(1);
        let closed = ringloop::spawn(async move {
            drop(rx);
        });
        timeout(LIMIT, tx.closed()).await.unwrap();
        closed.await.unwrap();
        assert!(tx.send(2).is_err());
        assert_eq!(*tx.borrow(), 1);
        assert_eq!(tx.send_replace(3), 1);
        assert_eq!(*tx.borrow(), 3);
        let rx = tx.subscribe();
        assert!(!rx.has_changed().unwrap());
    });
}

#[test]
fn a_dropped_pending_changed_leaves_no_waiter_and_misses_nothing() {
    let (tx, mut rx) = watch::channel(0);
    {
        let mut fut = Box::pin(rx.changed());
        assert!(fut
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending());
    }
    tx.send_modify(|v| *v += 5);
    assert!(rx.has_changed().unwrap());
    let mut fut = Box::pin(rx.changed());
    assert_eq!(
        fut.as_mut().poll(&mut Context::from_waker(Waker::noop())),
        Poll::Ready(Ok(()))
    );
    drop(fut);
    assert_eq!(*rx.borrow(), 5);
}

#[test]
fn wait_for_returns_the_first_value_that_satisfies_and_fails_once_the_sender_is_gone() {
    run(async {
        let (tx, mut rx) = watch::channel(3u32);
        // The current value counts: no wait.
        assert_eq!(*rx.wait_for(|n| *n == 3).await.unwrap(), 3);
        let sender = ringloop::spawn(async move {
            for n in 4..=8 {
                tx.send(n).unwrap();
                ringloop::task::yield_now().await;
            }
        });
        let seen = *timeout(LIMIT, rx.wait_for(|n| n % 2 == 0 && *n > 5))
            .await
            .unwrap()
            .unwrap();
        // A watch shows the latest value, so 6 may have been overwritten before it was seen.
        assert!(seen == 6 || seen == 8, "{seen}");
        sender.await.unwrap();
        // The sender is gone and no value will ever be 100.
        let gone = timeout(LIMIT, rx.wait_for(|n| *n == 100))
            .await
            .unwrap()
            .is_err();
        assert!(gone);
        // ... but a value already there still satisfies.
        assert_eq!(*rx.wait_for(|n| *n == 8).await.unwrap(), 8);
    });
}
