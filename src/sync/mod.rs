//! Synchronisation between tasks of one runtime: channels, notification, permits.
//!
//! The same names and errors as `tokio::sync`: [`mpsc`], [`oneshot`], [`broadcast`],
//! [`watch`], [`Notify`], [`Semaphore`], the locks held across `.await`, [`Mutex`] and
//! [`RwLock`], [`Barrier`], and tokio-util's [`CancellationToken`]. These are *local*: built on `Rc`, `Cell` and
//! `RefCell`, with no atomics and no locks, so they are neither `Send` nor `Sync` and cost a
//! few plain loads and stores per operation. To talk between shards, use
//! [`shard::channel`](crate::shard::channel) or [`SharedBus`](crate::event::SharedBus).
//!
//! Every waiting operation is cancel safe in the same way: a future dropped while it waits
//! leaves its queue at once, and if it had already been handed something (a permit, a slot,
//! a notification) that goes to the next waiter, so nothing is lost and no waiter leaks.
//! Waiters queue first come, first served.
#![forbid(unsafe_code)]

mod barrier;
pub mod broadcast;
mod cancel;
pub mod mpsc;
mod mutex;
mod notify;
pub mod oneshot;
mod rwlock;
mod select;
mod semaphore;
mod wait_list;
pub mod watch;

pub use barrier::{Barrier, BarrierWaitResult};
pub use cancel::{CancellationToken, Cancelled, CancelledOwned, DropGuard};
pub use mutex::{Mutex, MutexGuard, TryLockError};
pub use notify::{Notified, Notify};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{
    Acquire, AcquireError, OwnedSemaphorePermit, Semaphore, SemaphorePermit, TryAcquireError,
};
