//! [`Notify`]: wake one task or every waiting task, without data.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::wait_list::{wake_then_recycle, Notified as How, WaitList};

/// Wakes tasks waiting in [`notified`](Notify::notified), with tokio's permit rule.
///
/// [`notify_one`](Notify::notify_one) wakes the first waiter; with nobody waiting it stores a
/// single permit, so the next `notified().await` completes at once (permits do not add up:
/// two `notify_one` calls with nobody waiting store one). [`notify_waiters`] wakes every
/// waiter, including every `Notified` future created before the call even if not polled yet,
/// and stores no permit.
///
/// [`notify_waiters`]: Notify::notify_waiters
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use ringloop::sync::Notify;
///
/// ringloop::block_on(async {
///     let notify = Rc::new(Notify::new());
///     let waiter = ringloop::spawn({
///         let notify = notify.clone();
///         async move {
///             notify.notified().await;
///             "woken"
///         }
///     });
///     notify.notify_one(); // a permit if the waiter has not started yet
///     assert_eq!(waiter.await.unwrap(), "woken");
/// });
/// ```
pub struct Notify {
    state: RefCell<State>,
}

struct State {
    permit: bool,
    waiters: WaitList,
    /// How many `notify_waiters` calls there were: a `Notified` made before one completes.
    generation: u64,
    scratch: Vec<Waker>,
}

/// The future returned by [`Notify::notified`].
#[must_use = "futures do nothing unless awaited"]
pub struct Notified<'a> {
    notify: &'a Notify,
    stage: Stage,
}

#[derive(Debug, Clone, Copy)]
enum Stage {
    Init { generation: u64 },
    Waiting(usize),
    Done,
}

impl Notify {
    /// A `Notify` with no permit and nobody waiting.
    pub fn new() -> Notify {
        Notify {
            state: RefCell::new(State {
                permit: false,
                waiters: WaitList::new(),
                generation: 0,
                scratch: Vec::new(),
            }),
        }
    }

    /// Waits for a notification.
    ///
    /// Completes on a stored permit (taking it), a [`notify_one`](Notify::notify_one) that
    /// picks this waiter (first come, first served), or any
    /// [`notify_waiters`](Notify::notify_waiters) made after this call.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped `Notified` leaves the queue, and if a `notify_one` had already
    /// picked it, the notification passes to the next waiter (or becomes the permit).
    pub fn notified(&self) -> Notified<'_> {
        Notified {
            notify: self,
            stage: Stage::Init {
                generation: self.state.borrow().generation,
            },
        }
    }

    /// Wakes the first waiter, or stores one permit if nobody waits.
    pub fn notify_one(&self) {
        let mut state = self.state.borrow_mut();
        match state.waiters.notify_front() {
            Some(waker) => {
                drop(state);
                waker.wake();
            }
            None => state.permit = true,
        }
    }

    /// Wakes every waiter (every `Notified` created before this call); stores no permit.
    pub fn notify_waiters(&self) {
        let mut state = self.state.borrow_mut();
        state.generation += 1;
        let mut wakers = std::mem::take(&mut state.scratch);
        state.waiters.notify_all(&mut wakers);
        drop(state);
        wake_then_recycle(wakers, |w| self.state.borrow_mut().scratch = w);
    }
}

impl Default for Notify {
    fn default() -> Self {
        Notify::new()
    }
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.notify.state.borrow_mut();
        match self.stage {
            Stage::Init { generation } => {
                if state.generation != generation || std::mem::take(&mut state.permit) {
                    drop(state);
                    self.stage = Stage::Done;
                    return Poll::Ready(());
                }
                let key = state.waiters.push(cx.waker(), 1);
                drop(state);
                self.stage = Stage::Waiting(key);
                Poll::Pending
            }
            Stage::Waiting(key) => {
                if state.waiters.notified(key).is_none() {
                    state.waiters.register(key, cx.waker());
                    return Poll::Pending;
                }
                state.waiters.remove(key);
                drop(state);
                self.stage = Stage::Done;
                Poll::Ready(())
            }
            Stage::Done => Poll::Ready(()),
        }
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        if let Stage::Waiting(key) = self.stage {
            let how = self.notify.state.borrow_mut().waiters.remove(key);
            if how == Some(How::One) {
                // Picked by notify_one but never saw it: pass it on, so it is not lost.
                self.notify.notify_one();
            }
        }
    }
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.borrow();
        f.debug_struct("Notify")
            .field("permit", &state.permit)
            .field("waiting", &!state.waiters.is_empty())
            .finish()
    }
}

impl fmt::Debug for Notified<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notified")
            .field("stage", &self.stage)
            .finish()
    }
}
