//! [`SharedBus`]: the event bus across shards (see the [module doc](super)).

use std::any::Any;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Poll, Waker};

use super::{EventBus, Subscriber};

/// A topic-based event bus across shards: publish from any thread, subscribe on any shard.
///
/// `Clone + Send + Sync` (an `Arc`). Build it before the shards start and move a clone into
/// each. How events travel and what happens to a slow shard: see the [module doc](crate::event).
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
pub(super) struct Registration<E> {
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
