//! `Interval`: ticks at a fixed period.

use std::future::poll_fn;
use std::task::{Context, Poll};
use std::time::Duration;

use super::sleep::{sleep, sleep_until, Sleep};
use super::Instant;

/// What an [`Interval`] does when ticks were missed (the task was busy past a deadline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissedTickBehavior {
    /// Fire the missed ticks back to back until caught up, keeping the original schedule
    /// (`start + n * period`). The default, as in tokio.
    #[default]
    Burst,
    /// Fire once now, then schedule the next tick a full period after *now*.
    Delay,
    /// Fire once now, then skip to the next tick of the original schedule after now.
    Skip,
}

/// Ticks every `period`, the first tick completing immediately.
///
/// # Panics
///
/// If `period` is zero, or outside a runtime.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// ringloop::block_on(async {
///     let mut every = ringloop::time::interval(Duration::from_millis(1));
///     for _ in 0..3 {
///         every.tick().await; // the first tick is immediate
///     }
/// });
/// ```
#[track_caller]
pub fn interval(period: Duration) -> Interval {
    Interval::new(sleep(Duration::ZERO), period)
}

/// Ticks every `period`, the first tick at `start`.
///
/// # Panics
///
/// If `period` is zero, or outside a runtime.
#[track_caller]
pub fn interval_at(start: impl Into<Instant>, period: Duration) -> Interval {
    Interval::new(sleep_until(start), period)
}

/// A stream of ticks, from [`interval`].
#[derive(Debug)]
pub struct Interval {
    sleep: Sleep,
    period: Duration,
    missed: MissedTickBehavior,
}

impl Interval {
    #[track_caller]
    fn new(sleep: Sleep, period: Duration) -> Interval {
        assert!(
            !period.is_zero(),
            "ringloop::time::interval: the period must be non-zero"
        );
        Interval {
            sleep,
            period,
            missed: MissedTickBehavior::default(),
        }
    }

    /// Completes at the next tick and returns its scheduled instant.
    ///
    /// If the caller fell behind (ticks were missed), what happens depends on
    /// [`MissedTickBehavior`]: by default (`Burst`) the missed ticks complete immediately one
    /// after another until the schedule is caught up.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future before it completes loses no tick.
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick. See [`tick`](Self::tick).
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        std::task::ready!(self.sleep.poll_elapsed(cx));
        let scheduled = self.sleep.deadline();
        let now = self.sleep.now();
        let next = match self.missed {
            MissedTickBehavior::Burst => scheduled + self.period,
            MissedTickBehavior::Delay if now > scheduled + self.period => now + self.period,
            MissedTickBehavior::Skip if now > scheduled + self.period => {
                let behind = now.duration_since(scheduled).as_nanos() / self.period.as_nanos();
                let periods = u32::try_from(behind + 1).unwrap_or(u32::MAX);
                scheduled + self.period * periods
            }
            _ => scheduled + self.period,
        };
        self.sleep.reset(next);
        Poll::Ready(scheduled)
    }

    /// Sets what happens on missed ticks.
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed = behavior;
    }

    /// The current missed-tick behaviour.
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.missed
    }

    /// The period between ticks.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Restarts the schedule: the next tick is one period from now.
    pub fn reset(&mut self) {
        let now = self.sleep.now();
        self.sleep.reset(now + self.period);
    }

    /// Restarts the schedule from now: the next tick is due at once.
    pub fn reset_immediately(&mut self) {
        let now = self.sleep.now();
        self.sleep.reset(now);
    }

    /// Restarts the schedule: the next tick is `after` from now, then one per period.
    pub fn reset_after(&mut self, after: Duration) {
        let now = self.sleep.now();
        self.sleep.reset(now + after);
    }

    /// Restarts the schedule: the next tick is at `deadline`, then one per period.
    pub fn reset_at(&mut self, deadline: impl Into<Instant>) {
        self.sleep.reset(deadline);
    }
}
