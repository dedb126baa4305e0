//! The state one channel's senders and receiver share, and the operations on it.
//!
//! Capacity is counted in slots: `queue.len() + reserved <= capacity`, where `reserved` counts
//! slots handed to a sender that has not sent yet (a [`Permit`](super::Permit), or a waiting
//! sender that was granted a slot but not yet polled). A freed slot goes straight to the front
//! waiting sender (FIFO, no barging), and a sender dropped after it was granted a slot gives it
//! to the next one, so no wake is ever lost. The unbounded channel is the same with
//! `capacity = usize::MAX`, so it never waits.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::error::{SendError, TryRecvError, TrySendError};
use crate::sync::wait_list::{wake_then_recycle, Notified, WaitList};

struct Chan<T> {
    queue: VecDeque<T>,
    capacity: usize,
    reserved: usize,
    senders: usize,
    /// No new sends: the receiver closed or was dropped.
    closed: bool,
    rx_alive: bool,
    rx_waker: Option<Waker>,
    send_waiters: WaitList,
    /// Reused for wake-everyone, so that waking allocates nothing once warm.
    scratch: Vec<Waker>,
}

impl<T> Chan<T> {
    fn has_room(&self) -> bool {
        self.queue.len() + self.reserved < self.capacity
    }

    /// Hands one free slot to the front waiting sender, if there is a slot and a sender.
    #[must_use = "the returned waker must be woken"]
    fn grant(&mut self) -> Option<Waker> {
        if self.closed || !self.has_room() || self.send_waiters.is_empty() {
            return None;
        }
        self.reserved += 1;
        self.send_waiters.notify_front()
    }

    /// A reserved slot goes unused: give it to the next sender, and tell a closed receiver
    /// waiting for outstanding permits.
    #[must_use = "the returned wakers must be woken"]
    fn release(&mut self) -> (Option<Waker>, Option<Waker>) {
        self.reserved -= 1;
        let rx = if self.closed && self.reserved == 0 {
            self.rx_waker.take()
        } else {
            None
        };
        (self.grant(), rx)
    }

    /// The receiver will see no more values than those buffered now.
    fn finished(&self) -> bool {
        (self.senders == 0 || self.closed) && self.reserved == 0
    }

    /// Pushes a value whose slot is accounted for; returns the receiver's waker, or the value
    /// if the receiver is gone (to be dropped outside the borrow).
    fn push(&mut self, value: T) -> Result<Option<Waker>, T> {
        if !self.rx_alive {
            return Err(value);
        }
        self.queue.push_back(value);
        Ok(self.rx_waker.take())
    }
}

fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// The sending half shared by [`Sender`](super::Sender) and
/// [`UnboundedSender`](super::UnboundedSender); counts senders.
pub(super) struct Tx<T> {
    chan: Rc<RefCell<Chan<T>>>,
}

/// The receiving half shared by [`Receiver`](super::Receiver) and
/// [`UnboundedReceiver`](super::UnboundedReceiver).
pub(super) struct Rx<T> {
    chan: Rc<RefCell<Chan<T>>>,
}

pub(super) fn new<T>(capacity: usize) -> (Tx<T>, Rx<T>) {
    let chan = Rc::new(RefCell::new(Chan {
        queue: VecDeque::with_capacity(capacity.min(1024)),
        capacity,
        reserved: 0,
        senders: 1,
        closed: false,
        rx_alive: true,
        rx_waker: None,
        send_waiters: WaitList::new(),
        scratch: Vec::new(),
    }));
    (Tx { chan: chan.clone() }, Rx { chan })
}

impl<T> Tx<T> {
    pub(super) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut chan = self.chan.borrow_mut();
        if chan.closed {
            return Err(TrySendError::Closed(value));
        }
        // Waiting senders were first: a value sent past them would starve them.
        if !chan.has_room() || !chan.send_waiters.is_empty() {
            return Err(TrySendError::Full(value));
        }
        let pushed = chan.push(value);
        drop(chan);
        match pushed {
            Ok(rx) => wake(rx),
            Err(_) => unreachable!("rx_alive is false only once closed"),
        }
        Ok(())
    }

    pub(super) fn try_reserve(&self) -> Result<(), TrySendError<()>> {
        let mut chan = self.chan.borrow_mut();
        if chan.closed {
            return Err(TrySendError::Closed(()));
        }
        if !chan.has_room() || !chan.send_waiters.is_empty() {
            return Err(TrySendError::Full(()));
        }
        chan.reserved += 1;
        Ok(())
    }

    /// Polls for a slot; `key` is the waiter this future queued, if any.
    pub(super) fn poll_reserve(
        &self,
        key: &mut Option<usize>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<()>>> {
        let mut chan = self.chan.borrow_mut();
        if let Some(k) = *key {
            match chan.send_waiters.notified(k) {
                None => {
                    chan.send_waiters.register(k, cx.waker());
                    return Poll::Pending;
                }
                Some(how) => {
                    chan.send_waiters.remove(k);
                    *key = None;
                    if how == Notified::One {
                        if !chan.closed {
                            return Poll::Ready(Ok(()));
                        }
                        // Granted, then closed: the slot is of no use now.
                        let (next, rx) = chan.release();
                        drop(chan);
                        wake(next);
                        wake(rx);
                        return Poll::Ready(Err(SendError(())));
                    }
                }
            }
        }
        if chan.closed {
            return Poll::Ready(Err(SendError(())));
        }
        if chan.has_room() && chan.send_waiters.is_empty() {
            chan.reserved += 1;
            return Poll::Ready(Ok(()));
        }
        *key = Some(chan.send_waiters.push(cx.waker(), 1));
        Poll::Pending
    }

    /// A waiting reserve is dropped: forget it, and pass on a slot it had been granted.
    pub(super) fn cancel_reserve(&self, key: usize) {
        let mut chan = self.chan.borrow_mut();
        if chan.send_waiters.remove(key) == Some(Notified::One) {
            let (next, rx) = chan.release();
            drop(chan);
            wake(next);
            wake(rx);
        }
    }

    /// Sends through a reserved slot (never fails; the value is dropped if the receiver is
    /// gone, as nobody could ever receive it).
    pub(super) fn send_reserved(&self, value: T) {
        let mut chan = self.chan.borrow_mut();
        chan.reserved -= 1;
        let pushed = chan.push(value);
        drop(chan);
        match pushed {
            Ok(rx) => wake(rx),
            Err(value) => drop(value),
        }
    }

    /// A reserved slot is given back unused.
    pub(super) fn release_reserved(&self) {
        let (next, rx) = self.chan.borrow_mut().release();
        wake(next);
        wake(rx);
    }

    pub(super) fn is_closed(&self) -> bool {
        self.chan.borrow().closed
    }

    pub(super) fn same_channel(&self, other: &Tx<T>) -> bool {
        Rc::ptr_eq(&self.chan, &other.chan)
    }

    /// Free slots now.
    pub(super) fn capacity(&self) -> usize {
        let chan = self.chan.borrow();
        chan.capacity - chan.queue.len() - chan.reserved
    }

    pub(super) fn max_capacity(&self) -> usize {
        self.chan.borrow().capacity
    }
}

impl<T> Clone for Tx<T> {
    fn clone(&self) -> Self {
        self.chan.borrow_mut().senders += 1;
        Tx {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Tx<T> {
    fn drop(&mut self) {
        let mut chan = self.chan.borrow_mut();
        chan.senders -= 1;
        let rx = if chan.senders == 0 {
            chan.rx_waker.take()
        } else {
            None
        };
        drop(chan);
        wake(rx);
    }
}

impl<T> Rx<T> {
    /// Polls for the next value; on `Pending` the receiver's waker is registered.
    pub(super) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        // A receiver whose channel is always full must still let other tasks run.
        let mut spent = std::task::ready!(crate::task::budget::poll_proceed(cx));
        let mut chan = self.chan.borrow_mut();
        if let Some(value) = chan.queue.pop_front() {
            spent.made_progress();
            let next = chan.grant();
            drop(chan);
            wake(next);
            return Poll::Ready(Some(value));
        }
        if chan.finished() {
            return Poll::Ready(None);
        }
        crate::task::waker::register(&mut chan.rx_waker, cx.waker());
        Poll::Pending
    }

    /// Moves up to `limit` buffered values into `buf`, or waits for one; `Ready(0)` once the
    /// channel is finished (or `limit` is 0).
    pub(super) fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<T>,
        limit: usize,
    ) -> Poll<usize> {
        if limit == 0 {
            return Poll::Ready(0);
        }
        let mut spent = std::task::ready!(crate::task::budget::poll_proceed(cx));
        let mut chan = self.chan.borrow_mut();
        let n = chan.queue.len().min(limit);
        if n > 0 {
            spent.made_progress();
            buf.extend(chan.queue.drain(..n));
            // Each freed slot goes to a waiting sender, as `n` single receives would give it.
            let mut wakers = std::mem::take(&mut chan.scratch);
            wakers.extend((0..n).map_while(|_| chan.grant()));
            drop(chan);
            wake_then_recycle(wakers, |w| self.chan.borrow_mut().scratch = w);
            return Poll::Ready(n);
        }
        if chan.finished() {
            return Poll::Ready(0);
        }
        crate::task::waker::register(&mut chan.rx_waker, cx.waker());
        Poll::Pending
    }

    /// A pending receive was dropped: its waker must not linger.
    pub(super) fn forget_waker(&mut self) {
        let waker = self.chan.borrow_mut().rx_waker.take();
        drop(waker);
    }

    pub(super) fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut chan = self.chan.borrow_mut();
        if let Some(value) = chan.queue.pop_front() {
            let next = chan.grant();
            drop(chan);
            wake(next);
            return Ok(value);
        }
        if chan.finished() {
            Err(TryRecvError::Disconnected)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    pub(super) fn close(&mut self) {
        let mut chan = self.chan.borrow_mut();
        if chan.closed {
            return;
        }
        chan.closed = true;
        let mut wakers = std::mem::take(&mut chan.scratch);
        chan.send_waiters.notify_all(&mut wakers);
        drop(chan);
        wake_then_recycle(wakers, |w| self.chan.borrow_mut().scratch = w);
    }

    pub(super) fn len(&self) -> usize {
        self.chan.borrow().queue.len()
    }

    pub(super) fn is_closed(&self) -> bool {
        let chan = self.chan.borrow();
        chan.closed || chan.senders == 0
    }

    pub(super) fn sender_count(&self) -> usize {
        self.chan.borrow().senders
    }
}

impl<T> Drop for Rx<T> {
    fn drop(&mut self) {
        self.close();
        let mut chan = self.chan.borrow_mut();
        chan.rx_alive = false;
        let queued = std::mem::take(&mut chan.queue);
        drop(chan);
        // Values may own senders of this very channel: drop them outside the borrow.
        drop(queued);
    }
}
