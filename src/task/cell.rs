//! The one allocation a spawn makes: a task's future, then its output, behind `dyn RawTask`.
//!
//! The slab stores `Pin<Box<dyn RawTask>>`; the `JoinHandle<T>`, which knows `T`, reads the
//! output back through a type-erased pointer, as tokio's `try_read_output` does.
//!
//! # Invariants
//!
//! - (C1) A `TaskCell` is only reached through `Pin<&mut Self>` once boxed, and its future is
//!   never moved: it is dropped in place by assigning a new [`Stage`] over it.
//! - (C2) `take_output` is only called by the `JoinHandle<F::Output>` created for this very cell
//!   (the slab checks key and generation first), so `dst` points to a
//!   `Poll<Result<F::Output, JoinError>>`.
//! - (C3) Every drop of user code (future or output) runs inside `catch_unwind`, so a panicking
//!   `Drop` never unwinds into the scheduler.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::JoinError;

/// A spawned future with its output slot, type-erased.
pub(crate) trait RawTask {
    /// Polls the future once, catching a panic. `Ready` means the output (or the panic) is stored.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;

    /// Drops the future in place and stores `JoinError::Cancelled` as the output.
    fn cancel(self: Pin<&mut Self>);

    /// Moves the stored output into `dst`, leaving `Pending` there if there is none yet.
    ///
    /// # Safety
    ///
    /// `dst` must point to a valid `Poll<Result<T, JoinError>>` where `T` is the output type of
    /// the future this cell was created with.
    unsafe fn take_output(self: Pin<&mut Self>, dst: *mut ());

    /// The waker of the `JoinHandle` waiting for this task, if any.
    fn join_waker(self: Pin<&mut Self>) -> &mut Option<Waker>;
}

/// A spawned task as the slab stores it.
pub(crate) type BoxedTask = Pin<Box<dyn RawTask>>;

enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

pub(crate) struct TaskCell<F: Future> {
    stage: Stage<F>,
    join_waker: Option<Waker>,
    /// Entered around every poll, cancel and drop of the future (feature `tracing`).
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl<F: Future + 'static> TaskCell<F> {
    #[cfg_attr(all(feature = "tracing", not(test)), allow(dead_code))]
    pub(crate) fn boxed(future: F) -> BoxedTask {
        Box::pin(TaskCell {
            stage: Stage::Running(future),
            join_waker: None,
            #[cfg(feature = "tracing")]
            span: tracing::Span::none(),
        })
    }

    /// A task whose polls run inside `span`.
    #[cfg(feature = "tracing")]
    pub(crate) fn boxed_in(future: F, span: tracing::Span) -> BoxedTask {
        Box::pin(TaskCell {
            stage: Stage::Running(future),
            join_waker: None,
            span,
        })
    }
}

impl<F: Future> TaskCell<F> {
    fn stage(self: Pin<&mut Self>) -> &mut Stage<F> {
        // SAFETY: (C1) the stage is never moved out while it holds the future; it is only
        // overwritten in place, which drops the future where it was pinned.
        unsafe { &mut self.get_unchecked_mut().stage }
    }

    /// Overwrites the stage, dropping the old one in place. Returns the panic of its drop.
    fn replace(stage: &mut Stage<F>, next: Stage<F>) -> Option<Box<dyn Any + Send>> {
        // An assignment whose drop unwinds still writes the new value, so the stage is never
        // left holding a half-dropped future (C3).
        let mut next = Some(next);
        catch_unwind(AssertUnwindSafe(|| {
            *stage = next.take().expect("taken once")
        }))
        .err()
    }
}

impl<F: Future> RawTask for TaskCell<F> {
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        #[cfg(feature = "tracing")]
        let span = self.as_ref().get_ref().span.clone();
        #[cfg(feature = "tracing")]
        let _entered = span.enter();
        let stage = self.stage();
        let Stage::Running(future) = stage else {
            return Poll::Ready(());
        };
        // SAFETY: (C1) the future lives inside the pinned cell and is never moved.
        let future = unsafe { Pin::new_unchecked(future) };
        let output = match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(value)) => Ok(value),
            Err(panic) => {
                #[cfg(feature = "tracing")]
                tracing::debug!("a task panicked: its JoinHandle gets the panic");
                Err(JoinError::panic(panic))
            }
        };
        // One write: the future is dropped in place and the output takes its place. If the
        // future's Drop panics, the output was still written (C3); report the panic instead.
        if !std::mem::needs_drop::<F>() {
            // Dropping the finished future is a no-op and cannot panic.
            *stage = Stage::Finished(output);
        } else if let Some(drop_panic) = Self::replace(stage, Stage::Finished(output)) {
            let panicked = Stage::Finished(Err(JoinError::panic(drop_panic)));
            if let Some(again) = Self::replace(stage, panicked) {
                drop_caught(again);
            }
        }
        Poll::Ready(())
    }

    fn cancel(self: Pin<&mut Self>) {
        #[cfg(feature = "tracing")]
        let span = self.as_ref().get_ref().span.clone();
        #[cfg(feature = "tracing")]
        let _entered = span.enter();
        let stage = self.stage();
        if matches!(stage, Stage::Running(_)) {
            let output = match Self::replace(stage, Stage::Consumed) {
                None => JoinError::cancelled(),
                Some(drop_panic) => JoinError::panic(drop_panic),
            };
            *stage = Stage::Finished(Err(output));
        }
    }

    unsafe fn take_output(self: Pin<&mut Self>, dst: *mut ()) {
        let stage = self.stage();
        if let Stage::Finished(_) = stage {
            let Stage::Finished(output) = std::mem::replace(stage, Stage::Consumed) else {
                unreachable!("matched Finished just above")
            };
            let dst = dst.cast::<Poll<Result<F::Output, JoinError>>>();
            // SAFETY: (C2) the caller guarantees `dst` is a valid, initialised
            // `Poll<Result<F::Output, JoinError>>`; assigning drops its old value.
            unsafe { *dst = Poll::Ready(output) };
        }
    }

    fn join_waker(self: Pin<&mut Self>) -> &mut Option<Waker> {
        self.join_waker_mut()
    }
}

impl<F: Future> TaskCell<F> {
    fn join_waker_mut(self: Pin<&mut Self>) -> &mut Option<Waker> {
        // SAFETY: (C1) only `stage` is structurally pinned; the waker is a plain field.
        unsafe { &mut self.get_unchecked_mut().join_waker }
    }
}

impl<F: Future> Drop for TaskCell<F> {
    fn drop(&mut self) {
        // (C3) a future or output whose Drop panics must not unwind out of the scheduler.
        #[cfg(feature = "tracing")]
        let _entered = self.span.enter();
        let mut consumed = Some(Stage::Consumed);
        let stage = &mut self.stage;
        let _ = catch_unwind(AssertUnwindSafe(|| {
            *stage = consumed.take().expect("taken once")
        }));
    }
}

/// Drops `value`, swallowing a panic from its `Drop` (the caller already reports one).
fn drop_caught<T>(value: T) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(value)));
}
