//! Tasks: spawning, joining, yielding.
//!
//! A task is a future the runtime polls whenever something wakes it. Tasks spawned with
//! [`spawn`] stay on the thread that spawned them, so their futures need not be `Send`.
//!
//! Dropping a [`JoinHandle`] *detaches* the task: it keeps running, as with tokio.
//! Use [`JoinHandle::abort`] to cancel it.
//!
//! Inside, `slab.rs` stores each task in a slot checked by generation, `state.rs` names the
//! states, `cell.rs` is the one allocation a spawn makes, and `waker.rs` is the waker vtable.

pub(crate) mod cell;
mod join;
mod remote;
pub(crate) mod slab;
mod state;
pub(crate) mod waker;
mod yield_now;

pub use join::{JoinError, JoinHandle};
pub use remote::RemoteJoinHandle;
pub(crate) use remote::RemoteTask;
pub use yield_now::yield_now;

use std::future::Future;

/// A task's slot key and the generation of the task in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaskId {
    pub(crate) key: u32,
    pub(crate) generation: u32,
}

/// Spawns a task on the current runtime and returns a handle to await its output.
///
/// The future need not be `Send`: it runs on this thread only. It starts running at the next
/// scheduling point, in FIFO order with other ready tasks. Dropping the returned
/// [`JoinHandle`] detaches the task; it keeps running.
///
/// # Panics
///
/// When called outside a runtime (not inside [`Runtime::block_on`](crate::Runtime::block_on)
/// or a task).
///
/// # Examples
///
/// ```
/// ringloop::block_on(async {
///     let shared = std::rc::Rc::new(5); // not Send: fine
///     let task = ringloop::spawn({
///         let shared = shared.clone();
///         async move { *shared * 2 }
///     });
///     assert_eq!(task.await.unwrap(), 10);
/// });
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
{
    crate::runtime::context::with_current(|core| core.spawn(future))
        .unwrap_or_else(|| crate::runtime::context::no_runtime())
}
