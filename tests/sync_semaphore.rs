//! Semaphore: never more holders than permits, FIFO, permits released on drop, cancellation.

mod support;

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use ringloop::sync::{AcquireError, Semaphore, TryAcquireError};
use ringloop::time::timeout;
use support::{run, LIMIT};

fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn a_thousand_tasks_never_hold_more_than_the_permits() {
    run(async {
        const PERMITS: usize = 7;
        let sem = Rc::new(Semaphore::new(PERMITS));
        let inside = Rc::new(Cell::new(0usize));
        let peak = Rc::new(Cell::new(0usize));
        let done = Rc::new(Cell::new(0usize));
        let mut tasks = Vec::new();
        for i in 0..1_000 {
            let (sem, inside, peak, done) =
                (sem.clone(), inside.clone(), peak.clone(), done.clone());
            tasks.push(ringloop::spawn(async move {
                let _permit = sem.acquire().await.unwrap();
                inside.set(inside.get() + 1);
                peak.set(peak.get().max(inside.get()));
                for _ in 0..(i % 3) {
                    ringloop::task::yield_now().await;
                }
                inside.set(inside.get() - 1);
                done.set(done.get() + 1);
            }));
        }
        timeout(LIMIT, async {
            for task in tasks {
                task.await.unwrap();
            }
        })
        .await
        .expect("every task gets a permit");
        assert_eq!(done.get(), 1_000);
        assert_eq!(
            peak.get(),
            PERMITS,
            "holders exceeded (or never reached) the permits"
        );
        assert_eq!(sem.available_permits(), PERMITS);
    });
}

#[test]
fn a_dropped_pending_acquire_leaves_the_queue_and_loses_no_permit() {
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().unwrap();
    let mut first = Box::pin(sem.acquire());
    let mut second = Box::pin(sem.acquire());
    assert!(poll_once(first.as_mut()).is_pending());
    assert!(poll_once(second.as_mut()).is_pending());
    // The released permit is handed to `first`, which is dropped before it takes it.
    drop(held);
    assert_eq!(sem.available_permits(), 0);
    drop(first);
    let permit = match poll_once(second.as_mut()) {
        Poll::Ready(Ok(permit)) => permit,
        other => panic!("the permit was not passed on: {other:?}"),
    };
    drop(permit);
    drop(second);
    assert_eq!(sem.available_permits(), 1);
    // No waiter left behind: try_acquire is not blocked by a ghost in the queue.
    assert!(sem.try_acquire().is_ok());
}

#[test]
fn a_dropped_front_waiter_lets_smaller_requests_behind_it_through() {
    let sem = Semaphore::new(2);
    let mut big = Box::pin(sem.acquire_many(3));
    let mut small = Box::pin(sem.acquire());
    assert!(poll_once(big.as_mut()).is_pending());
    // FIFO: the small request waits behind the big one although a permit is free.
    assert!(poll_once(small.as_mut()).is_pending());
    drop(big);
    assert!(matches!(poll_once(small.as_mut()), Poll::Ready(Ok(_))));
}

#[test]
fn permits_release_on_drop_and_forget_keeps_them() {
    let sem = Semaphore::new(3);
    let a = sem.try_acquire_many(2).unwrap();
    assert_eq!(a.num_permits(), 2);
    assert_eq!(
        sem.try_acquire_many(2).unwrap_err(),
        TryAcquireError::NoPermits
    );
    drop(a);
    assert_eq!(sem.available_permits(), 3);
    sem.try_acquire().unwrap().forget();
    assert_eq!(sem.available_permits(), 2);
    sem.add_permits(5);
    assert_eq!(sem.available_permits(), 7);
}

#[test]
fn close_fails_waiting_and_later_acquires() {
    run(async {
        let sem = Rc::new(Semaphore::new(0));
        let waiter = ringloop::spawn({
            let sem = sem.clone();
            async move { sem.acquire().await.map(|p| p.num_permits()) }
        });
        ringloop::task::yield_now().await;
        sem.close();
        let res = timeout(LIMIT, waiter).await.unwrap().unwrap();
        assert_eq!(res, Err::<usize, _>(sem.acquire().await.unwrap_err()));
        let _: AcquireError = res.unwrap_err();
        assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::Closed);
        assert!(sem.is_closed());
    });
}

#[test]
fn owned_permits_move_into_tasks() {
    run(async {
        let sem = Rc::new(Semaphore::new(1));
        let permit = sem.clone().acquire_owned().await.unwrap();
        assert_eq!(sem.available_permits(), 0);
        ringloop::spawn(async move { drop(permit) }).await.unwrap();
        assert_eq!(sem.available_permits(), 1);
    });
}
