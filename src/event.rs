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

use std::any::Any;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Poll, Waker};

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

// ---------------------------------------------------------------------------------------------
// SharedBus

/// A topic-based event bus across shards: publish from any thread, subscribe on any shard.
///
/// `Clone + Send + Sync` (an `Arc`). Build it before the shards start and move a clone into
/// each. How events travel and what happens to a slow shard: see the [module doc](self).
///
/// # Examples
///
/// ```
/// use ringloop::event::SharedBus;
/// use std::time::Duration;
///
/// let bus = SharedBus::<u32>::new(2, 64);
/// let results = ringloop::shard::Builder::new()
///     .shards(2)
///     .pin_cores(false)
///     .build()?
///     .run(move |shard| {
///         let bus = bus.clone();
///         async move {
///             if shard.id() == 1 {
///                 let mut ticks = bus.subscribe("ticks");
///                 ticks.recv().await.ok()
///             } else {
///                 // Publish once shard 1 listens.
///                 while bus.subscriber_count("ticks") == 0 {
///                     ringloop::time::sleep(Duration::from_millis(1)).await;
///                 }
///                 assert_eq!(bus.publish("ticks", 7), 1);
///                 None
///             }
///         }
///     });
/// assert_eq!(*results[1].as_ref().unwrap(), Some(7));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct SharedBus<E: Clone + Send + 'static> {
    inner: Arc<SharedInner<E>>,
}

struct SharedInner<E> {
    /// Tells this bus's per-thread links apart from other buses'.
    id: u64,
    capacity: usize,
    /// One mailbox per shard that has subscribed.
    mailboxes: Mutex<Vec<Arc<Mailbox<E>>>>,
}

/// One shard's inbox from a [`SharedBus`]; the shard's forwarding task empties it.
struct Mailbox<E> {
    state: Mutex<MailboxState<E>>,
}

struct MailboxState<E> {
    /// At most `capacity` events, all topics together.
    queue: VecDeque<Forward<E>>,
    /// Topics with live subscribers on this shard.
    topics: HashMap<Arc<str>, TopicState>,
    /// Some topic has a `lost` count not yet attached to a queued event.
    lost_pending: bool,
    forwarder: Option<Waker>,
    /// The bus is gone, or the shard's forwarder is: nothing more goes in.
    closed: bool,
}

struct TopicState {
    name: Arc<str>,
    subscribers: usize,
    /// Events dropped (queue full) since the last one queued for this topic.
    lost: u64,
}

struct Forward<E> {
    topic: Arc<str>,
    /// Events of this topic lost just before this one.
    lost_before: u64,
    event: E,
}

static NEXT_BUS_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's link to each shared bus it subscribed to: `Box<LocalLink<E>>`.
    static LINKS: RefCell<Vec<(u64, Box<dyn Any>)>> = const { RefCell::new(Vec::new()) };
}

/// A shard's end of a shared bus: its mailbox and the local bus the forwarder feeds.
struct LocalLink<E: Clone> {
    mailbox: Arc<Mailbox<E>>,
    bus: EventBus<E>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No user code runs under these locks but `E::clone`; a panic there leaves plain queues.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

const OUTSIDE_RUNTIME: &str = "SharedBus::subscribe: not inside a ringloop runtime; \
    subscribe from a shard's task (inside shard::Shards::run or Runtime::block_on)";

impl<E: Clone + Send + 'static> Clone for SharedBus<E> {
    fn clone(&self) -> Self {
        SharedBus {
            inner: self.inner.clone(),
        }
    }
}

impl<E: Clone + Send + 'static> SharedBus<E> {
    /// A bus for `shards` shards whose subscribers (and each shard's forwarding queue) hold
    /// `capacity` events.
    ///
    /// `shards` sizes the shard table up front; more shards may subscribe (it grows).
    ///
    /// # Panics
    ///
    /// If `capacity` is zero.
    #[track_caller]
    pub fn new(shards: usize, capacity: usize) -> Self {
        assert!(capacity > 0, "SharedBus::new: capacity must be at least 1");
        SharedBus {
            inner: Arc::new(SharedInner {
                id: NEXT_BUS_ID.fetch_add(1, Ordering::Relaxed),
                capacity,
                mailboxes: Mutex::new(Vec::with_capacity(shards)),
            }),
        }
    }

    /// Sends `event` towards every subscriber of `topic` on every shard, from any thread.
    /// Never waits.
    ///
    /// Returns the number of subscribers, over all shards, that were alive when it was
    /// published and whose shard accepted the event into its forwarding queue. Subscribers
    /// on a shard whose queue was full are not counted: they will get `Lagged` for it
    /// instead. Delivery itself happens when each shard's forwarder next runs, so a counted
    /// subscriber that drops before then never sees the event.
    pub fn publish(&self, topic: &str, event: E) -> usize {
        let mailboxes = lock(&self.inner.mailboxes);
        let mut delivered = 0;
        for mailbox in mailboxes.iter() {
            let mut state = lock(&mailbox.state);
            if state.closed {
                continue;
            }
            let full = state.queue.len() >= self.inner.capacity;
            let Some(topic_state) = state.topics.get_mut(topic) else {
                continue;
            };
            if full {
                topic_state.lost += 1;
                state.lost_pending = true;
                continue;
            }
            delivered += topic_state.subscribers;
            let forward = Forward {
                topic: topic_state.name.clone(),
                lost_before: std::mem::take(&mut topic_state.lost),
                event: event.clone(),
            };
            state.queue.push_back(forward);
            let forwarder = state.forwarder.take();
            drop(state);
            if let Some(waker) = forwarder {
                waker.wake();
            }
        }
        delivered
    }

    /// A new subscriber to `topic` on the current shard; it receives events published from
    /// now on, on any shard (and possibly a few published just before, still in flight).
    ///
    /// # Panics
    ///
    /// Outside a ringloop runtime.
    #[track_caller]
    pub fn subscribe(&self, topic: &str) -> Subscriber<E> {
        if crate::runtime::context::with_current(|_| ()).is_none() {
            panic!("{OUTSIDE_RUNTIME}");
        }
        let (mailbox, bus) = self.local_link();
        let mut subscriber = bus.subscribe(topic);
        let mut state = lock(&mailbox.state);
        let topic_state = state
            .topics
            .entry(Arc::from(topic))
            .or_insert_with_key(|name| TopicState {
                name: name.clone(),
                subscribers: 0,
                lost: 0,
            });
        topic_state.subscribers += 1;
        let name = topic_state.name.clone();
        drop(state);
        subscriber.shared = Some(Registration {
            mailbox,
            topic: name,
        });
        subscriber
    }

    /// Live subscribers of `topic` over all shards.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        lock(&self.inner.mailboxes)
            .iter()
            .map(|m| {
                lock(&m.state)
                    .topics
                    .get(topic)
                    .map_or(0, |t| t.subscribers)
            })
            .sum()
    }

    /// This shard's mailbox and local bus, made (with the forwarding task) on first use.
    fn local_link(&self) -> (Arc<Mailbox<E>>, EventBus<E>) {
        let id = self.inner.id;
        let found = LINKS.with(|links| {
            links
                .borrow()
                .iter()
                .find(|(bus, _)| *bus == id)
                .map(|(_, link)| {
                    let link = link
                        .downcast_ref::<LocalLink<E>>()
                        .expect("a bus id belongs to one event type");
                    (link.mailbox.clone(), link.bus.clone())
                })
        });
        if let Some(found) = found {
            return found;
        }
        let mailbox = Arc::new(Mailbox {
            state: Mutex::new(MailboxState {
                queue: VecDeque::with_capacity(self.inner.capacity.min(1024)),
                topics: HashMap::new(),
                lost_pending: false,
                forwarder: None,
                closed: false,
            }),
        });
        let bus = EventBus::new(self.inner.capacity);
        lock(&self.inner.mailboxes).push(mailbox.clone());
        LINKS.with(|links| {
            let link = LocalLink {
                mailbox: mailbox.clone(),
                bus: bus.clone(),
            };
            links.borrow_mut().push((id, Box::new(link)));
        });
        crate::spawn(forward(
            mailbox.clone(),
            bus.clone(),
            Arc::downgrade(&self.inner),
        ));
        (mailbox, bus)
    }
}

/// A shard's forwarding task: moves events from its mailbox into its local bus until the
/// shared bus is gone (or the runtime drops the task).
async fn forward<E: Clone + Send + 'static>(
    mailbox: Arc<Mailbox<E>>,
    bus: EventBus<E>,
    shared: Weak<SharedInner<E>>,
) {
    let _unlink = Unlink {
        mailbox: mailbox.clone(),
        shared,
    };
    // Swapped with the mailbox's queue each turn: both keep their capacity, so forwarding
    // allocates nothing once warm.
    let mut batch: VecDeque<Forward<E>> = VecDeque::new();
    let mut tails: Vec<(Arc<str>, u64)> = Vec::new();
    loop {
        let closed = poll_fn(|cx| {
            let mut state = lock(&mailbox.state);
            if state.queue.is_empty() && !state.lost_pending && !state.closed {
                state.forwarder = Some(cx.waker().clone());
                return Poll::Pending;
            }
            std::mem::swap(&mut state.queue, &mut batch);
            if std::mem::take(&mut state.lost_pending) {
                // Lost after the last queued event of their topic: they come after the batch.
                for topic in state.topics.values_mut() {
                    if topic.lost > 0 {
                        tails.push((topic.name.clone(), std::mem::take(&mut topic.lost)));
                    }
                }
            }
            Poll::Ready(state.closed)
        })
        .await;
        for Forward {
            topic,
            lost_before,
            event,
        } in batch.drain(..)
        {
            if lost_before > 0 {
                bus.publish_lost(&topic, lost_before);
            }
            bus.publish(&topic, event);
        }
        for (topic, lost) in tails.drain(..) {
            bus.publish_lost(&topic, lost);
        }
        if closed {
            return;
        }
        // Let the shard's other tasks run between batches under a flood of events.
        crate::task::yield_now().await;
    }
}

/// Disconnects a shard from a shared bus when its forwarder ends (bus gone, or runtime
/// dropped): the mailbox takes no more events, the thread forgets its link, and the local
/// bus drops, so the shard's subscribers see `Closed` once drained.
struct Unlink<E: Clone + Send + 'static> {
    mailbox: Arc<Mailbox<E>>,
    shared: Weak<SharedInner<E>>,
}

impl<E: Clone + Send + 'static> Drop for Unlink<E> {
    fn drop(&mut self) {
        let queued = {
            let mut state = lock(&self.mailbox.state);
            state.closed = true;
            state.forwarder = None;
            std::mem::take(&mut state.queue)
        };
        drop(queued);
        if let Some(shared) = self.shared.upgrade() {
            lock(&shared.mailboxes).retain(|m| !Arc::ptr_eq(m, &self.mailbox));
        }
        let mailbox = &self.mailbox;
        // The thread may be tearing down its thread-locals already: then there is nothing
        // left to forget.
        let link = LINKS
            .try_with(|links| {
                let mut links = links.try_borrow_mut().ok()?;
                let i = links.iter().position(|(_, link)| {
                    link.downcast_ref::<LocalLink<E>>()
                        .is_some_and(|l| Arc::ptr_eq(&l.mailbox, mailbox))
                })?;
                Some(links.swap_remove(i))
            })
            .ok()
            .flatten();
        // Dropped outside the borrow: it drops the local bus, which wakes subscribers.
        drop(link);
    }
}

impl<E> Drop for SharedInner<E> {
    fn drop(&mut self) {
        let mailboxes = std::mem::take(&mut *lock(&self.mailboxes));
        for mailbox in mailboxes {
            let mut state = lock(&mailbox.state);
            state.closed = true;
            let forwarder = state.forwarder.take();
            drop(state);
            if let Some(waker) = forwarder {
                waker.wake();
            }
        }
    }
}

/// Counts a [`SharedBus`] subscriber in its shard's mailbox while it lives.
struct Registration<E> {
    mailbox: Arc<Mailbox<E>>,
    topic: Arc<str>,
}

impl<E> Drop for Registration<E> {
    fn drop(&mut self) {
        let mut state = lock(&self.mailbox.state);
        if let Some(topic) = state.topics.get_mut(&*self.topic) {
            topic.subscribers -= 1;
            if topic.subscribers == 0 {
                state.topics.remove(&*self.topic);
            }
        }
    }
}

impl<E: Clone + Send + 'static> fmt::Debug for SharedBus<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBus")
            .field("capacity", &self.inner.capacity)
            .field("shards", &lock(&self.inner.mailboxes).len())
            .finish()
    }
}
