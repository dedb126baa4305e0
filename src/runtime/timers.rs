//! The runtime's clock and its timer wheel: `Instant`s in, wheel ticks out.
//!
//! A tick is one microsecond since the runtime started. Deadlines round *up* to a tick and the
//! current time rounds *down*, so a timer never fires before its `Instant`. The ring wait's
//! timeout is computed from the next deadline in nanoseconds, so precision is not limited by
//! the tick.

use std::cell::RefCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::time::clock::Clock;
use crate::time::wheel::Wheel;

#[derive(Debug)]
pub(crate) struct Timers {
    pub(crate) clock: Clock,
    start: Instant,
    pub(crate) wheel: RefCell<Wheel<Option<Waker>>>,
    /// Wakers of timers that just fired, woken after the wheel's borrow ends.
    due: RefCell<Vec<Waker>>,
}

impl Timers {
    pub(crate) fn new(paused: bool) -> Self {
        let clock = Clock::new(paused);
        Timers {
            start: clock.now(),
            clock,
            wheel: RefCell::new(Wheel::new()),
            due: RefCell::new(Vec::new()),
        }
    }

    /// The runtime clock's reading (see [`crate::time::Instant`]).
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Freezes the clock (see [`crate::time::pause`]); `false` if it already was.
    ///
    /// It stops on the next tick boundary (less than a microsecond ahead): the clock then
    /// jumps from deadline to deadline exactly, since a deadline a whole number of
    /// microseconds away is itself on a boundary.
    pub(crate) fn pause(&self) -> bool {
        self.clock
            .pause_at(|now| self.instant_of(self.deadline_tick(now)).unwrap_or(now))
    }

    /// The first tick at or after `deadline`.
    pub(crate) fn deadline_tick(&self, deadline: Instant) -> u64 {
        let since = deadline.saturating_duration_since(self.start);
        // 64-bit arithmetic only: this runs for every timer inserted.
        let micros = u64::from(since.subsec_nanos().div_ceil(1_000));
        since
            .as_secs()
            .saturating_mul(1_000_000)
            .saturating_add(micros)
    }

    /// The last tick at or before `now`.
    pub(crate) fn now_tick(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.start);
        let micros = u64::from(since.subsec_micros());
        since
            .as_secs()
            .saturating_mul(1_000_000)
            .saturating_add(micros)
    }

    /// The instant a tick starts at, saturating far in the future.
    pub(crate) fn instant_of(&self, tick: u64) -> Option<Instant> {
        self.start.checked_add(Duration::from_micros(tick))
    }

    /// Wakes every timer due now. Returns how many fired.
    ///
    /// Wakers run after the wheel's borrow ends, each under `catch_unwind`: a panicking waker
    /// (user code) costs no other timer its wake. Its panic is then resumed.
    #[inline]
    pub(crate) fn fire_expired(&self) -> u64 {
        if self.wheel.borrow().len() == 0 {
            // No clock read when there is no timer: it is a vDSO call, but not free. (This
            // check runs twice a turn; the rest is out of line.)
            return 0;
        }
        self.fire_expired_slow()
    }

    fn fire_expired_slow(&self) -> u64 {
        let mut due = self.due.take();
        {
            let mut wheel = self.wheel.borrow_mut();
            let now = self.now_tick(self.clock.now());
            wheel.advance(now, |_, waker| due.extend(waker.take()));
        }
        let fired = due.len() as u64;
        let mut first_panic = None;
        for waker in due.drain(..) {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| waker.wake())) {
                first_panic.get_or_insert(panic);
            }
        }
        *self.due.borrow_mut() = due;
        if let Some(panic) = first_panic {
            resume_unwind(panic);
        }
        fired
    }

    /// Moves a paused clock to the next timer's deadline (it fires at the next
    /// [`fire_expired`](Self::fire_expired)). `false` if no timer is pending.
    pub(crate) fn advance_to_next(&self) -> bool {
        let Some(next) = self.wheel.borrow().next_deadline() else {
            return false;
        };
        match self.instant_of(next) {
            Some(at) => self.clock.advance_to(at),
            // Beyond what an `Instant` holds: such a timer never fires.
            None => return false,
        }
        true
    }

    /// How long the reactor may sleep before the next timer is due; `None` when none is pending.
    #[inline]
    pub(crate) fn time_to_next(&self) -> Option<Duration> {
        let next = self.wheel.borrow().next_deadline()?;
        // A deadline beyond what `Instant` can hold never fires: wait without a timeout.
        let at = self.instant_of(next)?;
        Some(at.saturating_duration_since(self.clock.now()))
    }
}
