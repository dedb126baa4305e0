//! The `Send + Sync` door into a runtime: remote wakes, remote spawns, and the ring's doorbell.
//!
//! Other threads never touch the ring (it may be `SINGLE_ISSUER`). They push onto the runtime's
//! remote queue and ring its doorbell, an eventfd whose read the runtime keeps armed in the
//! ring, so a runtime blocked in `io_uring_enter` wakes up. The `notified` flag makes that one
//! eventfd write per batch of remote events, not one per wake.
//!
//! The registry maps a runtime id (what a waker carries) to its `Shared`, so a waker needs no
//! reference count: a runtime that is gone is simply not found, and its wakers do nothing.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::task::waker::{WakeTarget, RUNTIME_BITS};
use crate::task::{RemoteJoinHandle, RemoteTask, TaskId};

pub(crate) type RemoteFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

#[derive(Default)]
pub(crate) struct RemoteQueue {
    pub(crate) wakes: Vec<TaskId>,
    pub(crate) spawns: Vec<RemoteFuture>,
    /// Set under the lock when the runtime shuts down: later spawns are refused.
    pub(crate) closed: bool,
}

/// The part of a runtime other threads may touch.
pub(crate) struct Shared {
    pub(crate) id: u16,
    pub(crate) remote: Mutex<RemoteQueue>,
    /// A doorbell ring is pending: the runtime will look at `remote` before it sleeps again.
    pub(crate) notified: AtomicBool,
    pub(crate) doorbell: EventFd,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, RemoteQueue> {
        // A panic while holding this lock leaves only plain Vecs behind: keep going.
        self.remote.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn push_wake(&self, task: TaskId) {
        self.lock().wakes.push(task);
        self.ring_doorbell();
    }

    /// Queues a future; gives it back if the runtime has shut down.
    fn push_spawn(&self, future: RemoteFuture) -> Result<(), RemoteFuture> {
        let mut remote = self.lock();
        if remote.closed {
            return Err(future);
        }
        remote.spawns.push(future);
        drop(remote);
        self.ring_doorbell();
        Ok(())
    }

    /// Takes everything queued, swapping in the caller's (empty, reused) vectors.
    pub(crate) fn take_remote(&self, wakes: &mut Vec<TaskId>, spawns: &mut Vec<RemoteFuture>) {
        self.notified.store(false, Ordering::SeqCst);
        let mut remote = self.lock();
        std::mem::swap(&mut remote.wakes, wakes);
        std::mem::swap(&mut remote.spawns, spawns);
    }

    /// Closes the queue and returns what was left in it, to drop outside the lock.
    pub(crate) fn close(&self) -> Vec<RemoteFuture> {
        let mut remote = self.lock();
        remote.closed = true;
        remote.wakes.clear();
        std::mem::take(&mut remote.spawns)
    }

    fn ring_doorbell(&self) {
        if !self.notified.swap(true, Ordering::SeqCst) {
            match self.doorbell.write(1) {
                // EAGAIN: the counter is saturated, so the doorbell is ringing already.
                Ok(_) | Err(nix::errno::Errno::EAGAIN) => {}
                Err(e) => unreachable!("eventfd write cannot fail but with EAGAIN: {e}"),
            }
        }
    }
}

static REGISTRY: RwLock<Vec<Option<Arc<Shared>>>> = RwLock::new(Vec::new());

/// Registers a runtime's shared part and returns it with its id.
pub(crate) fn register() -> std::io::Result<Arc<Shared>> {
    // Blocking on purpose: io_uring answers a read on an O_NONBLOCK fd with EAGAIN instead of
    // waiting. Writers add 1 and never come near the counter's maximum, so they never block.
    let doorbell = EventFd::from_flags(EfdFlags::EFD_CLOEXEC)?;
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    let id = match registry.iter().position(Option::is_none) {
        Some(free) => free,
        None if registry.len() < 1 << RUNTIME_BITS => {
            registry.push(None);
            registry.len() - 1
        }
        None => {
            return Err(std::io::Error::other(format!(
                "ringloop: more than {} runtimes alive at once in this process",
                1 << RUNTIME_BITS
            )))
        }
    };
    let shared = Arc::new(Shared {
        id: id as u16,
        remote: Mutex::new(RemoteQueue::default()),
        notified: AtomicBool::new(false),
        doorbell,
    });
    registry[id] = Some(shared.clone());
    Ok(shared)
}

/// Forgets a runtime: its wakers and handles find nothing from now on.
pub(crate) fn unregister(id: u16) {
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    registry[id as usize] = None;
}

/// A wake from a thread that is not running the target runtime.
pub(crate) fn wake_remote(target: WakeTarget) {
    let registry = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
    if let Some(Some(shared)) = registry.get(target.runtime as usize) {
        shared.push_wake(target.task);
    }
}

/// A `Send + Sync + Clone` handle to a [`Runtime`](crate::Runtime), usable from any thread.
///
/// # Examples
///
/// ```
/// let rt = ringloop::Runtime::new()?;
/// let handle = rt.handle();
/// let join = std::thread::spawn(move || handle.spawn(async { 6 * 7 })).join().unwrap();
/// assert_eq!(rt.block_on(join).unwrap(), 42);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

impl Handle {
    /// The handle of the runtime running on this thread.
    ///
    /// # Panics
    ///
    /// Outside a runtime (not inside `block_on` or one of its tasks).
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::block_on(async {
    ///     let handle = ringloop::Handle::current();
    ///     let join = std::thread::spawn(move || handle.spawn(async { 1 })).join().unwrap();
    ///     assert_eq!(join.await.unwrap(), 1);
    /// });
    /// ```
    #[track_caller]
    pub fn current() -> Handle {
        super::context::current().handle()
    }

    /// Runs `future` as a task on the handle's runtime, from any thread.
    ///
    /// The runtime is woken even if it is blocked waiting on the ring. The task runs when the
    /// runtime next turns (inside one of its `block_on` calls). Dropping the returned handle
    /// detaches the task, as with [`spawn`](crate::spawn).
    ///
    /// If the runtime has shut down, the future is dropped and the handle resolves to a
    /// cancelled [`JoinError`](crate::JoinError).
    pub fn spawn<F>(&self, future: F) -> RemoteJoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (task, handle) = RemoteTask::new(future);
        if let Err(refused) = self.shared.push_spawn(Box::pin(task)) {
            drop(refused);
        }
        handle
    }
}
