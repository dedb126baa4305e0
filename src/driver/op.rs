//! `Op<T>`: the future of one io_uring operation, and the [`Operation`] trait each opcode
//! implements in its own file under `op/`.
//!
//! The `Op` owns the operation's resources (`T`: buffers, paths, the fd) while the kernel works.
//! On completion it hands them back through [`Operation::complete`]. If the `Op` is dropped
//! first, the resources move into the slot (`Ignored`), an `ASYNC_CANCEL` is queued, and they
//! are released by [`Orphan::release`] when the kernel's CQE finally arrives.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use io_uring::squeue;

use super::slots::OpId;
use super::Driver;

/// A CQE's result and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Completion {
    pub(crate) result: i32,
    pub(crate) flags: u32,
}

impl Completion {
    /// The completion of an op that failed with `errno` before the kernel ran it (it could
    /// not be queued, or was cancelled while it waited to be).
    pub(crate) fn failed(errno: i32) -> Completion {
        Completion {
            result: -errno,
            flags: 0,
        }
    }

    /// The result as `io::Result`: negative values are `-errno`.
    pub(crate) fn into_result(self) -> io::Result<u32> {
        if self.result < 0 {
            Err(io::Error::from_raw_os_error(-self.result))
        } else {
            Ok(self.result as u32)
        }
    }
}

/// One io_uring operation: the resources it lends the kernel and how to build its SQE.
///
/// # Safety
///
/// The SQE returned by `sqe` may only point into memory owned by `self` whose address does not
/// change when `self` is moved (heap memory: a `Vec`'s buffer, a `Box`, a `CString`), or into
/// `'static` memory. That memory must stay valid until `complete` or `release` consumes `self`.
/// The driver guarantees `self` is neither dropped nor given back to the user before the CQE.
pub(crate) unsafe trait Operation: 'static {
    /// What the operation's future resolves to (usually `(io::Result<_>, buffer)`).
    type Output;

    /// Builds the SQE; the driver sets `user_data`.
    fn sqe(&mut self) -> squeue::Entry;

    /// Turns the CQE into the output, handing the resources back.
    fn complete(self, completion: Completion) -> Self::Output;

    /// The CQE of an operation whose future was dropped. Override to release what the kernel
    /// produced (close the fd an abandoned open or accept returned). The resources themselves
    /// are dropped right after.
    fn release(&mut self, completion: Completion) {
        let _ = completion;
    }
}

/// The type-erased resources of a dropped operation, kept in its slot until its last CQE.
///
/// `release` runs once per CQE the kernel still posts (several for a multishot op). For a CQE
/// with `IORING_CQE_F_MORE` it runs while the driver is borrowed, so it must not run user code:
/// implementations only close fds or return provided buffers.
pub(crate) trait Orphan {
    fn release(&mut self, completion: Completion);
}

impl<T: Operation> Orphan for T {
    fn release(&mut self, completion: Completion) {
        Operation::release(self, completion);
    }
}

/// Receives the CQE of an operation no future awaits, submitted with
/// [`Driver::submit_handled`]. The handler owns the operation's resources (the slot keeps it
/// alive until the CQE), so it may release or reuse them, and submit the next operation.
///
/// `complete` runs after the driver's borrow is released, during the reactor's dispatch: it
/// may submit, drop user buffers and wake tasks.
pub(crate) trait Handler {
    fn complete(self: Rc<Self>, completion: Completion);
}

/// The future of one submitted operation.
pub(crate) struct Op<T: Operation> {
    driver: Rc<Driver>,
    id: OpId,
    /// `None` only after completion or drop.
    data: Option<T>,
}

// The resources are never pinned: the kernel sees only their heap memory (see `Operation`).
impl<T: Operation> Unpin for Op<T> {}

impl<T: Operation> Op<T> {
    /// Submits `data`'s SQE. A submission that cannot be made at all completes the op with
    /// the error, so the future always resolves.
    pub(crate) fn submit(driver: Rc<Driver>, mut data: T) -> Op<T> {
        let sqe = data.sqe();
        let id = driver.submit(sqe);
        Op {
            driver,
            id,
            data: Some(data),
        }
    }

    /// [`submit`](Self::submit) for an operation on a file or a path, which completes on its
    /// own (no peer has to act): while its future lives a paused clock does not move by
    /// itself, as tokio's does not while its blocking pool runs a file operation.
    pub(crate) fn submit_file(driver: Rc<Driver>, data: T) -> FileOp<T> {
        FileOp {
            _hold: ClockHold::new(driver.clone()),
            op: Op::submit(driver, data),
        }
    }
}

/// An [`Op`] on a file or a path, counted in the driver's
/// [`clock_holds`](Driver::clock_holds) while it lives (see [`Op::submit_file`]). Socket ops
/// are plain `Op`s and pay nothing for it.
pub(crate) struct FileOp<T: Operation> {
    op: Op<T>,
    _hold: ClockHold,
}

impl<T: Operation> Future for FileOp<T> {
    type Output = T::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        Pin::new(&mut self.op).poll(cx)
    }
}

/// One count in the driver's clock holds, for as long as it lives.
struct ClockHold {
    driver: Rc<Driver>,
}

impl ClockHold {
    fn new(driver: Rc<Driver>) -> ClockHold {
        driver.hold_clock();
        ClockHold { driver }
    }
}

impl Drop for ClockHold {
    fn drop(&mut self) {
        self.driver.release_clock();
    }
}

impl<T: Operation> Future for Op<T> {
    type Output = T::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        let mut spent = std::task::ready!(crate::task::budget::poll_proceed(cx));
        let completion = std::task::ready!(self.driver.poll_op(self.id, cx));
        spent.made_progress();
        let data = self
            .data
            .take()
            .expect("an Op is not polled after it completed");
        Poll::Ready(data.complete(completion))
    }
}

impl<T: Operation> Drop for Op<T> {
    fn drop(&mut self) {
        if let Some(data) = self.data.take() {
            self.driver.abandon(self.id, Box::new(data));
        }
    }
}

impl<T: Operation> std::fmt::Debug for Op<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Op")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

pub(crate) mod accept_multi;
pub(crate) mod connect;
pub(crate) mod fsync;
pub(crate) mod ftruncate;
pub(crate) mod link;
pub(crate) mod mkdir;
pub(crate) mod multi;
pub(crate) mod open;
pub(crate) mod poll;
pub(crate) mod read_at;
pub(crate) mod readv;
pub(crate) mod recv;
pub(crate) mod recv_from;
pub(crate) mod recv_msg_multi;
pub(crate) mod recv_multi;
pub(crate) mod rename;
pub(crate) mod send;
pub(crate) mod send_to;
pub(crate) mod statx;
pub(crate) mod symlink;
pub(crate) mod unlink;
pub(crate) mod waitid;
pub(crate) mod write_at;
pub(crate) mod writev;
