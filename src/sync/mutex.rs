//! `Mutex`: a lock that may be held across `.await`, for the tasks of one runtime.
//!
//! A `RefCell` cannot be borrowed across an `.await` safely: another task that borrows it
//! meanwhile panics. A `Mutex` makes that task wait instead. It is a one-permit [`Semaphore`]
//! in front of a `RefCell`: the permit says whose turn it is, so the `RefCell` borrow it guards
//! never fails. Waiters are served first come, first served, like tokio's.

use std::cell::{RefCell, RefMut};
use std::fmt;
use std::ops::{Deref, DerefMut};

use super::semaphore::{Semaphore, SemaphorePermit};

/// A lock for a value shared by the tasks of one runtime, held across `.await` points.
///
/// The same shape as `tokio::sync::Mutex`, local (neither `Send` nor `Sync`): share it with
/// `Rc`. No poisoning: a task that panics while holding the lock releases it as it unwinds.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use ringloop::sync::Mutex;
///
/// ringloop::block_on(async {
///     let log = Rc::new(Mutex::new(Vec::new()));
///     let tasks: Vec<_> = (0..3)
///         .map(|i| {
///             let log = log.clone();
///             ringloop::spawn(async move {
///                 let mut log = log.lock().await;
///                 log.push(format!("{i} in"));
///                 // Held across an await: the other tasks wait their turn.
///                 ringloop::task::yield_now().await;
///                 log.push(format!("{i} out"));
///             })
///         })
///         .collect();
///     for t in tasks {
///         t.await.unwrap();
///     }
///     assert_eq!(log.lock().await.len(), 6);
/// });
/// ```
pub struct Mutex<T: ?Sized> {
    turn: Semaphore,
    value: RefCell<T>,
}

/// The lock, held: derefs to the value; dropping it lets the next waiter in.
pub struct MutexGuard<'a, T: ?Sized> {
    // Declared first, so dropped first: the borrow ends before the next waiter is let in.
    value: RefMut<'a, T>,
    _turn: SemaphorePermit<'a>,
}

/// [`Mutex::try_lock`] found the lock held (or waited for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TryLockError(pub(super) ());

impl fmt::Display for TryLockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the lock is held or waited for")
    }
}

impl std::error::Error for TryLockError {}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            turn: Semaphore::new(1),
            value: RefCell::new(value),
        }
    }

    /// The value, out of the mutex.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Waits for the lock, then holds it until the guard is dropped.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a `lock` dropped while it waits leaves the queue, and a turn it had been
    /// given goes to the next waiter.
    pub async fn lock(&self) -> MutexGuard<'_, T> {
        let turn = self
            .turn
            .acquire()
            .await
            .expect("a mutex's semaphore is never closed");
        self.guard(turn)
    }

    /// Takes the lock if it is free now and no task waits for it.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if it is held or waited for.
    pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, TryLockError> {
        let turn = self.turn.try_acquire().map_err(|_| TryLockError(()))?;
        Ok(self.guard(turn))
    }

    /// The value, through an exclusive reference to the mutex (no lock needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    fn guard<'a>(&'a self, turn: SemaphorePermit<'a>) -> MutexGuard<'a, T> {
        MutexGuard {
            // The permit is the only way to this borrow, and there is one permit.
            value: self.value.borrow_mut(),
            _turn: turn,
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        // A held lock holds the borrow: the value shows only while nobody holds it.
        match self.value.try_borrow() {
            Ok(value) => d.field("value", &&*value),
            Err(_) => d.field("value", &format_args!("<locked>")),
        };
        d.finish()
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
