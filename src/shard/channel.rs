//! A cross-shard channel: many senders on any threads, one receiver, bounded.
//!
//! Senders wait (asynchronously) while the channel is full, so a fast producer cannot grow
//! memory without bound. The receiver's waker is a task waker, so a send from another shard
//! wakes the receiving shard through its remote queue and ring: nobody polls.
//!
//! The receiver takes the whole shared queue in one lock (a swap with its empty local queue)
//! and hands the values out without the lock, so the lock's cache line moves between the two
//! cores once per batch, not once per message. Values in the receiver's batch still count
//! against the capacity until it reports them consumed, which it does every quarter of the
//! capacity (and whenever it comes back for more): a blocked sender gets room in chunks while
//! the receiver works, and the bound holds exactly. A sender only wakes the receiver when it
//! has parked (its waker is taken by the first send after it), so a busy receiver costs the
//! senders nothing but their lock.

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

struct State<T> {
    queue: VecDeque<T>,
    /// Values the receiver has moved out of `queue` and not yet reported consumed: they still
    /// count against `capacity`.
    held: usize,
    capacity: usize,
    senders: usize,
    receiver_alive: bool,
    recv_waker: Option<Waker>,
    send_wakers: VecDeque<Waker>,
}

struct Chan<T> {
    state: Mutex<State<T>>,
}

impl<T> Chan<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // No user code runs under the lock (wakers are woken after it is released).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Creates a bounded channel for `T` between shards (or any threads).
///
/// # Panics
///
/// If `capacity` is zero.
///
/// # Examples
///
/// ```
/// let (tx, mut rx) = ringloop::shard::channel::<u32>(16);
/// let producer = std::thread::spawn(move || {
///     ringloop::block_on(async move {
///         for i in 0..100 {
///             tx.send(i).await.unwrap();
///         }
///     })
/// });
/// let sum = ringloop::block_on(async move {
///     let mut sum = 0;
///     while let Some(v) = rx.recv().await {
///         sum += v;
///     }
///     sum
/// });
/// producer.join().unwrap();
/// assert_eq!(sum, 4950);
/// ```
pub fn channel<T: Send>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "shard::channel: capacity must be at least 1");
    let chan = Arc::new(Chan {
        state: Mutex::new(State {
            queue: VecDeque::with_capacity(capacity.min(1024)),
            held: 0,
            capacity,
            senders: 1,
            receiver_alive: true,
            recv_waker: None,
            send_wakers: VecDeque::new(),
        }),
    });
    let receiver = Receiver {
        chan: chan.clone(),
        batch: VecDeque::with_capacity(capacity.min(1024)),
        consumed: 0,
        report_every: (capacity / 4).max(1),
    };
    (Sender { chan }, receiver)
}

/// The sending side; clone it for more senders. `Send + Sync` when `T: Send`.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving side (one per channel).
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
    /// The values taken from the shared queue in the last swap, handed out without the lock.
    batch: VecDeque<T>,
    /// Values handed out since the senders were last told (the shared `held` still counts
    /// them).
    consumed: usize,
    /// Tell the senders after this many, so a full channel drains in chunks, not all at once.
    report_every: usize,
}

/// The receiver is gone; the value comes back.
#[derive(PartialEq, Eq)]
pub struct SendError<T>(pub T);

/// Why [`Sender::try_send`] did not send; the value comes back.
#[derive(PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel is at capacity.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the receiving shard dropped its receiver")
    }
}

impl<T> std::error::Error for SendError<T> {}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("TrySendError::Full(..)"),
            TrySendError::Closed(_) => f.write_str("TrySendError::Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("the channel is full; retry later or await send"),
            TrySendError::Closed(_) => f.write_str("the receiving shard dropped its receiver"),
        }
    }
}

impl<T> std::error::Error for TrySendError<T> {}

impl<T: Send> Sender<T> {
    /// Sends `value`, waiting while the channel is full.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if the receiver is gone.
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped before it completes, the value was not sent (it is dropped).
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        let mut value = Some(value);
        poll_fn(|cx| {
            let mut state = self.chan.lock();
            if !state.receiver_alive {
                return Poll::Ready(Err(SendError(value.take().expect("sent once"))));
            }
            if state.queue.len() + state.held < state.capacity {
                state.queue.push_back(value.take().expect("sent once"));
                let waker = state.recv_waker.take();
                drop(state);
                if let Some(waker) = waker {
                    waker.wake();
                }
                return Poll::Ready(Ok(()));
            }
            if !state.send_wakers.iter().any(|w| w.will_wake(cx.waker())) {
                state.send_wakers.push_back(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    /// Sends `value` if there is room now.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] or [`TrySendError::Closed`], with the value.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut state = self.chan.lock();
        if !state.receiver_alive {
            return Err(TrySendError::Closed(value));
        }
        if state.queue.len() + state.held >= state.capacity {
            return Err(TrySendError::Full(value));
        }
        state.queue.push_back(value);
        let waker = state.recv_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.lock().senders += 1;
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.chan.lock();
        state.senders -= 1;
        let waker = if state.senders == 0 {
            state.recv_waker.take()
        } else {
            None
        };
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T: Send> Receiver<T> {
    /// The next value, in the order each sender sent them; `None` once every sender is gone
    /// and the channel is empty.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a value is only taken when the future completes.
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| {
            let mut spent = std::task::ready!(crate::task::budget::poll_proceed(cx));
            if self.batch.is_empty() {
                // The batch is used up: report it and take everything sent since, in one lock.
                let mut state = self.chan.lock();
                let waiting = report_consumed(&mut self.consumed, &mut state);
                std::mem::swap(&mut state.queue, &mut self.batch);
                state.held += self.batch.len();
                let ended = self.batch.is_empty() && state.senders == 0;
                if self.batch.is_empty()
                    && !ended
                    && !state
                        .recv_waker
                        .as_ref()
                        .is_some_and(|w| w.will_wake(cx.waker()))
                {
                    state.recv_waker = Some(cx.waker().clone());
                }
                drop(state);
                wake_all(waiting);
                if ended {
                    return Poll::Ready(None);
                }
            }
            let Some(value) = self.batch.pop_front() else {
                return Poll::Pending;
            };
            spent.made_progress();
            self.consumed += 1;
            if self.consumed >= self.report_every {
                let waiting = report_consumed(&mut self.consumed, &mut self.chan.lock());
                wake_all(waiting);
            }
            Poll::Ready(Some(value))
        })
        .await
    }

    /// Values waiting in the channel.
    pub fn len(&self) -> usize {
        self.batch.len() + self.chan.lock().queue.len()
    }

    /// Whether no value is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Gives the `consumed` values handed out since the last report back to the senders as room,
/// and returns the senders to wake (outside the lock) if there was any.
fn report_consumed<T>(consumed: &mut usize, state: &mut State<T>) -> VecDeque<Waker> {
    if *consumed == 0 {
        return VecDeque::new();
    }
    state.held -= *consumed;
    *consumed = 0;
    // Wake every waiting sender, not one: a waker whose future was dropped would swallow a
    // single wake and leave a live sender waiting forever.
    std::mem::take(&mut state.send_wakers)
}

fn wake_all(wakers: VecDeque<Waker>) {
    for waker in wakers {
        waker.wake();
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.chan.lock();
        state.receiver_alive = false;
        let waiting = std::mem::take(&mut state.send_wakers);
        let queued = std::mem::take(&mut state.queue);
        drop(state);
        // The values' Drop (user code) runs outside the lock.
        drop(queued);
        drop(std::mem::take(&mut self.batch));
        wake_all(waiting);
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}
