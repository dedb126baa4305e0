//! `Barrier`: tasks wait until `n` of them have arrived, then all go on, as `tokio::sync::Barrier`.

use std::cell::Cell;
use std::fmt;

use super::Notify;

/// A barrier for `n` tasks: each [`wait`](Barrier::wait) returns once `n` calls are waiting,
/// and the barrier then starts over for the next `n`. One task of each generation is told it
/// is the leader.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use ringloop::sync::Barrier;
///
/// ringloop::block_on(async {
///     let barrier = Rc::new(Barrier::new(3));
///     let tasks: Vec<_> = (0..3)
///         .map(|_| {
///             let barrier = barrier.clone();
///             ringloop::spawn(async move { barrier.wait().await.is_leader() })
///         })
///         .collect();
///     let mut leaders = 0;
///     for task in tasks {
///         leaders += usize::from(task.await.unwrap());
///     }
///     assert_eq!(leaders, 1);
/// });
/// ```
pub struct Barrier {
    n: usize,
    /// Calls waiting in the current generation.
    arrived: Cell<usize>,
    /// Bumped when a generation is released.
    generation: Cell<u64>,
    released: Notify,
}

/// What [`Barrier::wait`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// Whether this call was the one that released its generation (exactly one per
    /// generation).
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl Barrier {
    /// A barrier that releases tasks `n` at a time (`n = 0` behaves as 1: `wait` returns at
    /// once, as the leader).
    pub fn new(n: usize) -> Barrier {
        Barrier {
            n: n.max(1),
            arrived: Cell::new(0),
            generation: Cell::new(0),
            released: Notify::new(),
        }
    }

    /// Waits until `n` calls are waiting in this generation.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe, as in tokio: a call dropped after it arrived still counts toward its
    /// generation.
    pub async fn wait(&self) -> BarrierWaitResult {
        let generation = self.generation.get();
        let arrived = self.arrived.get() + 1;
        if arrived == self.n {
            self.arrived.set(0);
            self.generation.set(generation + 1);
            self.released.notify_waiters();
            return BarrierWaitResult(true);
        }
        self.arrived.set(arrived);
        while self.generation.get() == generation {
            // Made before the check above is repeated, so a release in between is not missed
            // (a `Notified` sees every `notify_waiters` made after it was created).
            let released = self.released.notified();
            if self.generation.get() != generation {
                break;
            }
            released.await;
        }
        BarrierWaitResult(false)
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("n", &self.n)
            .field("arrived", &self.arrived.get())
            .finish()
    }
}
