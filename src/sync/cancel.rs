//! `CancellationToken`: tokio-util's cancellation tree, local to one runtime.
//!
//! A token is a node; clones share it. Cancelling a node cancels every node below it, once and
//! for good, and wakes everything waiting on any of them. Children are held weakly, so a tree
//! of short-lived child tokens does not grow with every child ever made.
//!
//! # Invariants
//!
//! - (K1) Cancelled is final: once a node's flag is set it is never cleared, so a waiter that
//!   sees the flag may complete without looking at its queue entry.
//! - (K2) A node is cancelled before its children are looked at, and `child_token` checks the
//!   parent's flag when it links the child: a child made during or after its parent's cancel
//!   starts cancelled.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};

use super::wait_list::{wake_then_recycle, WaitList};

/// A token that tasks wait on and one of them cancels, as in `tokio_util::sync`, for one
/// runtime (it is not `Send`; between shards use [`shard::Shutdown`](crate::shard::Shutdown)).
///
/// Clones share one state: cancelling any of them cancels all. A
/// [`child_token`](Self::child_token) is cancelled with its parent, but cancelling the child
/// leaves the parent alone — a server cancels everything through its root token, a
/// connection only its own subtree.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ringloop::sync::CancellationToken;
///
/// ringloop::block_on(async {
///     let shutdown = CancellationToken::new();
///     let worker = ringloop::spawn({
///         let token = shutdown.child_token();
///         async move {
///             let mut ticks = 0;
///             loop {
///                 ringloop::select! {
///                     _ = token.cancelled() => return ticks,
///                     _ = ringloop::time::sleep(Duration::from_millis(1)) => ticks += 1,
///                 }
///             }
///         }
///     });
///     ringloop::time::sleep(Duration::from_millis(5)).await;
///     shutdown.cancel();
///     assert!(worker.await.unwrap() >= 1);
/// });
/// ```
#[derive(Clone)]
pub struct CancellationToken {
    node: Rc<Node>,
}

struct Node {
    cancelled: Cell<bool>,
    waiters: RefCell<WaitList>,
    children: RefCell<Vec<Weak<Node>>>,
}

impl CancellationToken {
    /// A new root token, not cancelled.
    pub fn new() -> CancellationToken {
        CancellationToken {
            node: Rc::new(Node {
                cancelled: Cell::new(false),
                waiters: RefCell::new(WaitList::new()),
                children: RefCell::new(Vec::new()),
            }),
        }
    }

    /// A token cancelled when this one is (or at once, if this one already is); cancelling it
    /// does not cancel this one.
    pub fn child_token(&self) -> CancellationToken {
        let child = CancellationToken::new();
        // K2: cancelled parents make cancelled children.
        child.node.cancelled.set(self.node.cancelled.get());
        if !self.is_cancelled() {
            let mut children = self.node.children.borrow_mut();
            // Children are weak: the dead ones are dropped whenever the list is full, before it
            // would grow, so it stays within twice the live children at an amortised O(1).
            if children.len() >= 8 && children.len() == children.capacity() {
                children.retain(|c| c.strong_count() > 0);
            }
            children.push(Rc::downgrade(&child.node));
        }
        child
    }

    /// Cancels this token and every token below it, and wakes everything waiting on them.
    /// Cancelling again does nothing.
    pub fn cancel(&self) {
        let mut wakers = Vec::new();
        let mut pending = vec![self.node.clone()];
        // Iterative, not recursive: a chain of a million children cannot overflow the stack.
        while let Some(node) = pending.pop() {
            if node.cancelled.replace(true) {
                continue;
            }
            node.waiters.borrow_mut().notify_all(&mut wakers);
            let children = std::mem::take(&mut *node.children.borrow_mut());
            pending.extend(children.iter().filter_map(Weak::upgrade));
        }
        // Woken after every borrow is released: a waker may run code that touches the tree.
        wake_then_recycle(wakers, drop);
    }

    /// Whether this token was cancelled (directly or through a parent).
    pub fn is_cancelled(&self) -> bool {
        self.node.cancelled.get()
    }

    /// Completes once the token is cancelled (at once if it already is).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped future leaves the queue; the cancellation itself is a state,
    /// seen by every later call.
    pub fn cancelled(&self) -> Cancelled<'_> {
        Cancelled {
            node: &self.node,
            waiter: Waiter::default(),
        }
    }

    /// [`cancelled`](Self::cancelled), owning a clone of the token: a `'static` future.
    pub fn cancelled_owned(self) -> CancelledOwned {
        CancelledOwned {
            node: self.node,
            waiter: Waiter::default(),
        }
    }

    /// Runs `future` until it completes (`Some(output)`) or the token is cancelled (`None`,
    /// and `future` is dropped). Cancellation wins when both are ready.
    pub async fn run_until_cancelled<F: Future>(&self, future: F) -> Option<F::Output> {
        let mut future = std::pin::pin!(future);
        let mut cancelled = self.cancelled();
        std::future::poll_fn(|cx| {
            if Pin::new(&mut cancelled).poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            future.as_mut().poll(cx).map(Some)
        })
        .await
    }

    /// A guard that cancels the token when dropped, unless [`disarm`](DropGuard::disarm)ed:
    /// tie a subtree of work to a scope, however the scope ends.
    pub fn drop_guard(self) -> DropGuard {
        DropGuard { token: Some(self) }
    }
}

impl Default for CancellationToken {
    fn default() -> Self {
        CancellationToken::new()
    }
}

impl fmt::Debug for CancellationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancellationToken")
            .field("is_cancelled", &self.is_cancelled())
            .finish()
    }
}

/// A future's place in a node's queue.
#[derive(Debug, Default)]
struct Waiter {
    key: Option<usize>,
}

impl Waiter {
    fn poll(&mut self, node: &Node, cx: &mut Context<'_>) -> Poll<()> {
        if node.cancelled.get() {
            // K1: the flag is final, whatever the queue says.
            self.leave(node);
            return Poll::Ready(());
        }
        let mut waiters = node.waiters.borrow_mut();
        match self.key {
            Some(key) => waiters.register(key, cx.waker()),
            None => self.key = Some(waiters.push(cx.waker(), 1)),
        }
        Poll::Pending
    }

    fn leave(&mut self, node: &Node) {
        if let Some(key) = self.key.take() {
            node.waiters.borrow_mut().remove(key);
        }
    }
}

/// The future of [`CancellationToken::cancelled`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Cancelled<'a> {
    node: &'a Rc<Node>,
    waiter: Waiter,
}

impl Future for Cancelled<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.waiter.poll(this.node, cx)
    }
}

impl Drop for Cancelled<'_> {
    fn drop(&mut self) {
        self.waiter.leave(self.node);
    }
}

/// The future of [`CancellationToken::cancelled_owned`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct CancelledOwned {
    node: Rc<Node>,
    waiter: Waiter,
}

impl Future for CancelledOwned {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.waiter.poll(&this.node, cx)
    }
}

impl Drop for CancelledOwned {
    fn drop(&mut self) {
        self.waiter.leave(&self.node);
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("cancelled", &self.cancelled.get())
            .finish_non_exhaustive()
    }
}

/// Cancels its token when dropped; see [`CancellationToken::drop_guard`].
#[derive(Debug)]
pub struct DropGuard {
    token: Option<CancellationToken>,
}

impl DropGuard {
    /// Gives the token back without cancelling it.
    pub fn disarm(mut self) -> CancellationToken {
        self.token
            .take()
            .expect("a DropGuard holds its token until dropped")
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            token.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CancellationToken;
    use std::time::Duration;

    #[test]
    fn dead_children_and_given_up_waiters_are_not_kept() {
        crate::block_on(async {
            let root = CancellationToken::new();
            for _ in 0..10_000 {
                let child = root.child_token();
                let gave_up = crate::time::timeout(Duration::ZERO, child.cancelled()).await;
                assert!(gave_up.is_err());
                let waiting = crate::time::timeout(Duration::ZERO, root.cancelled()).await;
                assert!(waiting.is_err());
            }
            assert!(root.node.children.borrow().len() <= 16);
            assert!(root.node.waiters.borrow().is_empty());
        });
    }
}
