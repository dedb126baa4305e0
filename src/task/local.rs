//! Task-local storage: [`task_local!`](crate::task_local) and [`LocalKey`], as in tokio.
//!
//! A value is set for the extent of a future ([`LocalKey::scope`]): each time that future is
//! polled (or dropped), the value is moved into a thread-local slot, and moved back out when
//! the poll returns, so other tasks interleaved on the thread never see it. Scopes nest: an
//! inner scope of the same key shadows the outer one and restores it on the way out.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Declares task-local keys: `static` items of type [`LocalKey`], set with
/// [`LocalKey::scope`] and read with [`LocalKey::with`] or [`LocalKey::get`].
///
/// ```
/// ringloop::task_local! {
///     static REQUEST_ID: u64;
/// }
///
/// async fn handle() -> u64 {
///     ringloop::task::yield_now().await; // other tasks run here, with their own id
///     REQUEST_ID.get()
/// }
///
/// ringloop::block_on(async {
///     let a = ringloop::spawn(REQUEST_ID.scope(1, handle()));
///     let b = ringloop::spawn(REQUEST_ID.scope(2, handle()));
///     assert_eq!((a.await.unwrap(), b.await.unwrap()), (1, 2));
///     assert!(REQUEST_ID.try_with(|_| ()).is_err()); // not set out here
/// });
/// ```
#[macro_export]
macro_rules! task_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty; $($rest:tt)*) => {
        $crate::__task_local_inner!($(#[$attr])* $vis $name, $t);
        $crate::task_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty) => {
        $crate::__task_local_inner!($(#[$attr])* $vis $name, $t);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __task_local_inner {
    ($(#[$attr:meta])* $vis:vis $name:ident, $t:ty) => {
        $(#[$attr])*
        $vis static $name: $crate::task::LocalKey<$t> = {
            ::std::thread_local! {
                static __RINGLOOP_TASK_LOCAL: ::std::cell::RefCell<::std::option::Option<$t>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            $crate::task::LocalKey::__new(&__RINGLOOP_TASK_LOCAL)
        };
    };
}

/// A key for task-local data, declared with [`task_local!`](crate::task_local).
pub struct LocalKey<T: 'static> {
    slot: &'static std::thread::LocalKey<RefCell<Option<T>>>,
}

/// The key was read outside any [`scope`](LocalKey::scope) of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessError {
    _private: (),
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task-local value not set: read outside a `scope` of its key")
    }
}

impl std::error::Error for AccessError {}

impl<T: 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn __new(slot: &'static std::thread::LocalKey<RefCell<Option<T>>>) -> Self {
        LocalKey { slot }
    }

    /// Runs `future` with the key set to `value` during each of its polls (and its drop).
    pub fn scope<F: Future>(&'static self, value: T, future: F) -> TaskLocalFuture<T, F> {
        TaskLocalFuture {
            key: self,
            value: Some(value),
            future: Some(Box::pin(future)),
        }
    }

    /// Runs `f` with the key set to `value`, and returns what it returns.
    ///
    /// # Panics
    ///
    /// If called inside [`with`](Self::with) on the same key (the value is borrowed there).
    pub fn sync_scope<R>(&'static self, value: T, f: impl FnOnce() -> R) -> R {
        let mut value = Some(value);
        let _entered = Entered::enter(self, &mut value);
        f()
    }

    /// Calls `f` with the current value.
    ///
    /// # Panics
    ///
    /// Outside any scope of the key; see [`try_with`](Self::try_with).
    #[track_caller]
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        match self.try_with(f) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    /// Calls `f` with the current value, or says it is not set.
    pub fn try_with<R>(&'static self, f: impl FnOnce(&T) -> R) -> Result<R, AccessError> {
        self.slot.with(|slot| match slot.borrow().as_ref() {
            Some(value) => Ok(f(value)),
            None => Err(AccessError { _private: () }),
        })
    }

    /// A clone of the current value.
    ///
    /// # Panics
    ///
    /// Outside any scope of the key.
    #[track_caller]
    pub fn get(&'static self) -> T
    where
        T: Clone,
    {
        self.with(T::clone)
    }
}

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("LocalKey { .. }")
    }
}

/// The value moved into the thread-local slot for a while; moved back out (restoring what
/// was there, for nested scopes) when dropped, panics included.
struct Entered<'a, T: 'static> {
    key: &'static LocalKey<T>,
    value: &'a mut Option<T>,
}

impl<'a, T: 'static> Entered<'a, T> {
    fn enter(key: &'static LocalKey<T>, value: &'a mut Option<T>) -> Self {
        key.slot.with(|slot| {
            let mut slot = slot.try_borrow_mut().unwrap_or_else(|_| {
                panic!("cannot enter a task-local scope while its value is borrowed by `with`")
            });
            std::mem::swap(&mut *slot, value);
        });
        Entered { key, value }
    }
}

impl<T: 'static> Drop for Entered<'_, T> {
    fn drop(&mut self) {
        // `try_with`: during thread teardown the slot may be gone; the value is then dropped
        // with this guard's owner instead.
        let _ = self
            .key
            .slot
            .try_with(|slot| std::mem::swap(&mut *slot.borrow_mut(), self.value));
    }
}

/// The future of [`LocalKey::scope`].
#[must_use = "futures do nothing unless awaited"]
pub struct TaskLocalFuture<T: 'static, F> {
    key: &'static LocalKey<T>,
    /// The value while the future is not being polled.
    value: Option<T>,
    /// Boxed so that `TaskLocalFuture` is `Unpin` and needs no pin projection; `None` once
    /// it completed (and was dropped inside the scope).
    future: Option<Pin<Box<F>>>,
}

// The value is moved in and out on every poll, never pinned; the future is pinned in its box.
impl<T: 'static, F> Unpin for TaskLocalFuture<T, F> {}

impl<T: 'static, F: Future> Future for TaskLocalFuture<T, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let _entered = Entered::enter(this.key, &mut this.value);
        let future = this
            .future
            .as_mut()
            .expect("a TaskLocalFuture is not polled after it completed");
        let output = std::task::ready!(future.as_mut().poll(cx));
        // Dropped inside the scope, as it would be if dropped unfinished.
        this.future = None;
        Poll::Ready(output)
    }
}

impl<T: 'static, F> Drop for TaskLocalFuture<T, F> {
    fn drop(&mut self) {
        if self.future.is_some() {
            // The future's `Drop` sees the value too.
            let _entered = Entered::enter(self.key, &mut self.value);
            self.future = None;
        }
    }
}

impl<T: 'static, F> fmt::Debug for TaskLocalFuture<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskLocalFuture")
            .field("done", &self.future.is_none())
            .finish_non_exhaustive()
    }
}
