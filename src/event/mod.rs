//! The event bus: topic-based publish/subscribe, local ([`EventBus`]) or across shards
//! ([`SharedBus`]).
//!
//! Each topic is a [`broadcast`] ring of `capacity` events shared by
//! its subscribers. Publishing never waits and memory never grows past the ring: a subscriber
//! that falls more than `capacity` events behind gets [`RecvError::Lagged(n)`] — `n` being
//! exactly how many events it missed — and then continues with the oldest event still held.
//! Publishing to a topic nobody subscribes to costs one hash lookup and delivers nothing; a
//! topic's buffer is freed by the first publish after its last subscriber is gone.
//!
//! [`SharedBus`] reaches subscribers on every shard. The first `subscribe` on a shard gives
//! that shard a mailbox (a bounded, lock-protected queue) and a forwarding task that moves
//! events from the mailbox into a local `EventBus`; `publish`, from any thread, pushes one
//! clone of the event into each mailbox whose shard has subscribers to the topic and wakes
//! that shard's forwarder through its ring. A shard that does not drain its mailbox in time
//! (it is busy or blocked) loses events rather than slowing the publisher: its subscribers
//! get `Lagged(n)` for exactly the events it lost.
//!
//! [`RecvError::Lagged(n)`]: RecvError::Lagged
#![forbid(unsafe_code)]

mod shared;

use shared::Registration;
pub use shared::SharedBus;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use crate::sync::broadcast;

/// Why [`Subscriber::recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// The subscriber fell behind and missed this many events; the next receive returns the
    /// oldest event still held.
    Lagged(u64),
    /// The bus is gone (every handle dropped) and every event was received.
    Closed,
}

/// Why [`Subscriber::try_recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// No new event yet.
    Empty,
    /// The subscriber missed this many events (see [`RecvError::Lagged`]).
    Lagged(u64),
    /// The bus is gone and every event was received.
    Closed,
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Lagged(n) => write!(f, "subscriber fell behind and missed {n} events"),
            RecvError::Closed => f.write_str("event bus closed"),
        }
    }
}

impl std::error::Error for RecvError {}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("no event yet"),
            TryRecvError::Lagged(n) => write!(f, "subscriber fell behind and missed {n} events"),
            TryRecvError::Closed => f.write_str("event bus closed"),
        }
    }
}

impl std::error::Error for TryRecvError {}

/// A topic-based event bus local to one runtime (thread). Cloning is cheap (an `Rc`).
///
/// # Examples
///
/// ```
/// use ringloop::event::{EventBus, RecvError};
///
/// ringloop::block_on(async {
///     let bus = EventBus::new(2);
///     let mut orders = bus.subscribe("orders");
///     assert_eq!(bus.publish("orders", "placed #1"), 1);
///     assert_eq!(bus.publish("couriers", "idle"), 0); // nobody listens
///     assert_eq!(orders.recv().await, Ok("placed #1"));
///
///     for i in 0..5 {
///         bus.publish("orders", if i < 4 { "old" } else { "new" });
///     }
///     // A buffer of 2: three events were overwritten before this subscriber read them.
///     assert_eq!(orders.recv().await, Err(RecvError::Lagged(3)));
///     assert_eq!(orders.recv().await, Ok("old"));
///     assert_eq!(orders.recv().await, Ok("new"));
/// });
/// ```
pub struct EventBus<E: Clone> {
    inner: Rc<LocalInner<E>>,
}

struct LocalInner<E> {
    capacity: usize,
    topics: RefCell<HashMap<String, Rc<broadcast::Sender<E>>>>,
}

impl<E: Clone> Clone for EventBus<E> {
    fn clone(&self) -> Self {
        EventBus {
            inner: self.inner.clone(),
        }
    }
}

impl<E: Clone> EventBus<E> {
    /// A bus whose subscribers each lag by at most `capacity` events before they miss some.
    ///
    /// # Panics
    ///
    /// If `capacity` is zero.
    #[track_caller]
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "EventBus::new: capacity must be at least 1");
        EventBus {
            inner: Rc::new(LocalInner {
                capacity,
                topics: RefCell::new(HashMap::new()),
            }),
        }
    }

    /// Delivers `event` to every subscriber of `topic`; returns how many there are. Never
    /// waits: a subscriber that is `capacity` events behind loses its oldest one.
    pub fn publish(&self, topic: &str, event: E) -> usize {
        let Some(sender) = self.sender(topic) else {
            return 0;
        };
        match sender.send(event) {
            Ok(subscribers) => subscribers,
            Err(_) => {
                // Every subscriber is gone: forget the topic and its buffer.
                self.inner.topics.borrow_mut().remove(topic);
                0
            }
        }
    }

    /// A new subscriber to `topic`; it receives the events published from now on.
    pub fn subscribe(&self, topic: &str) -> Subscriber<E> {
        let mut topics = self.inner.topics.borrow_mut();
        let rx = match topics.get(topic) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, rx) = broadcast::channel(self.inner.capacity);
                topics.insert(topic.to_owned(), Rc::new(sender));
                rx
            }
        };
        Subscriber { rx, shared: None }
    }

    /// Live subscribers of `topic`.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.sender(topic).map_or(0, |s| s.receiver_count())
    }

    /// Tells the subscribers of `topic` that `n` events were lost on the way (a shard of a
    /// [`SharedBus`] fell behind): they get `Lagged` for them.
    fn publish_lost(&self, topic: &str, n: u64) {
        if let Some(sender) = self.sender(topic) {
            sender.send_lost(n);
        }
    }

    /// The topic's sender, cloned out so that no borrow of the map is held while events
    /// (whose `Drop` may do anything) are moved around.
    fn sender(&self, topic: &str) -> Option<Rc<broadcast::Sender<E>>> {
        self.inner.topics.borrow().get(topic).cloned()
    }
}

impl<E: Clone> fmt::Debug for EventBus<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBus")
            .field("capacity", &self.inner.capacity)
            .field("topics", &self.inner.topics.borrow().len())
            .finish()
    }
}

/// The events of one topic, from an [`EventBus`] or a [`SharedBus`].
pub struct Subscriber<E> {
    rx: broadcast::Receiver<E>,
    /// Counts this subscriber in its shard's mailbox, for a [`SharedBus`].
    shared: Option<Registration<E>>,
}

impl<E: Clone> Subscriber<E> {
    /// The next event.
    ///
    /// # Errors
    ///
    /// [`RecvError::Lagged(n)`](RecvError::Lagged) if `n` events were missed (the next call
    /// returns the oldest event still held); [`RecvError::Closed`] once the bus is gone and
    /// every event was received.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: an event is consumed only when the future returns it.
    pub async fn recv(&mut self) -> Result<E, RecvError> {
        self.rx.recv().await.map_err(|e| match e {
            broadcast::error::RecvError::Lagged(n) => RecvError::Lagged(n),
            broadcast::error::RecvError::Closed => RecvError::Closed,
        })
    }

    /// The next event if there is one now.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`], [`TryRecvError::Lagged`] or [`TryRecvError::Closed`].
    pub fn try_recv(&mut self) -> Result<E, TryRecvError> {
        self.rx.try_recv().map_err(|e| match e {
            broadcast::error::TryRecvError::Empty => TryRecvError::Empty,
            broadcast::error::TryRecvError::Lagged(n) => TryRecvError::Lagged(n),
            broadcast::error::TryRecvError::Closed => TryRecvError::Closed,
        })
    }
}

impl<E> fmt::Debug for Subscriber<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("unread", &self.rx.len())
            .field("shared", &self.shared.is_some())
            .finish()
    }
}
