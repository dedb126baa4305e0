//! Pausing the runtime's clock, for tests: `pause`, `advance`, `resume`.

use std::time::Duration;

use crate::runtime::context;

/// Freezes the current runtime's clock, for tests of timeouts, retries and intervals.
///
/// While paused, [`Instant::now`](super::Instant::now) stands still and timers fire only as the
/// clock is moved: by [`advance`], or by the runtime itself when every task waits on a timer
/// or on a peer (the clock then jumps to the next deadline, so a test's hour-long sleep
/// returns at once, after everything due before it). While a file operation or a
/// [`spawn_blocking`](crate::spawn_blocking) job is in progress the clock waits for it rather
/// than jump past its timeout. Network peers and child processes are not waited for: a read
/// with a timeout on a silent socket times out at once, as it would after waiting (as in
/// tokio).
///
/// [`Builder::start_paused`](crate::Builder::start_paused) and
/// `#[ringloop::test(start_paused = true)]` start a runtime paused.
///
/// # Panics
///
/// Outside a runtime, or if the clock is already paused.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ringloop::time::{self, Instant};
///
/// ringloop::block_on(async {
///     time::pause();
///     let start = Instant::now();
///     let slow = time::timeout(Duration::from_secs(30), time::sleep(Duration::from_secs(60)));
///     assert!(slow.await.is_err());
///     assert_eq!(start.elapsed(), Duration::from_secs(30));
/// });
/// ```
#[track_caller]
pub fn pause() {
    let core = context::current();
    assert!(
        core.timers.pause(),
        "ringloop::time::pause: the clock is already paused"
    );
}

/// Lets a paused clock run again, from where it stands (the time it spent paused is not
/// caught up).
///
/// # Panics
///
/// Outside a runtime, or if the clock is not paused.
#[track_caller]
pub fn resume() {
    let core = context::current();
    assert!(
        core.timers.clock.resume(),
        "ringloop::time::resume: the clock is not paused"
    );
}

/// Moves a paused clock forward by `duration` and wakes every timer due by then; they run
/// before the caller continues (which yields once).
///
/// The timers do not fire one by one at their own instants: a sleep that, when woken,
/// starts another sleep due before the new time sees that one fire at the new time. To let
/// each timer fire at its own instant, `sleep` instead and let the runtime move the clock.
///
/// # Panics
///
/// Outside a runtime, or if the clock is not paused.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use std::time::Duration;
/// use ringloop::time;
///
/// ringloop::block_on(async {
///     time::pause();
///     let fired = Rc::new(Cell::new(false));
///     let flag = fired.clone();
///     ringloop::spawn(async move {
///         time::sleep(Duration::from_millis(500)).await;
///         flag.set(true);
///     });
///     ringloop::task::yield_now().await; // the task starts its sleep
///     time::advance(Duration::from_millis(499)).await;
///     assert!(!fired.get());
///     time::advance(Duration::from_millis(1)).await;
///     assert!(fired.get());
/// });
/// ```
pub async fn advance(duration: Duration) {
    let core = context::current();
    assert!(
        core.timers.clock.advance(duration),
        "ringloop::time::advance: the clock is not paused"
    );
    // The woken timers' tasks are queued now, ahead of this one's yield.
    core.fire_expired_timers();
    crate::task::yield_now().await;
}
