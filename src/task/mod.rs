//! Tasks: spawning, joining (one by one, or as a [`JoinSet`]), yielding, and task-local
//! storage ([`task_local!`](crate::task_local)).
//!
//! A task is a future the runtime polls whenever something wakes it. Tasks spawned with
//! [`spawn`] stay on the thread that spawned them, so their futures need not be `Send`.
//!
//! Dropping a [`JoinHandle`] *detaches* the task: it keeps running, as with tokio.
//! Use [`JoinHandle::abort`] to cancel it.
//!
//! Inside, `slab.rs` stores each task in a slot checked by generation, `state.rs` names the
//! states, `cell.rs` is the one allocation a spawn makes, and `waker.rs` is the waker vtable.

pub(crate) mod budget;
pub(crate) mod cell;
mod join;
mod join_set;
mod local;
mod remote;
pub(crate) mod slab;
mod state;
pub(crate) mod waker;
mod yield_now;

pub use join::{JoinError, JoinHandle};
pub use join_set::JoinSet;
pub use local::{AccessError, LocalKey, TaskLocalFuture};
pub use remote::RemoteJoinHandle;
pub(crate) use remote::RemoteTask;
pub use yield_now::yield_now;

use std::future::Future;

use crate::runtime::TaskClass;

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

/// Spawns a task into `class` (see [`Builder::task_class`](crate::Builder::task_class)) on
/// the current runtime: it competes for the CPU with the class's shares.
///
/// # Panics
///
/// Outside a runtime, or if `class` was not configured on the current runtime's builder.
///
/// # Examples
///
/// ```
/// let mut builder = ringloop::Builder::new();
/// let batch = builder.task_class("batch", 10, ringloop::Latency::Normal);
/// builder.build()?.block_on(async {
///     let sum = ringloop::spawn_in(&batch, async { (1..=100u32).sum::<u32>() });
///     assert_eq!(sum.await.unwrap(), 5050);
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
#[track_caller]
pub fn spawn_in<F>(class: &TaskClass, future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
{
    crate::runtime::context::with_current(|core| core.spawn_in(class, future))
        .unwrap_or_else(|| crate::runtime::context::no_runtime())
}

/// Spawns a task unless the runtime's admission limit
/// ([`Builder::max_tasks`](crate::Builder::max_tasks)) is reached, in which case the future
/// comes back in [`SpawnError::Full`] so the caller can shed the load (answer 503, drop the
/// message) rather than queue without bound.
///
/// # Panics
///
/// Outside a runtime.
///
/// # Examples
///
/// ```
/// let rt = ringloop::Builder::new().max_tasks(1).build()?;
/// rt.block_on(async {
///     let first = ringloop::try_spawn(async { 1 }).expect("room for one");
///     let refused = ringloop::try_spawn(async { 2 });
///     let Err(ringloop::SpawnError::Full(future)) = refused else { panic!("over the limit") };
///     assert_eq!(first.await.unwrap(), 1); // joined: its slot is free again
///     assert_eq!(ringloop::try_spawn(future).unwrap().await.unwrap(), 2);
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
#[track_caller]
pub fn try_spawn<F>(future: F) -> Result<JoinHandle<F::Output>, SpawnError<F>>
where
    F: Future + 'static,
{
    crate::runtime::context::with_current(|core| core.try_spawn_in(None, future))
        .unwrap_or_else(|| crate::runtime::context::no_runtime())
}

/// [`try_spawn`] into `class`, checked against both the runtime's and the class's limit
/// ([`Builder::max_tasks_in`](crate::Builder::max_tasks_in)).
///
/// # Panics
///
/// Outside a runtime, or if `class` was not configured on the current runtime's builder.
#[track_caller]
pub fn try_spawn_in<F>(class: &TaskClass, future: F) -> Result<JoinHandle<F::Output>, SpawnError<F>>
where
    F: Future + 'static,
{
    crate::runtime::context::with_current(|core| core.try_spawn_in(Some(class), future))
        .unwrap_or_else(|| crate::runtime::context::no_runtime())
}

/// Why [`try_spawn`] did not spawn; holds the future so nothing is lost.
pub enum SpawnError<F> {
    /// The runtime or the class is at its task limit.
    Full(F),
}

impl<F> SpawnError<F> {
    /// The future that was not spawned.
    pub fn into_inner(self) -> F {
        match self {
            SpawnError::Full(future) => future,
        }
    }
}

impl<F> std::fmt::Debug for SpawnError<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpawnError::Full(_) => f.write_str("Full(..)"),
        }
    }
}

impl<F> std::fmt::Display for SpawnError<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpawnError::Full(_) => f.write_str("task limit reached, the task was not spawned"),
        }
    }
}

impl<F> std::error::Error for SpawnError<F> {}
