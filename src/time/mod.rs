//! Time: sleeps, timeouts and intervals on the runtime's timer wheel.
//!
//! Deadlines are [`Instant`]s on the runtime's clock, which is the system's unless a test
//! [`pause`]s it (then it moves only by [`advance`], or when every task waits on a timer or a
//! peer); the functions also take `std::time::Instant`s. The wheel ticks in microseconds (a deadline rounds up
//! to the next tick, so nothing fires early) and the reactor sleeps in the ring with a
//! nanosecond timeout up to the next deadline, so sub-millisecond sleeps are honoured: an idle
//! runtime wakes within tens of microseconds of a deadline, not a millisecond later.
//!
//! The wheel (`wheel.rs`) has 11 levels of 64 slots: level 0 slots are 1 µs, level 1 slots
//! 64 µs, level 2 about 4 ms, and so on, covering every representable deadline. Insert and
//! cancel are O(1); dropping a [`Sleep`] removes its entry.
#![forbid(unsafe_code)]

pub(crate) mod clock;
mod instant;
mod interval;
mod pause;
pub(crate) mod sleep;
mod timeout;
pub(crate) mod wheel;

pub use instant::Instant;
pub use interval::{interval, interval_at, Interval, MissedTickBehavior};
pub use pause::{advance, pause, resume};
pub use sleep::{sleep, sleep_until, Sleep};
pub use timeout::{timeout, timeout_at, Elapsed, Timeout};
