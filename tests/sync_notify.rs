//! Notify: tokio's permit rule, notify_waiters, and cancellation that loses no notification.

mod support;

use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use ringloop::sync::Notify;
use ringloop::time::timeout;
use support::{run, LIMIT};

fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

#[derive(Default)]
struct WakeCount(AtomicUsize);

impl Wake for WakeCount {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn notify_one_before_notified_stores_one_permit() {
    let notify = Notify::new();
    notify.notify_one();
    notify.notify_one(); // permits do not add up
    assert!(poll_once(std::pin::pin!(notify.notified())).is_ready());
    assert!(poll_once(std::pin::pin!(notify.notified())).is_pending());
}

#[test]
fn notify_waiters_wakes_every_waiter_and_stores_no_permit() {
    let notify = Notify::new();
    let mut a = Box::pin(notify.notified());
    let mut b = Box::pin(notify.notified());
    // `b` was created but never polled: it still counts as waiting (as tokio).
    assert!(poll_once(a.as_mut()).is_pending());
    notify.notify_waiters();
    assert!(poll_once(a.as_mut()).is_ready());
    assert!(poll_once(b.as_mut()).is_ready());
    assert!(poll_once(std::pin::pin!(notify.notified())).is_pending());
}

#[test]
fn notify_one_wakes_waiters_in_order_one_at_a_time() {
    let notify = Notify::new();
    let counts: Vec<Arc<WakeCount>> = (0..3).map(|_| Arc::default()).collect();
    let mut futs: Vec<_> = (0..3).map(|_| Box::pin(notify.notified())).collect();
    for (fut, count) in futs.iter_mut().zip(&counts) {
        let waker = Waker::from(count.clone());
        assert!(fut
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
    }
    notify.notify_one();
    let woken: Vec<usize> = counts.iter().map(|c| c.0.load(Ordering::SeqCst)).collect();
    assert_eq!(woken, vec![1, 0, 0]);
    assert!(poll_once(futs[0].as_mut()).is_ready());
    assert!(poll_once(futs[1].as_mut()).is_pending());
}

#[test]
fn a_dropped_notified_that_was_picked_passes_the_notification_on() {
    let notify = Notify::new();
    let mut first = Box::pin(notify.notified());
    let mut second = Box::pin(notify.notified());
    assert!(poll_once(first.as_mut()).is_pending());
    assert!(poll_once(second.as_mut()).is_pending());
    notify.notify_one(); // picks `first`
    drop(first);
    assert!(
        poll_once(second.as_mut()).is_ready(),
        "the notification was lost"
    );
}

#[test]
fn a_dropped_picked_notified_with_nobody_behind_it_leaves_a_permit() {
    let notify = Notify::new();
    let mut first = Box::pin(notify.notified());
    assert!(poll_once(first.as_mut()).is_pending());
    notify.notify_one();
    drop(first);
    assert!(poll_once(std::pin::pin!(notify.notified())).is_ready());
}

#[test]
fn a_dropped_waiting_notified_leaves_no_waiter_behind() {
    let notify = Notify::new();
    let mut fut = Box::pin(notify.notified());
    assert!(poll_once(fut.as_mut()).is_pending());
    drop(fut);
    // With the dropped waiter gone, notify_one has nobody to wake and stores the permit.
    notify.notify_one();
    assert!(poll_once(std::pin::pin!(notify.notified())).is_ready());
}

#[test]
fn a_task_waiting_on_notified_is_woken_by_another_task() {
    run(async {
        let notify = Rc::new(Notify::new());
        let waiter = ringloop::spawn({
            let notify = notify.clone();
            async move { notify.notified().await }
        });
        ringloop::task::yield_now().await;
        notify.notify_one();
        timeout(LIMIT, waiter).await.expect("woken").unwrap();
    });
}
