//! Multi-producer, single-consumer channels, local to one runtime: bounded ([`channel`]) and
//! unbounded ([`unbounded_channel`]), with tokio's names and errors.
//!
//! Values live in one `VecDeque` ring; sending and receiving allocate nothing once it has
//! grown to the channel's working size. Senders waiting for room queue first come, first
//! served; a freed slot is handed to the front waiter directly, and a waiter dropped after it
//! was handed a slot passes it on.
//!
//! Closing: when every sender is dropped, or the receiver calls `close`, the receiver still
//! gets every value that was buffered (every value a send reported as sent), then `None`.
//! When the receiver is dropped, sends fail and give the value back.
//!
//! For channels between shards (threads), see [`shard::channel`](crate::shard::channel).

mod bounded;
mod chan;
pub mod error;
mod unbounded;

pub use bounded::{Permit, Receiver, Reserve, Sender};
pub use unbounded::{UnboundedReceiver, UnboundedSender};

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Creates a bounded channel holding at most `capacity` values.
///
/// # Panics
///
/// If `capacity` is zero (a rendezvous channel is not supported, as with tokio).
///
/// # Examples
///
/// ```
/// use ringloop::sync::mpsc;
///
/// ringloop::block_on(async {
///     let (tx, mut rx) = mpsc::channel::<u32>(16);
///     for id in 0..4 {
///         let tx = tx.clone();
///         ringloop::spawn(async move { tx.send(id).await.unwrap() });
///     }
///     drop(tx);
///     let mut sum = 0;
///     while let Some(v) = rx.recv().await {
///         sum += v;
///     }
///     assert_eq!(sum, 6);
/// });
/// ```
#[track_caller]
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "mpsc::channel: capacity must be at least 1");
    let (tx, rx) = chan::new(capacity);
    bounded::new(tx, rx)
}

/// Creates a channel without a bound: sending never waits, and memory grows while the
/// receiver falls behind.
pub fn unbounded_channel<T>() -> (UnboundedSender<T>, UnboundedReceiver<T>) {
    let (tx, rx) = chan::new(usize::MAX);
    unbounded::new(tx, rx)
}

/// The future returned by [`Receiver::recv`] and [`UnboundedReceiver::recv`].
#[must_use = "futures do nothing unless awaited"]
pub struct Recv<'a, T> {
    rx: &'a mut chan::Rx<T>,
    waiting: bool,
}

impl<'a, T> Recv<'a, T> {
    fn new(rx: &'a mut chan::Rx<T>) -> Self {
        Recv { rx, waiting: false }
    }
}

impl<T> Future for Recv<'_, T> {
    type Output = Option<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let poll = self.rx.poll_recv(cx);
        self.waiting = poll.is_pending();
        poll
    }
}

impl<T> Drop for Recv<'_, T> {
    fn drop(&mut self) {
        if self.waiting {
            self.rx.forget_waker();
        }
    }
}

/// The future of [`Receiver::recv_many`] and [`UnboundedReceiver::recv_many`].
#[must_use = "futures do nothing unless awaited"]
pub struct RecvMany<'a, T> {
    rx: &'a mut chan::Rx<T>,
    buf: &'a mut Vec<T>,
    limit: usize,
    waiting: bool,
}

impl<'a, T> RecvMany<'a, T> {
    fn new(rx: &'a mut chan::Rx<T>, buf: &'a mut Vec<T>, limit: usize) -> Self {
        RecvMany {
            rx,
            buf,
            limit,
            waiting: false,
        }
    }
}

impl<T> Future for RecvMany<'_, T> {
    type Output = usize;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let this = self.get_mut();
        let poll = this.rx.poll_recv_many(cx, this.buf, this.limit);
        this.waiting = poll.is_pending();
        poll
    }
}

impl<T> Drop for RecvMany<'_, T> {
    fn drop(&mut self) {
        if self.waiting {
            self.rx.forget_waker();
        }
    }
}

impl<T> fmt::Debug for RecvMany<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvMany")
            .field("limit", &self.limit)
            .field("waiting", &self.waiting)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv")
            .field("waiting", &self.waiting)
            .finish()
    }
}
