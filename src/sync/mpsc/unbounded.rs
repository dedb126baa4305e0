//! The unbounded channel's [`UnboundedSender`] and [`UnboundedReceiver`].

use std::fmt;
use std::task::{Context, Poll};

use super::chan::{Rx, Tx};
use super::error::{SendError, TryRecvError, TrySendError};
use super::{Recv, RecvMany};

/// The sending half of an unbounded channel; clone it for more senders.
///
/// Made by [`unbounded_channel`](super::unbounded_channel). Sending never waits.
pub struct UnboundedSender<T> {
    tx: Tx<T>,
}

/// The receiving half of an unbounded channel.
///
/// Made by [`unbounded_channel`](super::unbounded_channel).
pub struct UnboundedReceiver<T> {
    rx: Rx<T>,
}

pub(super) fn new<T>(tx: Tx<T>, rx: Rx<T>) -> (UnboundedSender<T>, UnboundedReceiver<T>) {
    (UnboundedSender { tx }, UnboundedReceiver { rx })
}

impl<T> UnboundedSender<T> {
    /// Sends `value` at once; memory grows while the receiver falls behind.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if the receiver is closed or dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::sync::mpsc;
    ///
    /// ringloop::block_on(async {
    ///     let (tx, mut rx) = mpsc::unbounded_channel();
    ///     tx.send("hello").unwrap();
    ///     drop(tx);
    ///     assert_eq!(rx.recv().await, Some("hello"));
    ///     assert_eq!(rx.recv().await, None);
    /// });
    /// ```
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.tx.try_send(value).map_err(|e| match e {
            TrySendError::Closed(value) => SendError(value),
            TrySendError::Full(_) => unreachable!("an unbounded channel is never full"),
        })
    }

    /// Whether the receiver is closed or dropped: every send would fail.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Whether both senders feed the same channel.
    pub fn same_channel(&self, other: &UnboundedSender<T>) -> bool {
        self.tx.same_channel(&other.tx)
    }
}

impl<T> Clone for UnboundedSender<T> {
    fn clone(&self) -> Self {
        UnboundedSender {
            tx: self.tx.clone(),
        }
    }
}

impl<T> UnboundedReceiver<T> {
    /// Receives the next value; `None` once the channel is closed and drained. As
    /// [`Receiver::recv`](super::Receiver::recv).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a value is taken only when the future completes.
    pub fn recv(&mut self) -> Recv<'_, T> {
        Recv::new(&mut self.rx)
    }

    /// Receives up to `limit` values at once into `buf` (appended), waiting for at least one;
    /// returns how many. 0 once the channel is closed and empty, or if `limit` is 0.
    ///
    /// One wake and one borrow for a batch: for consumers that handle values in bulk (write
    /// them in one system call, one transaction).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: values are taken only when the future completes.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::sync::mpsc;
    ///
    /// ringloop::block_on(async {
    ///     let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
    ///     for i in 0..5 {
    ///         tx.send(i).unwrap();
    ///     }
    ///     drop(tx);
    ///     let mut batch = Vec::new();
    ///     assert_eq!(rx.recv_many(&mut batch, 3).await, 3);
    ///     assert_eq!(rx.recv_many(&mut batch, 3).await, 2);
    ///     assert_eq!(batch, [0, 1, 2, 3, 4]);
    ///     assert_eq!(rx.recv_many(&mut batch, 3).await, 0);
    /// });
    /// ```
    pub fn recv_many<'a>(&'a mut self, buf: &'a mut Vec<T>, limit: usize) -> RecvMany<'a, T> {
        RecvMany::new(&mut self.rx, buf, limit)
    }

    /// Polls for the next value (for hand-written futures).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.rx.poll_recv(cx)
    }

    /// Receives a value if one is buffered now.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if none is buffered but senders remain,
    /// [`TryRecvError::Disconnected`] if none ever will be.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.rx.try_recv()
    }

    /// Closes the channel to new sends, keeping what is buffered.
    pub fn close(&mut self) {
        self.rx.close();
    }

    /// Buffered values.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// Whether no value is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether no new value can arrive: every sender is gone, or the channel was closed.
    pub fn is_closed(&self) -> bool {
        self.rx.is_closed()
    }
}

impl<T> fmt::Debug for UnboundedSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnboundedSender").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for UnboundedReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnboundedReceiver")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}
