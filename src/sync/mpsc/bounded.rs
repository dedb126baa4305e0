//! The bounded channel's [`Sender`], [`Receiver`] and [`Permit`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::chan::{Rx, Tx};
use super::error::{SendError, TryRecvError, TrySendError};
use super::{Recv, RecvMany};

/// The sending half of a bounded channel; clone it for more senders.
///
/// Made by [`channel`](super::channel). Local: neither `Send` nor `Sync`.
pub struct Sender<T> {
    tx: Tx<T>,
}

/// The receiving half of a bounded channel.
///
/// Made by [`channel`](super::channel).
pub struct Receiver<T> {
    rx: Rx<T>,
}

/// One slot of the channel, reserved: [`send`](Permit::send) cannot fail or wait.
///
/// Dropping an unused permit gives its slot back (to the next waiting sender, if any).
pub struct Permit<'a, T> {
    sender: &'a Sender<T>,
}

/// The future returned by [`Sender::reserve`].
#[must_use = "futures do nothing unless awaited"]
pub struct Reserve<'a, T> {
    sender: &'a Sender<T>,
    key: Option<usize>,
}

pub(super) fn new<T>(tx: Tx<T>, rx: Rx<T>) -> (Sender<T>, Receiver<T>) {
    (Sender { tx }, Receiver { rx })
}

impl<T> Sender<T> {
    /// Sends `value`, waiting while the channel is full.
    ///
    /// Waiting senders are served first come, first served.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if the receiver is closed or dropped (also if that
    /// happens while this send waits).
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped before it completes, the value was not sent and is dropped
    /// with it, and the sender's place in the queue is given up (a slot it had just been
    /// granted goes to the next waiting sender). Use [`reserve`](Sender::reserve) to wait for
    /// room without risking the value.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::sync::mpsc;
    ///
    /// ringloop::block_on(async {
    ///     let (tx, mut rx) = mpsc::channel(1);
    ///     ringloop::spawn(async move {
    ///         for i in 0..3 {
    ///             tx.send(i).await.unwrap(); // waits while the one slot is taken
    ///         }
    ///     });
    ///     assert_eq!(rx.recv().await, Some(0));
    ///     assert_eq!(rx.recv().await, Some(1));
    ///     assert_eq!(rx.recv().await, Some(2));
    ///     assert_eq!(rx.recv().await, None); // the sender is gone
    /// });
    /// ```
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        match self.tx.try_send(value) {
            Ok(()) => Ok(()),
            Err(TrySendError::Closed(value)) => Err(SendError(value)),
            Err(TrySendError::Full(value)) => match self.reserve().await {
                Ok(permit) => {
                    permit.send(value);
                    Ok(())
                }
                Err(SendError(())) => Err(SendError(value)),
            },
        }
    }

    /// Sends `value` if there is room now, without waiting.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if the channel is full (or other senders are already waiting
    /// for room), [`TrySendError::Closed`] if the receiver is closed or dropped; both carry
    /// the value back.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::sync::mpsc::{self, error::TrySendError};
    ///
    /// let (tx, rx) = mpsc::channel(1);
    /// assert_eq!(tx.try_send(1), Ok(()));
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// drop(rx);
    /// assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.tx.try_send(value)
    }

    /// Waits for a free slot and reserves it.
    ///
    /// # Errors
    ///
    /// [`SendError`] if the receiver is closed or dropped.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped `Reserve` leaves the queue, and a slot it had been granted goes
    /// to the next waiting sender.
    pub fn reserve(&self) -> Reserve<'_, T> {
        Reserve {
            sender: self,
            key: None,
        }
    }

    /// Reserves a free slot if there is one now.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] or [`TrySendError::Closed`], as [`try_send`](Sender::try_send).
    pub fn try_reserve(&self) -> Result<Permit<'_, T>, TrySendError<()>> {
        self.tx.try_reserve()?;
        Ok(Permit { sender: self })
    }

    /// Whether the receiver is closed or dropped: every send would fail.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Free slots now.
    pub fn capacity(&self) -> usize {
        self.tx.capacity()
    }

    /// The capacity the channel was made with.
    pub fn max_capacity(&self) -> usize {
        self.tx.max_capacity()
    }

    /// Whether both senders feed the same channel.
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        self.tx.same_channel(&other.tx)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            tx: self.tx.clone(),
        }
    }
}

impl<'a, T> Future for Reserve<'a, T> {
    type Output = Result<Permit<'a, T>, SendError<()>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.sender
            .tx
            .poll_reserve(&mut this.key, cx)
            .map_ok(|()| Permit {
                sender: this.sender,
            })
    }
}

impl<T> Drop for Reserve<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.sender.tx.cancel_reserve(key);
        }
    }
}

impl<T> Permit<'_, T> {
    /// Sends `value` through the reserved slot.
    ///
    /// If the receiver was dropped meanwhile, the value is dropped (nobody can receive it).
    /// If it was only [closed](Receiver::close), the value is still delivered.
    pub fn send(self, value: T) {
        let sender = self.sender;
        std::mem::forget(self);
        sender.tx.send_reserved(value);
    }
}

impl<T> Drop for Permit<'_, T> {
    fn drop(&mut self) {
        self.sender.tx.release_reserved();
    }
}

impl<T> Receiver<T> {
    /// Receives the next value; `None` once the channel is closed (every sender dropped, or
    /// [`close`](Receiver::close) called) and every buffered value was received.
    ///
    /// Values sent by one sender arrive in the order it sent them.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a value is taken only when the future completes, so a `recv` dropped in a
    /// `select!` loses nothing.
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
    ///     let (tx, mut rx) = mpsc::channel::<u32>(8);
    ///     for i in 0..5 {
    ///         tx.send(i).await.unwrap();
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

    /// Polls for the next value (for hand-written futures); `recv` is this as a future.
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

    /// Closes the channel to new sends, keeping what is buffered for [`recv`](Receiver::recv).
    ///
    /// Waiting senders fail with [`SendError`]; permits already reserved can still send.
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

    /// Live senders.
    pub fn sender_strong_count(&self) -> usize {
        self.rx.sender_count()
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Permit<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Reserve<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reserve")
            .field("waiting", &self.key.is_some())
            .finish()
    }
}
