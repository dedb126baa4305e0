//! `RwLock`: many readers or one writer, held across `.await`, for the tasks of one runtime.
//!
//! A [`Semaphore`] of [`MAX_READS`] permits in front of a `RefCell`: a reader takes one permit,
//! a writer all of them, so the `RefCell` borrows they guard never fail. Waiters are served in
//! order: a waiting writer holds back the readers that come after it, so writers do not
//! starve (tokio's rule).

use std::cell::{Ref, RefCell, RefMut};
use std::fmt;
use std::ops::{Deref, DerefMut};

use super::semaphore::{Semaphore, SemaphorePermit};
use super::TryLockError;

/// The most readers that hold an [`RwLock`] at once (tokio's figure).
const MAX_READS: u32 = u32::MAX >> 3;

/// A reader-writer lock for a value shared by the tasks of one runtime, held across `.await`.
///
/// The same shape as `tokio::sync::RwLock`, local (neither `Send` nor `Sync`): share it with
/// `Rc`. No poisoning.
///
/// # Examples
///
/// ```
/// use ringloop::sync::RwLock;
///
/// ringloop::block_on(async {
///     let config = RwLock::new(String::from("v1"));
///     {
///         let a = config.read().await;
///         let b = config.read().await; // readers share the lock
///         assert_eq!((a.as_str(), b.as_str()), ("v1", "v1"));
///     }
///     config.write().await.push_str("-patched");
///     assert_eq!(*config.read().await, "v1-patched");
/// });
/// ```
pub struct RwLock<T: ?Sized> {
    permits: Semaphore,
    value: RefCell<T>,
}

/// A read lock: derefs to the value.
pub struct RwLockReadGuard<'a, T: ?Sized> {
    // Declared first, so dropped first: the borrow ends before the permit goes back.
    value: Ref<'a, T>,
    _permit: SemaphorePermit<'a>,
}

/// The write lock: derefs mutably to the value.
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    value: RefMut<'a, T>,
    _permits: SemaphorePermit<'a>,
}

impl<T> RwLock<T> {
    /// An unlocked lock holding `value`.
    pub fn new(value: T) -> RwLock<T> {
        RwLock {
            permits: Semaphore::new(MAX_READS as usize),
            value: RefCell::new(value),
        }
    }

    /// The value, out of the lock.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Waits until no writer holds or waits before this call, then reads.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped `read` leaves the queue.
    pub async fn read(&self) -> RwLockReadGuard<'_, T> {
        let permit = self
            .permits
            .acquire()
            .await
            .expect("a lock's semaphore is never closed");
        self.read_guard(permit)
    }

    /// Waits until nobody holds the lock and those who came first are served, then writes.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped `write` leaves the queue, and readers behind it go ahead.
    pub async fn write(&self) -> RwLockWriteGuard<'_, T> {
        let permits = self
            .permits
            .acquire_many(MAX_READS)
            .await
            .expect("a lock's semaphore is never closed");
        self.write_guard(permits)
    }

    /// Reads if no writer holds the lock or waits for it now.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if a writer holds it or anyone waits.
    pub fn try_read(&self) -> Result<RwLockReadGuard<'_, T>, TryLockError> {
        let permit = self.permits.try_acquire().map_err(|_| TryLockError(()))?;
        Ok(self.read_guard(permit))
    }

    /// Writes if nobody holds the lock or waits for it now.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if it is held or waited for.
    pub fn try_write(&self) -> Result<RwLockWriteGuard<'_, T>, TryLockError> {
        let permits = self
            .permits
            .try_acquire_many(MAX_READS)
            .map_err(|_| TryLockError(()))?;
        Ok(self.write_guard(permits))
    }

    /// The value, through an exclusive reference to the lock (no lock needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    fn read_guard<'a>(&'a self, permit: SemaphorePermit<'a>) -> RwLockReadGuard<'a, T> {
        RwLockReadGuard {
            // A reader's permit means no writer holds all of them: no mutable borrow exists.
            value: self.value.borrow(),
            _permit: permit,
        }
    }

    fn write_guard<'a>(&'a self, permits: SemaphorePermit<'a>) -> RwLockWriteGuard<'a, T> {
        RwLockWriteGuard {
            // Every permit is here: no other borrow exists.
            value: self.value.borrow_mut(),
            _permits: permits,
        }
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.value.try_borrow() {
            Ok(value) => d.field("value", &&*value),
            Err(_) => d.field("value", &format_args!("<write-locked>")),
        };
        d.finish()
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
