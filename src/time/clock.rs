//! The runtime's clock: the system's, or paused for a test and moved only by hand or when the
//! runtime has nothing left to do but wait for a timer.

use std::cell::Cell;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
enum State {
    /// The system's clock (no pause ever): reading it is one vDSO call.
    Real,
    /// Stands still at `at`.
    Paused { at: Instant },
    /// Runs again from `base`, as of the system instant `since`: the time spent paused is
    /// not caught up, so the clock never jumps backwards.
    Resumed { base: Instant, since: Instant },
}

#[derive(Debug)]
pub(crate) struct Clock {
    state: Cell<State>,
}

impl Clock {
    pub(crate) fn new(paused: bool) -> Clock {
        let state = if paused {
            State::Paused { at: Instant::now() }
        } else {
            State::Real
        };
        Clock {
            state: Cell::new(state),
        }
    }

    #[inline]
    pub(crate) fn now(&self) -> Instant {
        match self.state.get() {
            State::Real => Instant::now(),
            State::Paused { at } => at,
            State::Resumed { base, since } => base + since.elapsed(),
        }
    }

    pub(crate) fn is_paused(&self) -> bool {
        matches!(self.state.get(), State::Paused { .. })
    }

    /// Freezes the clock; `false` if it already was.
    #[cfg(test)]
    pub(crate) fn pause(&self) -> bool {
        self.pause_at(|now| now)
    }

    /// Freezes the clock at `at(now)`, which must not be before `now`; `false` if it already
    /// was frozen.
    pub(crate) fn pause_at(&self, at: impl FnOnce(Instant) -> Instant) -> bool {
        if self.is_paused() {
            return false;
        }
        let now = self.now();
        self.state.set(State::Paused {
            at: at(now).max(now),
        });
        true
    }

    /// Lets the clock run again from where it stands; `false` if it was not paused.
    pub(crate) fn resume(&self) -> bool {
        let State::Paused { at } = self.state.get() else {
            return false;
        };
        self.state.set(State::Resumed {
            base: at,
            since: Instant::now(),
        });
        true
    }

    /// Moves a paused clock forward by `by`; `false` if it is not paused.
    pub(crate) fn advance(&self, by: Duration) -> bool {
        let State::Paused { at } = self.state.get() else {
            return false;
        };
        // Saturates far in the future rather than panicking: "advance forever" is a request
        // a test may make.
        let to = at
            .checked_add(by)
            .unwrap_or_else(|| at + Duration::from_secs(86_400 * 365 * 30));
        self.state.set(State::Paused { at: to });
        true
    }

    /// Moves a paused clock forward to `to` (never back).
    pub(crate) fn advance_to(&self, to: Instant) {
        if let State::Paused { at } = self.state.get() {
            self.state.set(State::Paused { at: at.max(to) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paused_clock_stands_still_and_moves_only_forward() {
        let clock = Clock::new(true);
        let t0 = clock.now();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(clock.now(), t0);
        assert!(clock.advance(Duration::from_secs(5)));
        assert_eq!(clock.now(), t0 + Duration::from_secs(5));
        clock.advance_to(t0);
        assert_eq!(clock.now(), t0 + Duration::from_secs(5), "never backwards");
        assert!(!clock.pause(), "already paused");
    }

    #[test]
    fn a_resumed_clock_runs_on_from_where_it_stood() {
        let clock = Clock::new(false);
        assert!(!clock.resume(), "not paused");
        assert!(
            !clock.advance(Duration::from_secs(1)),
            "a running clock is not moved"
        );
        assert!(clock.pause());
        let frozen = clock.now();
        std::thread::sleep(Duration::from_millis(100));
        assert!(clock.resume());
        let after = clock.now();
        assert!(after >= frozen);
        assert!(
            after - frozen < Duration::from_millis(100),
            "the paused time is not caught up"
        );
    }

    #[test]
    fn advancing_forever_saturates() {
        let clock = Clock::new(true);
        assert!(clock.advance(Duration::MAX));
        assert!(clock.now() > Instant::now() + Duration::from_secs(86_400 * 365));
    }
}
