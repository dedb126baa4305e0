//! A multi-producer, multi-consumer channel where every receiver sees every value:
//! [`channel`], [`Sender`], [`Receiver`].
//!
//! Values sit in one ring of `capacity` slots shared by all receivers; each receiver keeps
//! the position of the next value it wants. A send never waits: when the ring is full it
//! overwrites the oldest value, and a receiver that had not read it gets
//! [`RecvError::Lagged(n)`](error::RecvError::Lagged), `n` being exactly how many values it
//! missed, then continues with the oldest value still held (tokio's rule). Unlike tokio, the
//! capacity is not rounded up to a power of two, so `Lagged` counts against exactly the
//! capacity asked for. A value stays in its slot until overwritten or the channel is dropped.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::wait_list::{wake_then_recycle, WaitList};

/// The errors of a [`broadcast`](super::broadcast) channel.
pub mod error {
    use std::fmt;

    /// No receiver is left; the value comes back.
    #[derive(PartialEq, Eq, Clone, Copy)]
    pub struct SendError<T>(pub T);

    /// Why [`Receiver::recv`](super::Receiver::recv) returned no value.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum RecvError {
        /// Every sender is gone and every value was received.
        Closed,
        /// The receiver fell behind and this many values were overwritten before it read
        /// them; the next receive returns the oldest value still held.
        Lagged(u64),
    }

    /// Why [`Receiver::try_recv`](super::Receiver::try_recv) returned no value.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum TryRecvError {
        /// Nothing new yet; senders remain.
        Empty,
        /// Every sender is gone and every value was received.
        Closed,
        /// The receiver fell behind by this many values (see [`RecvError::Lagged`]).
        Lagged(u64),
    }

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
            match self {
                RecvError::Closed => f.write_str("channel closed"),
                RecvError::Lagged(n) => write!(f, "receiver lagged behind and missed {n} values"),
            }
        }
    }

    impl std::error::Error for RecvError {}

    impl fmt::Display for TryRecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                TryRecvError::Empty => f.write_str("channel empty"),
                TryRecvError::Closed => f.write_str("channel closed"),
                TryRecvError::Lagged(n) => {
                    write!(f, "receiver lagged behind and missed {n} values")
                }
            }
        }
    }

    impl std::error::Error for TryRecvError {}
}

use error::{RecvError, SendError, TryRecvError};

struct Slot<T> {
    value: Option<T>,
    /// `State::lost` when the value was sent: the lost values that came before it.
    lost_before: u64,
}

struct State<T> {
    slots: Box<[Slot<T>]>,
    /// Position of the next value sent; positions below `tail - capacity` are overwritten.
    tail: u64,
    /// Values recorded as lost on their way in (see `Sender::send_lost`), ever. They take no
    /// slot, so they never push out a value that did arrive.
    lost: u64,
    senders: usize,
    receivers: usize,
    waiters: WaitList,
    scratch: Vec<Waker>,
}

/// Where a receiver is: the next position it reads, and how many lost values it has been
/// told about.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    next: u64,
    lost_seen: u64,
}

impl<T> State<T> {
    fn capacity(&self) -> u64 {
        self.slots.len() as u64
    }

    fn slot(&self, pos: u64) -> &Slot<T> {
        &self.slots[(pos % self.capacity()) as usize]
    }

    fn slot_mut(&mut self, pos: u64) -> &mut Slot<T> {
        let i = (pos % self.capacity()) as usize;
        &mut self.slots[i]
    }

    fn cursor(&self) -> Cursor {
        Cursor {
            next: self.tail,
            lost_seen: self.lost,
        }
    }

    /// The next value for a receiver at `at`, or why there is none.
    fn take(&self, at: &mut Cursor) -> Result<T, TryRecvError>
    where
        T: Clone,
    {
        let oldest = self.tail.saturating_sub(self.capacity());
        if at.next < oldest {
            // Overwritten before this receiver read them, plus values lost before the
            // oldest one still held.
            let lost_before = self.slot(oldest).lost_before;
            let missed = oldest - at.next + (lost_before - at.lost_seen);
            *at = Cursor {
                next: oldest,
                lost_seen: lost_before,
            };
            return Err(TryRecvError::Lagged(missed));
        }
        let lost_before = if at.next == self.tail {
            self.lost
        } else {
            self.slot(at.next).lost_before
        };
        if lost_before > at.lost_seen {
            let missed = lost_before - at.lost_seen;
            at.lost_seen = lost_before;
            return Err(TryRecvError::Lagged(missed));
        }
        if at.next == self.tail {
            return Err(if self.senders == 0 {
                TryRecvError::Closed
            } else {
                TryRecvError::Empty
            });
        }
        let value = self
            .slot(at.next)
            .value
            .clone()
            .expect("every position below tail holds a value");
        at.next += 1;
        Ok(value)
    }
}

struct Shared<T> {
    state: RefCell<State<T>>,
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

/// Sends values to every receiver; clone it for more senders.
pub struct Sender<T> {
    shared: Rc<Shared<T>>,
}

/// Receives every value sent after it subscribed (unless it lags).
pub struct Receiver<T> {
    shared: Rc<Shared<T>>,
    at: Cursor,
}

/// Creates a broadcast channel holding the last `capacity` values.
///
/// # Panics
///
/// If `capacity` is zero.
///
/// # Examples
///
/// ```
/// use ringloop::sync::broadcast::{self, error::RecvError};
///
/// ringloop::block_on(async {
///     let (tx, mut rx) = broadcast::channel(2);
///     let mut late = tx.subscribe();
///     for i in 0..5 {
///         tx.send(i).unwrap();
///     }
///     // A ring of 2: values 0, 1 and 2 were overwritten before anyone read them.
///     assert_eq!(rx.recv().await, Err(RecvError::Lagged(3)));
///     assert_eq!(rx.recv().await, Ok(3));
///     assert_eq!(rx.recv().await, Ok(4));
///     assert_eq!(late.recv().await, Err(RecvError::Lagged(3)));
///     drop(tx);
///     assert_eq!(rx.recv().await, Err(RecvError::Closed));
/// });
/// ```
#[track_caller]
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(
        capacity > 0,
        "broadcast::channel: capacity must be at least 1"
    );
    let shared = Rc::new(Shared {
        state: RefCell::new(State {
            slots: (0..capacity)
                .map(|_| Slot {
                    value: None,
                    lost_before: 0,
                })
                .collect(),
            tail: 0,
            lost: 0,
            senders: 1,
            receivers: 1,
            waiters: WaitList::new(),
            scratch: Vec::new(),
        }),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver {
            shared,
            at: Cursor {
                next: 0,
                lost_seen: 0,
            },
        },
    )
}

impl<T> Sender<T> {
    /// Sends `value` to every receiver; returns how many receivers there are. Never waits.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if no receiver is left.
    pub fn send(&self, value: T) -> Result<usize, SendError<T>> {
        let mut state = self.shared.state.borrow_mut();
        if state.receivers == 0 {
            return Err(SendError(value));
        }
        let receivers = state.receivers;
        let pos = state.tail;
        let lost_before = state.lost;
        let slot = state.slot_mut(pos);
        slot.lost_before = lost_before;
        let old = slot.value.replace(value);
        state.tail += 1;
        let waiting = !state.waiters.is_empty();
        drop(state);
        // The overwritten value may own anything: drop it outside the borrow.
        drop(old);
        if waiting {
            self.shared.wake_receivers();
        }
        Ok(receivers)
    }

    /// Records `n` values as lost at this point of the stream: receivers get
    /// `Lagged` for them as if they had been sent and overwritten. For the shared event bus,
    /// whose forwarding queue drops events for a shard that falls behind.
    pub(crate) fn send_lost(&self, n: u64) {
        if n == 0 {
            return;
        }
        self.shared.state.borrow_mut().lost += n;
        self.shared.wake_receivers();
    }

    /// A new receiver that sees values sent from now on.
    pub fn subscribe(&self) -> Receiver<T> {
        let mut state = self.shared.state.borrow_mut();
        state.receivers += 1;
        Receiver {
            shared: self.shared.clone(),
            at: state.cursor(),
        }
    }

    /// Live receivers.
    pub fn receiver_count(&self) -> usize {
        self.shared.state.borrow().receivers
    }

    /// Whether both senders feed the same channel.
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Rc::ptr_eq(&self.shared, &other.shared)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.state.borrow_mut().senders += 1;
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.shared.state.borrow_mut();
        state.senders -= 1;
        let last = state.senders == 0;
        drop(state);
        if last {
            self.shared.wake_receivers();
        }
    }
}

impl<T: Clone> Receiver<T> {
    /// Receives the next value (a clone of it).
    ///
    /// # Errors
    ///
    /// [`RecvError::Lagged(n)`](RecvError::Lagged) if `n` values were overwritten before
    /// this receiver read them (the next call returns the oldest value still held);
    /// [`RecvError::Closed`] once every sender is gone and everything was received.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the receiver moves past a value only when the future returns it.
    pub fn recv(&mut self) -> Recv<'_, T> {
        Recv {
            rx: self,
            key: None,
        }
    }

    /// Receives the next value if there is one now.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`], [`TryRecvError::Lagged`] or [`TryRecvError::Closed`].
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.shared.state.borrow().take(&mut self.at)
    }
}

impl<T> Receiver<T> {
    /// A new receiver of the same channel that sees values sent from now on.
    pub fn resubscribe(&self) -> Receiver<T> {
        let mut state = self.shared.state.borrow_mut();
        state.receivers += 1;
        Receiver {
            shared: self.shared.clone(),
            at: state.cursor(),
        }
    }

    /// Values sent that this receiver has not read yet (lagged ones included).
    pub fn len(&self) -> usize {
        (self.shared.state.borrow().tail - self.at.next) as usize
    }

    /// Whether this receiver has read everything sent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.state.borrow_mut().receivers -= 1;
    }
}

/// The future returned by [`Receiver::recv`].
#[must_use = "futures do nothing unless awaited"]
pub struct Recv<'a, T> {
    rx: &'a mut Receiver<T>,
    key: Option<usize>,
}

impl<T: Clone> Future for Recv<'_, T> {
    type Output = Result<T, RecvError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut spent = std::task::ready!(crate::task::budget::poll_proceed(cx));
        let this = &mut *self;
        let mut state = this.rx.shared.state.borrow_mut();
        if let Some(key) = this.key {
            if state.waiters.notified(key).is_some() {
                state.waiters.remove(key);
                this.key = None;
            }
        }
        let outcome = match state.take(&mut this.rx.at) {
            Ok(value) => {
                spent.made_progress();
                Ok(value)
            }
            Err(TryRecvError::Closed) => Err(RecvError::Closed),
            Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
            Err(TryRecvError::Empty) => {
                match this.key {
                    Some(key) => state.waiters.register(key, cx.waker()),
                    None => this.key = Some(state.waiters.push(cx.waker(), 1)),
                }
                return Poll::Pending;
            }
        };
        if let Some(key) = this.key.take() {
            state.waiters.remove(key);
        }
        Poll::Ready(outcome)
    }
}

impl<T> Drop for Recv<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.rx.shared.state.borrow_mut().waiters.remove(key);
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("receivers", &self.receiver_count())
            .finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("next", &self.at.next)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv")
            .field("waiting", &self.key.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::channel;
    use super::error::TryRecvError;

    /// Values lost on the way in are reported as `Lagged` at their place in the stream, and
    /// take no slot: they never push out a value that arrived.
    #[test]
    fn lost_values_lag_in_place_without_taking_a_slot() {
        let (tx, mut rx) = channel::<u32>(2);
        tx.send(1).unwrap();
        tx.send_lost(3);
        tx.send(2).unwrap();
        tx.send_lost(4);
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Lagged(3)));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Lagged(4)));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

        // Overwritten and lost values before the oldest held one count together.
        let mut late = tx.subscribe();
        tx.send(3).unwrap();
        tx.send_lost(5);
        tx.send(4).unwrap();
        tx.send(5).unwrap();
        assert_eq!(late.try_recv(), Err(TryRecvError::Lagged(1 + 5)));
        assert_eq!(late.try_recv(), Ok(4));
        assert_eq!(late.try_recv(), Ok(5));
        // A new receiver is not told about losses before it subscribed.
        let mut fresh = tx.subscribe();
        assert_eq!(fresh.try_recv(), Err(TryRecvError::Empty));
    }
}
