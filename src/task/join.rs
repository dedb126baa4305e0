//! `JoinHandle` and `JoinError`.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::slab::JoinPoll;
use super::TaskId;
use crate::runtime::Core;

/// An owned permission to await a task's output, returned by [`spawn`](crate::spawn).
///
/// Awaiting it yields `Ok(output)`, or a [`JoinError`] if the task panicked or was aborted.
/// **Dropping it detaches the task**: the task keeps running and its output is dropped.
///
/// It stays on the runtime's thread (it is neither `Send` nor `Sync`).
///
/// # Examples
///
/// ```
/// ringloop::block_on(async {
///     let handle = ringloop::spawn(async { "done" });
///     assert_eq!(handle.await.unwrap(), "done");
///
///     let handle = ringloop::spawn(std::future::pending::<()>());
///     handle.abort();
///     assert!(handle.await.unwrap_err().is_cancelled());
/// });
/// ```
pub struct JoinHandle<T> {
    core: Rc<Core>,
    id: TaskId,
    // `fn() -> T`: the handle never holds a `T` in place, so it is `Unpin` whatever `T` is.
    _output: PhantomData<fn() -> T>,
}

/// The id of a handle that returned its output (its slot is gone). No task has this key.
const JOINED: TaskId = TaskId {
    key: u32::MAX,
    generation: 0,
};

const POLLED_AFTER_COMPLETION: &str = "JoinHandle polled after it returned its output";

impl<T> JoinHandle<T> {
    pub(crate) fn new(core: Rc<Core>, id: TaskId) -> Self {
        JoinHandle {
            core,
            id,
            _output: PhantomData,
        }
    }

    /// Cancels the task. If it has not finished, its future is dropped at the next scheduling
    /// point (never in the middle of a poll) and awaiting the handle yields a cancelled
    /// [`JoinError`]. Aborting a finished task does nothing.
    pub fn abort(&self) {
        if self.id != JOINED {
            self.core.abort(self.id);
        }
    }

    /// Whether the task has finished (completed, panicked or been cancelled).
    pub fn is_finished(&self) -> bool {
        self.id == JOINED || self.core.tasks.borrow_mut().is_finished(self.id)
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(this.id != JOINED, "{POLLED_AFTER_COMPLETION}");
        let mut output: Poll<Result<T, JoinError>> = Poll::Pending;
        let dst = (&mut output as *mut Poll<Result<T, JoinError>>).cast::<()>();
        let answer = {
            let mut tasks = this.core.tasks.borrow_mut();
            // SAFETY: (C2) this handle was created by `spawn` for task `id`, whose output type
            // is `T`, and `dst` points to a live `Poll<Result<T, JoinError>>`.
            unsafe { tasks.poll_join(this.id, cx.waker(), dst) }
        };
        match answer {
            JoinPoll::Finished(cell) => {
                this.id = JOINED;
                drop(cell);
            }
            JoinPoll::Pending(replaced) => drop(replaced),
            JoinPoll::Gone => {
                this.id = JOINED;
                output = Poll::Ready(Err(JoinError::cancelled()));
            }
        }
        output
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if self.id != JOINED {
            self.core.detach(self.id);
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("id", &self.id).finish()
    }
}

/// Why a task produced no output: it panicked, or it was cancelled.
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    Cancelled,
    Panic(Box<dyn Any + Send + 'static>),
}

impl JoinError {
    pub(crate) fn cancelled() -> JoinError {
        JoinError {
            repr: Repr::Cancelled,
        }
    }

    pub(crate) fn panic(payload: Box<dyn Any + Send + 'static>) -> JoinError {
        JoinError {
            repr: Repr::Panic(payload),
        }
    }

    /// The task was cancelled ([`JoinHandle::abort`], or its runtime shut down first).
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// The task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The panic's payload, to inspect or to resume with `std::panic::resume_unwind`.
    ///
    /// # Panics
    ///
    /// If the task did not panic (see [`try_into_panic`](Self::try_into_panic)).
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .expect("JoinError::into_panic called on a cancelled task")
    }

    /// The panic's payload, or the error back if the task was cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(payload) => Ok(payload),
            Repr::Cancelled => Err(self),
        }
    }

    fn panic_message(&self) -> Option<&str> {
        let Repr::Panic(payload) = &self.repr else {
            return None;
        };
        payload
            .downcast_ref::<&'static str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.repr, self.panic_message()) {
            (Repr::Cancelled, _) => f.write_str("task was cancelled"),
            (Repr::Panic(_), Some(message)) => write!(f, "task panicked with message {message:?}"),
            (Repr::Panic(_), None) => f.write_str("task panicked"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.repr, self.panic_message()) {
            (Repr::Cancelled, _) => f.write_str("JoinError::Cancelled"),
            (Repr::Panic(_), Some(message)) => write!(f, "JoinError::Panic({message:?})"),
            (Repr::Panic(_), None) => f.write_str("JoinError::Panic(..)"),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(e: JoinError) -> std::io::Error {
        std::io::Error::other(e.to_string())
    }
}
