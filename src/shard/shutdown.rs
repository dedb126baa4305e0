//! A shutdown signal every shard (and any thread) can trigger and await.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use slab::Slab;

/// A one-way switch shared by every shard of a program: once [`trigger`](Shutdown::trigger)ed,
/// every [`wait`](Shutdown::wait) completes, whichever shard or thread it runs on.
///
/// Clones share the switch. Triggering twice is harmless.
///
/// # Examples
///
/// ```
/// use ringloop::shard::Shutdown;
///
/// let shutdown = Shutdown::new();
/// let results = ringloop::shard::Builder::new()
///     .shards(2)
///     .pin_cores(false)
///     .build()?
///     .run({
///         let shutdown = shutdown.clone();
///         move |shard| {
///             let shutdown = shutdown.clone();
///             async move {
///                 if shard.id() == 0 {
///                     // Say, on Ctrl-C: `ringloop::signal::ctrl_c().await?;`
///                     shutdown.trigger();
///                 }
///                 shutdown.wait().await;
///                 shard.id()
///             }
///         }
///     });
/// assert!(results.iter().all(|r| r.is_ok()));
/// assert!(shutdown.is_triggered());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    triggered: AtomicBool,
    waiters: Mutex<Slab<Waker>>,
}

impl Shutdown {
    /// A switch not yet triggered.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Flips the switch and wakes every waiter.
    pub fn trigger(&self) {
        if self.inner.triggered.swap(true, Ordering::AcqRel) {
            return;
        }
        // Wake outside the lock: a waker may run code that waits on this switch again.
        let wakers: Vec<Waker> = self.inner.lock().drain().collect();
        for waker in wakers {
            waker.wake();
        }
    }

    /// Whether [`trigger`](Shutdown::trigger) has been called.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::Acquire)
    }

    /// Completes once the switch is triggered (at once if it already is).
    ///
    /// Dropping the future before then removes its waiter.
    pub fn wait(&self) -> Triggered {
        Triggered {
            inner: self.inner.clone(),
            key: None,
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Slab<Waker>> {
        // A waiter list has no invariant a panic could break mid-way.
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

/// The future of [`Shutdown::wait`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Triggered {
    inner: Arc<Inner>,
    key: Option<usize>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner").finish_non_exhaustive()
    }
}

impl Future for Triggered {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.inner.triggered.load(Ordering::Acquire) {
            self.key = None;
            return Poll::Ready(());
        }
        let mut waiters = self.inner.lock();
        // Checked again under the lock: `trigger` drains the list after setting the flag, so a
        // waiter added before the drain is woken and one added after sees the flag here.
        if self.inner.triggered.load(Ordering::Acquire) {
            drop(waiters);
            self.key = None;
            return Poll::Ready(());
        }
        match self.key {
            Some(key) if waiters.contains(key) => {
                if !waiters[key].will_wake(cx.waker()) {
                    waiters[key] = cx.waker().clone();
                }
            }
            _ => {
                let key = waiters.insert(cx.waker().clone());
                drop(waiters);
                self.key = Some(key);
            }
        }
        Poll::Pending
    }
}

impl Drop for Triggered {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let mut waiters = self.inner.lock();
            // After a trigger the list was drained and the key may have been reused by
            // nobody (triggered switches take no new waiters), so a missing key is fine.
            if !self.inner.triggered.load(Ordering::Acquire) && waiters.contains(key) {
                waiters.remove(key);
            }
        }
    }
}
