//! Stand-in for `ringloop::event::SharedBus` (branch `sync`, not landed yet) with exactly its
//! API shape, so switching to the real one is one `use` line in main.rs.
//!
//! Each subscriber owns a bounded cross-shard channel; a publisher that finds it full counts a
//! miss instead of waiting, and the subscriber's next `recv` reports `Lagged(missed)`.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use ringloop::shard::{self, TrySendError};

/// Why [`Subscriber::recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecvError {
    /// The subscriber fell behind; this many events were dropped for it.
    Lagged(u64),
    /// The bus is gone.
    Closed,
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Lagged(n) => write!(f, "subscriber lagged behind by {n} events"),
            RecvError::Closed => f.write_str("event bus closed"),
        }
    }
}

struct Sub<E> {
    tx: shard::Sender<E>,
    missed: Arc<AtomicU64>,
}

/// A publish/subscribe bus shared by every shard.
pub(crate) struct SharedBus<E> {
    topics: Arc<Mutex<HashMap<String, Vec<Sub<E>>>>>,
    capacity: usize,
}

impl<E> Clone for SharedBus<E> {
    fn clone(&self) -> Self {
        SharedBus {
            topics: self.topics.clone(),
            capacity: self.capacity,
        }
    }
}

impl<E: Clone + Send + 'static> SharedBus<E> {
    /// A bus whose subscribers each buffer up to `capacity` events.
    pub(crate) fn new(_shards: usize, capacity: usize) -> Self {
        SharedBus {
            topics: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    /// Sends `event` to every subscriber of `topic`; returns how many got it.
    pub(crate) fn publish(&self, topic: &str, event: E) -> usize {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(subs) = topics.get_mut(topic) else {
            return 0;
        };
        let mut delivered = 0;
        subs.retain(|sub| match sub.tx.try_send(event.clone()) {
            Ok(()) => {
                delivered += 1;
                true
            }
            Err(TrySendError::Full(_)) => {
                sub.missed.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(TrySendError::Closed(_)) => false,
        });
        delivered
    }

    /// Subscribes the current task to `topic`.
    pub(crate) fn subscribe(&self, topic: &str) -> Subscriber<E> {
        let (tx, rx) = shard::channel(self.capacity);
        let missed = Arc::new(AtomicU64::new(0));
        self.topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(topic.to_owned())
            .or_default()
            .push(Sub {
                tx,
                missed: missed.clone(),
            });
        Subscriber { rx, missed }
    }
}

/// One subscription; dropping it unsubscribes (at the next publish).
pub(crate) struct Subscriber<E> {
    rx: shard::Receiver<E>,
    missed: Arc<AtomicU64>,
}

impl<E: Send> Subscriber<E> {
    /// The next event, or how many were missed since the last call.
    pub(crate) async fn recv(&mut self) -> Result<E, RecvError> {
        let missed = self.missed.swap(0, Ordering::Relaxed);
        if missed > 0 {
            return Err(RecvError::Lagged(missed));
        }
        self.rx.recv().await.ok_or(RecvError::Closed)
    }
}
