//! `yield_now`: give the other ready tasks, I/O and timers a turn.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Yields to the scheduler: the task goes to the back of the run queue.
///
/// Every ready task polls before this one runs again, and a task that yields in a loop
/// cannot starve I/O or timers (the reactor looks at both between batches of polls).
///
/// # Examples
///
/// ```
/// ringloop::block_on(async {
///     for _ in 0..3 {
///         ringloop::task::yield_now().await;
///     }
/// });
/// ```
pub async fn yield_now() {
    YieldNow { yielded: false }.await
}

struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
