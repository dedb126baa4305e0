//! `MultiOp<T>`: the stream of CQEs of one multishot operation (accept, receive).
//!
//! One SQE, many CQEs: each carries `IORING_CQE_F_MORE` but the last. The kernel may end a
//! multishot request at any time (an error, CQ overflow, no provided buffer left); the stream
//! then yields `None` and the owner decides whether to [`rearm`](MultiOp::rearm) it.

use std::rc::Rc;
use std::task::{Context, Poll};

use io_uring::squeue;

use super::{Completion, Orphan};
use crate::driver::slots::{OpId, StreamQueue};
use crate::driver::Driver;

/// A multishot operation's resources and how each CQE becomes an item.
///
/// # Safety
///
/// As for [`Operation`](super::Operation): the SQE may only point into memory owned by `self`
/// (or `'static`) that stays put when `self` moves, valid until the last CQE.
pub(crate) unsafe trait Multishot: 'static {
    /// What one CQE becomes.
    type Item;

    /// Builds the SQE (with its multishot flag); the driver sets `user_data`.
    fn sqe(&mut self) -> squeue::Entry;

    /// Turns one CQE into an item.
    fn item(&mut self, completion: Completion) -> Self::Item;

    /// A CQE nobody will take: close the fd or return the buffer it carries. No user code.
    fn release(&mut self, completion: Completion);
}

struct Orphaned<T>(T);

impl<T: Multishot> Orphan for Orphaned<T> {
    fn release(&mut self, completion: Completion) {
        self.0.release(completion);
    }
}

/// A live multishot request, or an ended one that can be re-armed.
pub(crate) struct MultiOp<T: Multishot> {
    driver: Rc<Driver>,
    /// `None` once the kernel ended the request.
    id: Option<OpId>,
    /// Where the CQEs of the current request arrive.
    queue: Rc<StreamQueue>,
    data: Option<T>,
}

impl<T: Multishot> MultiOp<T> {
    pub(crate) fn submit(driver: Rc<Driver>, data: T) -> MultiOp<T> {
        let mut op = MultiOp::unarmed(driver, data);
        op.rearm();
        op
    }

    /// Nothing submitted yet: the stream yields `None` until the owner [`rearm`](Self::rearm)s.
    pub(crate) fn unarmed(driver: Rc<Driver>, data: T) -> MultiOp<T> {
        MultiOp {
            driver,
            id: None,
            queue: Rc::default(),
            data: Some(data),
        }
    }

    /// Submits the SQE again after the kernel ended the request.
    pub(crate) fn rearm(&mut self) {
        debug_assert!(self.id.is_none(), "re-armed while still armed");
        let data = self.data.as_mut().expect("data lives until drop");
        let sqe = data.sqe();
        let (id, queue) = self.driver.submit_multishot(sqe);
        self.id = Some(id);
        self.queue = queue;
    }

    /// The next item, or `None` when the kernel ended the request.
    #[inline]
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<T::Item>> {
        let Some(id) = self.id else {
            return Poll::Ready(None);
        };
        let mut spent = std::task::ready!(crate::task::budget::poll_proceed(cx));
        let next = std::task::ready!(self.queue.poll_next(cx));
        spent.made_progress();
        match next {
            Some(completion) => {
                let data = self.data.as_mut().expect("data lives until drop");
                Poll::Ready(Some(data.item(completion)))
            }
            None => {
                self.driver.end_stream(id);
                self.id = None;
                Poll::Ready(None)
            }
        }
    }

    /// The resources, for the owner's own bookkeeping.
    pub(crate) fn data(&self) -> &T {
        self.data.as_ref().expect("data lives until drop")
    }
}

impl<T: Multishot> Drop for MultiOp<T> {
    fn drop(&mut self) {
        let data = self.data.take().expect("data lives until drop");
        match self.id {
            Some(id) => self.driver.abandon(id, Box::new(Orphaned(data))),
            None => drop(data),
        }
    }
}

impl<T: Multishot> std::fmt::Debug for MultiOp<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiOp")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
