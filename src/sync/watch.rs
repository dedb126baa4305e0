//! A single-value channel whose receivers see the latest value: [`channel`], [`Sender`],
//! [`Receiver`].
//!
//! Each send replaces the value and bumps a version; a receiver remembers the version it last
//! saw, so [`Receiver::changed`] completes once per new version however many sends happened
//! in between (intermediate values are skipped, by design).

use std::cell::{Ref, RefCell};
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::wait_list::{wake_then_recycle, WaitList};

/// The errors of a [`watch`](super::watch) channel.
pub mod error {
    use std::fmt;

    /// No receiver is left; the value comes back.
    #[derive(PartialEq, Eq, Clone, Copy)]
    pub struct SendError<T>(pub T);

    /// The sender was dropped.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct RecvError(pub(super) ());

    impl<T> fmt::Debug for SendError<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("SendError(..)")
        }
    }

    impl<T> fmt::Display for SendError<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("channel closed: no receiver is left")
        }
    }

    impl<T> std::error::Error for SendError<T> {}

    impl fmt::Display for RecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("channel closed: the sender was dropped")
        }
    }

    impl std::error::Error for RecvError {}
}

use error::{RecvError, SendError};

struct Shared<T> {
    value: RefCell<T>,
    state: RefCell<State>,
}

struct State {
    version: u64,
    tx_alive: bool,
    receivers: usize,
    waiters: WaitList,
    tx_waker: Option<Waker>,
    scratch: Vec<Waker>,
}

/// Sends new values; made by [`channel`].
pub struct Sender<T> {
    shared: Rc<Shared<T>>,
}

/// Sees the latest value; clone it for more receivers.
pub struct Receiver<T> {
    shared: Rc<Shared<T>>,
    seen: u64,
}

/// Creates a watch channel holding `init`. Receivers start out having seen `init`.
///
/// # Examples
///
/// ```
/// use ringloop::sync::watch;
///
/// ringloop::block_on(async {
///     let (tx, mut rx) = watch::channel("starting");
///     ringloop::spawn(async move {
///         tx.send("ready").unwrap();
///         tx.send("serving").unwrap(); // may overwrite "ready" before anyone looks
///     });
///     rx.changed().await.unwrap();
///     let seen = *rx.borrow_and_update();
///     assert!(seen == "ready" || seen == "serving");
/// });
/// ```
pub fn channel<T>(init: T) -> (Sender<T>, Receiver<T>) {
    let shared = Rc::new(Shared {
        value: RefCell::new(init),
        state: RefCell::new(State {
            version: 0,
            tx_alive: true,
            receivers: 1,
            waiters: WaitList::new(),
            tx_waker: None,
            scratch: Vec::new(),
        }),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared, seen: 0 },
    )
}

impl<T> Shared<T> {
    fn wake_receivers(&self) {
        let mut state = self.state.borrow_mut();
        let mut wakers = std::mem::take(&mut state.scratch);
        state.waiters.notify_all(&mut wakers);
        drop(state);
        wake_then_recycle(wakers, |w| self.state.borrow_mut().scratch = w);
    }
}

impl<T> Sender<T> {
    /// Replaces the value and wakes the receivers.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value (which is not stored) if no receiver is left.
    ///
    /// # Panics
    ///
    /// If a [`Ref`] from `borrow` is still held (do not hold one across an `.await`).
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.shared.state.borrow().receivers == 0 {
            return Err(SendError(value));
        }
        self.send_replace(value);
        Ok(())
    }

    /// Replaces the value whether or not a receiver is left; returns the old one.
    ///
    /// # Panics
    ///
    /// If a [`Ref`] from `borrow` is still held.
    pub fn send_replace(&self, value: T) -> T {
        let old = std::mem::replace(&mut *self.shared.value.borrow_mut(), value);
        self.shared.state.borrow_mut().version += 1;
        self.shared.wake_receivers();
        old
    }

    /// Modifies the value in place and wakes the receivers.
    ///
    /// # Panics
    ///
    /// If a [`Ref`] from `borrow` is still held.
    pub fn send_modify(&self, modify: impl FnOnce(&mut T)) {
        self.send_if_modified(|value| {
            modify(value);
            true
        });
    }

    /// Modifies the value in place; wakes the receivers only if `modify` returns `true`.
    ///
    /// # Panics
    ///
    /// If a [`Ref`] from `borrow` is still held.
    pub fn send_if_modified(&self, modify: impl FnOnce(&mut T) -> bool) -> bool {
        let modified = modify(&mut self.shared.value.borrow_mut());
        if modified {
            self.shared.state.borrow_mut().version += 1;
            self.shared.wake_receivers();
        }
        modified
    }

    /// The current value. Drop the guard before the next send.
    pub fn borrow(&self) -> Ref<'_, T> {
        self.shared.value.borrow()
    }

    /// A new receiver that has seen the current value.
    pub fn subscribe(&self) -> Receiver<T> {
        let mut state = self.shared.state.borrow_mut();
        state.receivers += 1;
        Receiver {
            shared: self.shared.clone(),
            seen: state.version,
        }
    }

    /// Live receivers.
    pub fn receiver_count(&self) -> usize {
        self.shared.state.borrow().receivers
    }

    /// Whether no receiver is left.
    pub fn is_closed(&self) -> bool {
        self.receiver_count() == 0
    }

    /// Waits until no receiver is left.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn closed(&self) {
        poll_fn(|cx| {
            let mut state = self.shared.state.borrow_mut();
            if state.receivers == 0 {
                state.tx_waker = None;
                return Poll::Ready(());
            }
            state.tx_waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.shared.state.borrow_mut().tx_alive = false;
        self.shared.wake_receivers();
    }
}

impl<T> Receiver<T> {
    /// The current value, without marking it seen. Drop the guard before the sender's next
    /// send (do not hold it across an `.await`).
    pub fn borrow(&self) -> Ref<'_, T> {
        self.shared.value.borrow()
    }

    /// The current value, marking it seen.
    pub fn borrow_and_update(&mut self) -> Ref<'_, T> {
        self.seen = self.shared.state.borrow().version;
        self.shared.value.borrow()
    }

    /// Whether a value this receiver has not seen was sent.
    ///
    /// # Errors
    ///
    /// [`RecvError`] if the sender was dropped.
    pub fn has_changed(&self) -> Result<bool, RecvError> {
        let state = self.shared.state.borrow();
        if !state.tx_alive {
            return Err(RecvError(()));
        }
        Ok(state.version != self.seen)
    }

    /// Marks the current value unseen, so the next `changed` completes at once.
    pub fn mark_changed(&mut self) {
        self.seen = self.shared.state.borrow().version.wrapping_sub(1);
    }

    /// Marks the current value seen.
    pub fn mark_unchanged(&mut self) {
        self.seen = self.shared.state.borrow().version;
    }

    /// Waits until the value satisfies `pred` (the current value first), marks it seen and
    /// returns it. Drop the guard before the sender's next send.
    ///
    /// # Errors
    ///
    /// [`RecvError`] if the sender is dropped before a value satisfies `pred`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: values looked at are marked seen, nothing else changes.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::sync::watch;
    ///
    /// ringloop::block_on(async {
    ///     let (tx, mut rx) = watch::channel(0u32);
    ///     ringloop::spawn(async move {
    ///         for n in 1..=10 {
    ///             tx.send(n).unwrap();
    ///             ringloop::task::yield_now().await;
    ///         }
    ///     });
    ///     let at_least_five = *rx.wait_for(|n| *n >= 5).await.unwrap();
    ///     assert!(at_least_five >= 5);
    /// });
    /// ```
    pub async fn wait_for(
        &mut self,
        mut pred: impl FnMut(&T) -> bool,
    ) -> Result<Ref<'_, T>, RecvError> {
        loop {
            if pred(&self.borrow_and_update()) {
                break;
            }
            self.changed().await?;
        }
        Ok(self.borrow())
    }

    /// Waits for a value this receiver has not seen, and marks it seen. Read it with
    /// [`borrow`](Receiver::borrow).
    ///
    /// # Errors
    ///
    /// [`RecvError`] once the sender is dropped and every value was seen.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped `Changed` leaves the queue and marks nothing seen.
    pub fn changed(&mut self) -> Changed<'_, T> {
        Changed {
            rx: self,
            key: None,
        }
    }
}

/// The future returned by [`Receiver::changed`].
#[must_use = "futures do nothing unless awaited"]
pub struct Changed<'a, T> {
    rx: &'a mut Receiver<T>,
    key: Option<usize>,
}

impl<T> Future for Changed<'_, T> {
    type Output = Result<(), RecvError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut state = this.rx.shared.state.borrow_mut();
        if let Some(key) = this.key {
            if state.waiters.notified(key).is_some() {
                state.waiters.remove(key);
                this.key = None;
            }
        }
        let outcome = if state.version != this.rx.seen {
            this.rx.seen = state.version;
            Some(Ok(()))
        } else if !state.tx_alive {
            Some(Err(RecvError(())))
        } else {
            None
        };
        match (outcome, this.key) {
            (Some(outcome), key) => {
                if let Some(key) = key {
                    state.waiters.remove(key);
                    this.key = None;
                }
                Poll::Ready(outcome)
            }
            (None, Some(key)) => {
                state.waiters.register(key, cx.waker());
                Poll::Pending
            }
            (None, None) => {
                this.key = Some(state.waiters.push(cx.waker(), 1));
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for Changed<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.rx.shared.state.borrow_mut().waiters.remove(key);
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.shared.state.borrow_mut().receivers += 1;
        Receiver {
            shared: self.shared.clone(),
            seen: self.seen,
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.shared.state.borrow_mut();
        state.receivers -= 1;
        let waker = if state.receivers == 0 {
            state.tx_waker.take()
        } else {
            None
        };
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("value", &self.shared.value.try_borrow().ok())
            .finish()
    }
}

impl<T: fmt::Debug> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("value", &self.shared.value.try_borrow().ok())
            .field("seen", &self.seen)
            .finish()
    }
}

impl<T> fmt::Debug for Changed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Changed")
            .field("waiting", &self.key.is_some())
            .finish()
    }
}
