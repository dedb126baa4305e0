//! A channel for one value: [`channel`], [`Sender`], [`Receiver`].

use std::cell::RefCell;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// The errors of a [`oneshot`](super::oneshot) channel.
pub mod error {
    use std::fmt;

    /// The sender was dropped without sending.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct RecvError(pub(super) ());

    /// Why [`Receiver::try_recv`](super::Receiver::try_recv) returned no value.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum TryRecvError {
        /// Not sent yet; the sender is alive.
        Empty,
        /// The sender was dropped without sending, or the value was already taken.
        Closed,
    }

    impl fmt::Display for RecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("channel closed: the sender was dropped without sending")
        }
    }

    impl std::error::Error for RecvError {}

    impl fmt::Display for TryRecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                TryRecvError::Empty => f.write_str("channel empty"),
                TryRecvError::Closed => {
                    f.write_str("channel closed: the sender was dropped without sending")
                }
            }
        }
    }

    impl std::error::Error for TryRecvError {}
}

use error::{RecvError, TryRecvError};

struct Inner<T> {
    value: Option<T>,
    tx_alive: bool,
    /// The receiver closed or was dropped: a send would go nowhere.
    rx_closed: bool,
    rx_waker: Option<Waker>,
    /// The sender's waker while it waits in [`Sender::closed`].
    tx_waker: Option<Waker>,
}

/// Sends the one value; made by [`channel`].
pub struct Sender<T> {
    inner: Rc<RefCell<Inner<T>>>,
}

/// Receives the one value: await it (it is a future), or [`try_recv`](Receiver::try_recv).
///
/// Awaiting gives `Ok(value)`, or `Err(RecvError)` if the sender was dropped without sending.
///
/// # Cancel safety
///
/// Awaiting `&mut receiver` in a `select!` is cancel safe: the value stays in the channel
/// until a poll returns it.
pub struct Receiver<T> {
    inner: Rc<RefCell<Inner<T>>>,
}

/// Creates a channel for a single value.
///
/// # Examples
///
/// ```
/// use ringloop::sync::oneshot;
///
/// ringloop::block_on(async {
///     let (tx, rx) = oneshot::channel();
///     ringloop::spawn(async move { tx.send(7).unwrap() });
///     assert_eq!(rx.await, Ok(7));
///
///     let (tx, rx) = oneshot::channel::<u32>();
///     drop(tx);
///     assert!(rx.await.is_err()); // RecvError: the sender gave up
/// });
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Rc::new(RefCell::new(Inner {
        value: None,
        tx_alive: true,
        rx_closed: false,
        rx_waker: None,
        tx_waker: None,
    }));
    (
        Sender {
            inner: inner.clone(),
        },
        Receiver { inner },
    )
}

impl<T> Sender<T> {
    /// Sends the value, waking the receiver.
    ///
    /// # Errors
    ///
    /// The value comes back if the receiver was dropped or closed.
    pub fn send(self, value: T) -> Result<(), T> {
        let mut inner = self.inner.borrow_mut();
        if inner.rx_closed {
            return Err(value);
        }
        inner.value = Some(value);
        let waker = inner.rx_waker.take();
        drop(inner);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Whether the receiver was dropped or closed (a send would fail).
    pub fn is_closed(&self) -> bool {
        self.inner.borrow().rx_closed
    }

    /// Waits until the receiver is dropped or closed: lets a producer stop work nobody wants.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn closed(&mut self) {
        poll_fn(|cx| {
            let mut inner = self.inner.borrow_mut();
            if inner.rx_closed {
                inner.tx_waker = None;
                return Poll::Ready(());
            }
            inner.tx_waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut inner = self.inner.borrow_mut();
        inner.tx_alive = false;
        inner.tx_waker = None;
        let waker = inner.rx_waker.take();
        drop(inner);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Receiver<T> {
    /// Takes the value if it was sent.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if not sent yet, [`TryRecvError::Closed`] if it never will be
    /// (or was already taken).
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut inner = self.inner.borrow_mut();
        match inner.value.take() {
            Some(value) => Ok(value),
            None if inner.tx_alive && !inner.rx_closed => Err(TryRecvError::Empty),
            None => Err(TryRecvError::Closed),
        }
    }

    /// Refuses the value: a later `send` fails and gives it back. A value sent before the
    /// close can still be taken with [`try_recv`](Receiver::try_recv).
    pub fn close(&mut self) {
        let mut inner = self.inner.borrow_mut();
        inner.rx_closed = true;
        let waker = inner.tx_waker.take();
        drop(inner);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut inner = self.inner.borrow_mut();
        if let Some(value) = inner.value.take() {
            return Poll::Ready(Ok(value));
        }
        if !inner.tx_alive || inner.rx_closed {
            return Poll::Ready(Err(RecvError(())));
        }
        crate::task::waker::register(&mut inner.rx_waker, cx.waker());
        Poll::Pending
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.close();
        let mut inner = self.inner.borrow_mut();
        inner.rx_waker = None;
        let value = inner.value.take();
        drop(inner);
        drop(value);
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}
