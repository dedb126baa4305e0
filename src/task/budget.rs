//! The cooperative budget: how many ready operations a task may consume in one poll before
//! it is made to yield, so a task whose I/O is always ready (a busy multishot receive, a full
//! channel) cannot keep the others from running.
//!
//! The runtime resets the budget before each poll; a resource that is about to hand a task a
//! ready result calls [`poll_proceed`] first. Outside a runtime the budget never runs out.

use std::cell::Cell;
use std::task::{Context, Poll};

/// Ready operations per poll, as tokio's.
const BUDGET: u32 = 128;

thread_local! {
    static REMAINING: Cell<u32> = const { Cell::new(u32::MAX) };
}

/// Gives the task about to be polled a fresh budget.
#[inline]
pub(crate) fn reset() {
    REMAINING.with(|r| r.set(BUDGET));
}

/// Spends one unit. When none is left, wakes the task and returns `Pending`, so the task
/// yields and the others get their turn; the resource keeps its ready result for later. The
/// returned [`Spent`] gives the unit back unless the caller marks that it made progress (a
/// resource that was not ready after all costs nothing).
#[inline]
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<Spent> {
    REMAINING.with(|r| match r.get() {
        0 => {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        n => {
            r.set(n - 1);
            Poll::Ready(Spent { progressed: false })
        }
    })
}

/// One unit of budget, returned on drop unless [`made_progress`](Spent::made_progress).
#[derive(Debug)]
pub(crate) struct Spent {
    progressed: bool,
}

impl Spent {
    #[inline]
    pub(crate) fn made_progress(&mut self) {
        self.progressed = true;
    }
}

impl Drop for Spent {
    #[inline]
    fn drop(&mut self) {
        if !self.progressed {
            REMAINING.with(|r| r.set(r.get().saturating_add(1)));
        }
    }
}
