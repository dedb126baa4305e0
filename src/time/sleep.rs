//! `Sleep`: a future that completes at an `Instant`.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::Instant;
use crate::runtime::{context, Core};

/// How far away "never" is: deadlines beyond it are clamped (about 30 years).
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// Waits until `duration` has passed on the runtime's clock.
///
/// The sleep is registered on its first poll; dropping it cancels it. It never completes
/// early. On an idle runtime it completes within a few tens of microseconds after the
/// deadline; a busy runtime notices at its next turn.
///
/// # Panics
///
/// Outside a runtime.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// ringloop::block_on(async {
///     let start = Instant::now();
///     ringloop::time::sleep(Duration::from_micros(300)).await;
///     assert!(start.elapsed() >= Duration::from_micros(300));
/// });
/// ```
#[track_caller]
pub fn sleep(duration: Duration) -> Sleep {
    let core = context::current();
    let now = core.timers.now();
    let deadline = now
        .checked_add(duration)
        .unwrap_or_else(|| now + FAR_FUTURE);
    Sleep {
        core,
        deadline,
        entry: None,
    }
}

/// Waits until `deadline`: a [`time::Instant`](Instant) or a `std::time::Instant`. See
/// [`sleep`].
///
/// # Panics
///
/// Outside a runtime.
#[track_caller]
pub fn sleep_until(deadline: impl Into<Instant>) -> Sleep {
    Sleep {
        core: context::current(),
        deadline: deadline.into().into_std(),
        entry: None,
    }
}

/// The future returned by [`sleep`] and [`sleep_until`].
#[must_use = "a Sleep does nothing unless awaited"]
pub struct Sleep {
    core: Rc<Core>,
    deadline: std::time::Instant,
    /// The wheel entry, once polled.
    entry: Option<usize>,
}

impl Sleep {
    /// The instant this sleep completes at.
    pub fn deadline(&self) -> Instant {
        Instant::from_std(self.deadline)
    }

    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        match self.entry {
            Some(key) => self.core.timers.wheel.borrow().is_fired(key),
            None => self.core.timers.now() >= self.deadline,
        }
    }

    /// Moves the deadline, keeping the registration (no allocation).
    pub fn reset(&mut self, deadline: impl Into<Instant>) {
        let deadline = deadline.into().into_std();
        self.deadline = deadline;
        if let Some(key) = self.entry {
            let tick = self.core.timers.deadline_tick(deadline);
            self.core.timers.wheel.borrow_mut().reset(key, tick);
        }
    }

    /// The current reading of the clock of this sleep's runtime.
    pub(crate) fn now(&self) -> Instant {
        Instant::from_std(self.core.timers.now())
    }

    pub(crate) fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        poll_wheel(&self.core, self.deadline, &mut self.entry, cx)
    }
}

/// Polls a sleep until `deadline` on `core`'s wheel: `entry` is its wheel entry, inserted on
/// the first poll that finds the deadline ahead. The caller removes the entry when done.
pub(crate) fn poll_wheel(
    core: &Core,
    deadline: std::time::Instant,
    entry: &mut Option<usize>,
    cx: &mut Context<'_>,
) -> Poll<()> {
    let timers = &core.timers;
    let mut wheel = timers.wheel.borrow_mut();
    match *entry {
        Some(key) => {
            if wheel.is_fired(key) {
                return Poll::Ready(());
            }
            crate::task::waker::register(wheel.value_mut(key), cx.waker());
            Poll::Pending
        }
        None => {
            let tick = timers.deadline_tick(deadline);
            // `elapsed` trails the real clock, so this never completes early.
            if tick <= wheel.elapsed() {
                return Poll::Ready(());
            }
            *entry = Some(wheel.insert(tick, Some(cx.waker().clone())));
            Poll::Pending
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.poll_elapsed(cx)
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.entry.take() {
            let waker = self.core.timers.wheel.borrow_mut().remove(key);
            drop(waker);
        }
    }
}

impl std::fmt::Debug for Sleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}
