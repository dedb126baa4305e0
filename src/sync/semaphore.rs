//! [`Semaphore`]: a count of permits, waited for first come, first served.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::wait_list::{wake_then_recycle, Notified, WaitList};

/// A count of permits; acquiring waits while there are too few.
///
/// Waiters are served in order: a waiter asking for many permits is not overtaken by later
/// ones asking for fewer. A permit goes back when its guard is dropped (or is kept for good
/// with `forget`). [`close`](Semaphore::close) fails every waiting and future acquire.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use ringloop::sync::Semaphore;
///
/// ringloop::block_on(async {
///     let limit = Rc::new(Semaphore::new(2));
///     let mut tasks = Vec::new();
///     for _ in 0..10 {
///         let limit = limit.clone();
///         tasks.push(ringloop::spawn(async move {
///             let _permit = limit.acquire().await.unwrap(); // at most 2 tasks past here
///             ringloop::task::yield_now().await;
///         }));
///     }
///     for task in tasks {
///         task.await.unwrap();
///     }
///     assert_eq!(limit.available_permits(), 2);
/// });
/// ```
pub struct Semaphore {
    state: RefCell<State>,
}

struct State {
    permits: usize,
    closed: bool,
    waiters: WaitList,
    scratch: Vec<Waker>,
}

impl State {
    /// Hands permits to the waiters at the front, in order, while there are enough.
    fn grant(&mut self, wakers: &mut Vec<Waker>) {
        if self.closed {
            return;
        }
        while let Some(need) = self.waiters.front_need() {
            if need > self.permits {
                break;
            }
            self.permits -= need;
            wakers.extend(self.waiters.notify_front());
        }
    }
}

/// The semaphore was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcquireError(());

/// Why [`Semaphore::try_acquire`] returned no permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryAcquireError {
    /// The semaphore was closed.
    Closed,
    /// Too few permits now (or others are waiting first).
    NoPermits,
}

/// Permits borrowed from a [`Semaphore`]; dropping it gives them back.
#[must_use = "dropping the permit releases it at once"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    permits: u32,
}

/// Permits from an `Rc<Semaphore>`, for moving into a task; dropping it gives them back.
#[must_use = "dropping the permit releases it at once"]
pub struct OwnedSemaphorePermit {
    sem: Rc<Semaphore>,
    permits: u32,
}

/// The future returned by [`Semaphore::acquire`] and [`Semaphore::acquire_many`].
#[must_use = "futures do nothing unless awaited"]
pub struct Acquire<'a> {
    sem: &'a Semaphore,
    need: u32,
    key: Option<usize>,
}

impl Semaphore {
    /// The most permits a semaphore holds (as tokio: `usize::MAX >> 3`).
    pub const MAX_PERMITS: usize = usize::MAX >> 3;

    /// A semaphore with `permits` permits.
    ///
    /// # Panics
    ///
    /// If `permits` exceeds [`MAX_PERMITS`](Semaphore::MAX_PERMITS).
    #[track_caller]
    pub fn new(permits: usize) -> Semaphore {
        assert!(
            permits <= Self::MAX_PERMITS,
            "Semaphore::new: more than MAX_PERMITS permits"
        );
        Semaphore {
            state: RefCell::new(State {
                permits,
                closed: false,
                waiters: WaitList::new(),
                scratch: Vec::new(),
            }),
        }
    }

    /// Permits free now.
    pub fn available_permits(&self) -> usize {
        self.state.borrow().permits
    }

    /// Waits for one permit.
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is closed (before or while waiting).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped `Acquire` leaves the queue; permits it had been handed go back
    /// and on to the next waiters.
    pub fn acquire(&self) -> Acquire<'_> {
        self.acquire_many(1)
    }

    /// Waits for `n` permits at once. See [`acquire`](Semaphore::acquire).
    pub fn acquire_many(&self, n: u32) -> Acquire<'_> {
        Acquire {
            sem: self,
            need: n,
            key: None,
        }
    }

    /// Waits for one permit, owned (it keeps the semaphore alive, so it can move into a task).
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is closed.
    pub async fn acquire_owned(self: Rc<Self>) -> Result<OwnedSemaphorePermit, AcquireError> {
        self.acquire().await?.forget();
        Ok(OwnedSemaphorePermit {
            sem: self,
            permits: 1,
        })
    }

    /// Takes one permit if one is free now and nobody waits first.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::NoPermits`] or [`TryAcquireError::Closed`].
    pub fn try_acquire(&self) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if they are free now and nobody waits first.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::NoPermits`] or [`TryAcquireError::Closed`].
    pub fn try_acquire_many(&self, n: u32) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        let mut state = self.state.borrow_mut();
        if state.closed {
            return Err(TryAcquireError::Closed);
        }
        if !state.waiters.is_empty() || state.permits < n as usize {
            return Err(TryAcquireError::NoPermits);
        }
        state.permits -= n as usize;
        Ok(SemaphorePermit {
            sem: self,
            permits: n,
        })
    }

    /// Adds `n` permits, waking waiters they satisfy.
    ///
    /// # Panics
    ///
    /// If the total would exceed [`MAX_PERMITS`](Semaphore::MAX_PERMITS).
    #[track_caller]
    pub fn add_permits(&self, n: usize) {
        let mut state = self.state.borrow_mut();
        state.permits = state
            .permits
            .checked_add(n)
            .filter(|p| *p <= Self::MAX_PERMITS)
            .expect("Semaphore::add_permits: more than MAX_PERMITS permits");
        self.grant_and_wake(state);
    }

    /// Closes the semaphore: waiting and future acquires fail. Permits already held stay
    /// valid.
    pub fn close(&self) {
        let mut state = self.state.borrow_mut();
        state.closed = true;
        let mut wakers = std::mem::take(&mut state.scratch);
        state.waiters.notify_all(&mut wakers);
        drop(state);
        wake_then_recycle(wakers, |w| self.state.borrow_mut().scratch = w);
    }

    /// Whether [`close`](Semaphore::close) was called.
    pub fn is_closed(&self) -> bool {
        self.state.borrow().closed
    }

    fn grant_and_wake(&self, mut state: std::cell::RefMut<'_, State>) {
        let mut wakers = std::mem::take(&mut state.scratch);
        state.grant(&mut wakers);
        drop(state);
        wake_then_recycle(wakers, |w| self.state.borrow_mut().scratch = w);
    }
}

impl<'a> Future for Acquire<'a> {
    type Output = Result<SemaphorePermit<'a>, AcquireError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let sem = self.sem;
        let need = self.need;
        let mut state = sem.state.borrow_mut();
        // A closure, not a value: a permit made and then dropped would release itself.
        let granted = || Poll::Ready(Ok(SemaphorePermit { sem, permits: need }));
        if let Some(key) = self.key {
            return match state.waiters.notified(key) {
                None => {
                    state.waiters.register(key, cx.waker());
                    Poll::Pending
                }
                Some(how) => {
                    state.waiters.remove(key);
                    drop(state);
                    self.key = None;
                    match how {
                        Notified::One => granted(),
                        Notified::All => Poll::Ready(Err(AcquireError(()))),
                    }
                }
            };
        }
        if state.closed {
            return Poll::Ready(Err(AcquireError(())));
        }
        if state.waiters.is_empty() && state.permits >= need as usize {
            state.permits -= need as usize;
            return granted();
        }
        let key = state.waiters.push(cx.waker(), need as usize);
        drop(state);
        self.key = Some(key);
        Poll::Pending
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut state = self.sem.state.borrow_mut();
        match state.waiters.remove(key) {
            // Handed permits it never took: give them back.
            Some(Notified::One) => state.permits += self.need as usize,
            Some(Notified::All) => return,
            // Leaving from the front may let the waiters behind it through.
            None => {}
        }
        self.sem.grant_and_wake(state);
    }
}

impl SemaphorePermit<'_> {
    /// Keeps the permits for good: they do not go back on drop.
    pub fn forget(mut self) {
        self.permits = 0;
    }

    /// How many permits this guard holds.
    pub fn num_permits(&self) -> usize {
        self.permits as usize
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        if self.permits > 0 {
            self.sem.add_permits(self.permits as usize);
        }
    }
}

impl OwnedSemaphorePermit {
    /// Keeps the permits for good: they do not go back on drop.
    pub fn forget(mut self) {
        self.permits = 0;
    }

    /// How many permits this guard holds.
    pub fn num_permits(&self) -> usize {
        self.permits as usize
    }

    /// The semaphore the permits came from.
    pub fn semaphore(&self) -> &Rc<Semaphore> {
        &self.sem
    }
}

impl Drop for OwnedSemaphorePermit {
    fn drop(&mut self) {
        if self.permits > 0 {
            self.sem.add_permits(self.permits as usize);
        }
    }
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("semaphore closed")
    }
}

impl std::error::Error for AcquireError {}

impl fmt::Display for TryAcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryAcquireError::Closed => f.write_str("semaphore closed"),
            TryAcquireError::NoPermits => f.write_str("no permits available"),
        }
    }
}

impl std::error::Error for TryAcquireError {}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.borrow();
        f.debug_struct("Semaphore")
            .field("permits", &state.permits)
            .field("closed", &state.closed)
            .finish()
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("permits", &self.permits)
            .finish()
    }
}

impl fmt::Debug for OwnedSemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSemaphorePermit")
            .field("permits", &self.permits)
            .finish()
    }
}

impl fmt::Debug for Acquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("need", &self.need)
            .field("waiting", &self.key.is_some())
            .finish()
    }
}
