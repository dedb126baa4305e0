//! `SendQueue`: writes queued on a stream socket and sent in order without waking the writer.
//!
//! `write_all(buf).await` costs a task wake and a poll per send: the task waits for the CQE,
//! then runs again only to learn the bytes left. A server that relays buffers (an echo, a
//! proxy) does not need that: it needs the buffers sent in order, the buffer released once
//! the kernel is done with it, and an error if the connection breaks. A `SendQueue` does
//! exactly that. Its sends are `Handled` driver ops: their CQE goes straight to the queue,
//! which releases the buffer, continues a short write, and submits the next buffer, all inside
//! the reactor's dispatch. A task waits only when the queue is full or when it flushes.
//!
//! # Invariants
//!
//! - (Q1) While `in_flight` is set, the front buffer is lent to the kernel (it reads from
//!   it). It is neither dropped nor moved out of the queue until the CQE reaches `complete`;
//!   the slot holds an `Rc` to the state, so even a dropped queue keeps the buffer alive until
//!   then. (Moving a buffer value inside the queue is fine: `IoBuf` memory stays put.)
//! - (Q2) At most one send is in flight per queue, so a short write is continued before any
//!   later byte goes out: bytes leave in the order they were queued.

use std::cell::RefCell;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use io_uring::{opcode, types};

use crate::buf::IoBuf;
use crate::driver::fd::SharedFd;
use crate::driver::fifo::Fifo;
use crate::driver::op::{Completion, Handler};
use crate::driver::slots::OpId;
use crate::driver::Driver;
use crate::task::waker::register;

/// Buffers queued for sending on one stream socket, sent in order in the background.
///
/// Made by [`TcpStream::send_queue`](crate::net::TcpStream::send_queue) (and the same method
/// on [`OwnedWriteHalf`](crate::net::OwnedWriteHalf) and [`UnixStream`](crate::net::UnixStream)).
/// [`send`](Self::send) returns as soon as the buffer is queued — at once while fewer than
/// `depth` buffers wait — and the queue writes each buffer completely (continuing short
/// writes) before the next, dropping it once the kernel is done with it. No task is woken per
/// write, which makes relaying received buffers (an echo, a proxy) about as cheap as io_uring
/// allows.
///
/// Like a buffered writer, a queue must be [`flush`](Self::flush)ed to know the bytes left:
/// **dropping it cancels the write in flight and discards what is still queued**. After a
/// failed write every later `send` and `flush` returns that error, and queued buffers are
/// dropped.
///
/// # Examples
///
/// An echo connection that relays each received chunk without waiting for its write:
///
/// ```no_run
/// use ringloop::net::{BufferPool, TcpListener};
///
/// ringloop::block_on(async {
///     let pool = BufferPool::new(64, 4096)?;
///     let listener = TcpListener::bind("127.0.0.1:7878")?;
///     let (stream, _) = listener.accept().await?;
///     let mut rx = stream.recv_pooled(&pool);
///     let mut tx = stream.send_queue(2);
///     while let Some(chunk) = rx.next().await {
///         tx.send(chunk?).await?;
///     }
///     tx.flush().await
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub struct SendQueue<B: IoBuf> {
    state: Rc<State<B>>,
}

struct State<B> {
    fd: SharedFd,
    /// `fd`'s number, copied here (`fd` keeps it open): a send reads it from the line it
    /// touches anyway, not from the `SharedFd`'s allocation.
    target: types::Fd,
    driver: Rc<Driver>,
    depth: usize,
    inner: RefCell<Inner<B>>,
}

struct Inner<B> {
    /// (Q1) The front buffer is the one in flight, if any.
    queue: Fifo<B>,
    /// Bytes of the front buffer already written.
    written: usize,
    /// The driver slot this queue's sends reuse, once it has one.
    slot: Option<OpId>,
    /// A send is in the kernel (in `slot`).
    in_flight: bool,
    failed: Option<Failure>,
    /// The queue was dropped: complete the write in flight, send nothing more.
    closed: bool,
    /// The task in `send` (waiting for room) or `flush` (waiting for an empty queue).
    waiter: Option<Waker>,
}

/// Why the queue stopped; kept so every later call reports it.
#[derive(Debug, Clone, Copy)]
enum Failure {
    Errno(i32),
    WriteZero,
}

impl Failure {
    fn to_error(self) -> io::Error {
        match self {
            Failure::Errno(errno) => io::Error::from_raw_os_error(errno),
            Failure::WriteZero => {
                io::Error::new(io::ErrorKind::WriteZero, "the stream accepted no bytes")
            }
        }
    }
}

impl<B: IoBuf> SendQueue<B> {
    pub(crate) fn new(fd: SharedFd, driver: Rc<Driver>, depth: usize) -> SendQueue<B> {
        SendQueue {
            state: Rc::new(State {
                target: fd.as_types_fd(),
                fd,
                driver,
                depth: depth.max(1),
                inner: RefCell::new(Inner {
                    queue: Fifo::new(),
                    written: 0,
                    slot: None,
                    in_flight: false,
                    failed: None,
                    closed: false,
                    waiter: None,
                }),
            }),
        }
    }

    /// Queues `buf`'s initialised bytes to be sent after everything queued before. Waits only
    /// while `depth` buffers are already queued; an empty buffer is dropped at once.
    ///
    /// # Errors
    ///
    /// The error of an earlier write (`BrokenPipe`, `ConnectionReset`, `WriteZero`, …): the
    /// connection is broken and `buf` is dropped.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, `buf` was not queued.
    pub fn send(&mut self, buf: B) -> impl Future<Output = io::Result<()>> + '_ {
        // A hand-written future rather than an `async fn`: the common case (room in the
        // queue) is one borrow and no state machine, and this runs once per message relayed.
        let mut buf = Some(buf);
        poll_fn(move |cx| self.poll_send(cx, &mut buf))
    }

    /// [`send`](Self::send) as a poll: queues the buffer in `buf` (taking it) once there is
    /// room.
    #[inline]
    pub(crate) fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Option<B>,
    ) -> Poll<io::Result<()>> {
        let mut inner = self.state.inner.borrow_mut();
        if let Some(failure) = inner.failed {
            return Poll::Ready(Err(failure.to_error()));
        }
        if inner.queue.len() >= self.state.depth {
            register(&mut inner.waiter, cx.waker());
            return Poll::Pending;
        }
        let buf = buf
            .take()
            .expect("a send future is not polled after it completed");
        if buf.bytes_init() == 0 {
            return Poll::Ready(Ok(()));
        }
        inner.queue.push_back(buf);
        if inner.in_flight {
            return Poll::Ready(Ok(()));
        }
        drop(inner);
        // A send the ring refused at once (the runtime shut down) fails here, not later.
        Poll::Ready(self.state.submit_front().map_err(Failure::to_error))
    }

    /// Waits until every queued byte was handed to the kernel (as `write_all` would).
    ///
    /// # Errors
    ///
    /// The first write error, as for [`send`](Self::send).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the queue keeps sending whether or not anyone waits.
    pub async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// [`flush`](Self::flush) as a poll.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut inner = self.state.inner.borrow_mut();
        if let Some(failure) = inner.failed {
            return Poll::Ready(Err(failure.to_error()));
        }
        if inner.queue.is_empty() {
            return Poll::Ready(Ok(()));
        }
        register(&mut inner.waiter, cx.waker());
        Poll::Pending
    }

    /// Buffers queued and not yet completely written (the one being written included).
    pub fn queued(&self) -> usize {
        self.state.inner.borrow().queue.len()
    }

    /// How many buffers may be queued before [`send`](Self::send) waits.
    pub fn depth(&self) -> usize {
        self.state.depth
    }
}

/// Copies for the poll-based writers (`compat::Compat`): bytes lent for one call are copied
/// into owned buffers of at most `chunk` bytes.
#[cfg(feature = "_compat")]
impl SendQueue<Vec<u8>> {
    /// Copies as much of `data` as fits and returns how much that was: into the newest queued
    /// buffer while it is behind the one in flight (Q1: only the front is lent) and under
    /// `chunk` bytes, else into a new buffer if the queue has room. Pending (woken by a
    /// completion) when it has none. The queue sends what it accepted without further polls.
    pub(crate) fn poll_write_copy(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
        chunk: usize,
    ) -> Poll<io::Result<usize>> {
        let mut inner = self.state.inner.borrow_mut();
        if let Some(failure) = inner.failed {
            return Poll::Ready(Err(failure.to_error()));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if let Some(newest) = inner.queue.newest_behind_front_mut() {
            if newest.len() < chunk {
                let n = data.len().min(chunk - newest.len());
                newest.extend_from_slice(&data[..n]);
                return Poll::Ready(Ok(n));
            }
        }
        if inner.queue.len() >= self.state.depth {
            register(&mut inner.waiter, cx.waker());
            return Poll::Pending;
        }
        drop(inner);
        let n = data.len().min(chunk);
        // There is room (checked above, first, so that a full queue copies nothing): queued,
        // and submitted if nothing is in flight, as any `send`.
        self.poll_send(cx, &mut Some(data[..n].to_vec()))
            .map_ok(|()| n)
    }
}

impl<B: IoBuf> State<B> {
    /// Submits the unwritten part of the front buffer. The caller saw nothing in flight.
    /// If the ring refuses it, the queue fails and drops what it holds.
    fn submit_front(self: &Rc<Self>) -> Result<(), Failure> {
        let (sqe, slot) = {
            let inner = self.inner.borrow();
            debug_assert!(!inner.in_flight, "(Q2) one send at a time");
            let Some(front) = inner.queue.front() else {
                return Ok(());
            };
            let left = front.bytes_init() - inner.written;
            let ptr = front.stable_ptr().wrapping_add(inner.written);
            // (Q1) `front` stays in the queue, unmoved in memory, until this op's CQE.
            let sqe = opcode::Send::new(self.target, ptr, u32::try_from(left).unwrap_or(u32::MAX))
                .flags(libc::MSG_NOSIGNAL)
                .build();
            (sqe, inner.slot)
        };
        let submitted = match slot {
            // The slot of the previous send: no new slot, no new handler reference.
            Some(id) => self.driver.resubmit_handled(id, sqe),
            None => {
                let handler: Rc<dyn Handler> = self.clone();
                self.driver.submit_handled(sqe, handler)
            }
        };
        let mut inner = self.inner.borrow_mut();
        match submitted {
            Ok(id) => {
                inner.slot = Some(id);
                inner.in_flight = true;
                Ok(())
            }
            Err(errno) => {
                // The driver freed the slot.
                inner.slot = None;
                drop(inner);
                let failure = Failure::Errno(errno);
                self.fail(failure);
                Err(failure)
            }
        }
    }

    /// Gives the queue's driver slot back; nothing is in flight.
    fn release_slot(&self) {
        let slot = self.inner.borrow_mut().slot.take();
        if let Some(id) = slot {
            self.driver.release_handled(id);
        }
    }

    /// Stops the queue: drops what it holds (nothing is in flight) and wakes the waiter.
    fn fail(&self, failure: Failure) {
        self.release_slot();
        let mut inner = self.inner.borrow_mut();
        inner.failed.get_or_insert(failure);
        inner.written = 0;
        let dropped = std::mem::take(&mut inner.queue);
        let waiter = inner.waiter.take();
        drop(inner);
        // User code (the buffers' and the waker's) runs with nothing borrowed.
        drop(dropped);
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }
}

impl<B: IoBuf> Handler for State<B> {
    fn complete(self: Rc<Self>, completion: Completion) {
        let mut inner = self.inner.borrow_mut();
        inner.in_flight = false;
        if inner.closed {
            // The queue is gone: release the buffer the kernel is done with, send no more.
            let dropped = std::mem::take(&mut inner.queue);
            drop(inner);
            drop(dropped);
            self.release_slot();
            return;
        }
        let mut done = None;
        match completion.result {
            res if res == -libc::EINTR || res == -libc::EAGAIN => {}
            res if res < 0 => {
                drop(inner);
                self.fail(Failure::Errno(-res));
                return;
            }
            0 => {
                drop(inner);
                self.fail(Failure::WriteZero);
                return;
            }
            sent => {
                inner.written += sent as usize;
                let front_len = inner.queue.front().map_or(0, IoBuf::bytes_init);
                if inner.written >= front_len {
                    inner.written = 0;
                    done = inner.queue.pop_front();
                }
            }
        }
        let more = !inner.queue.is_empty();
        let waiter = if inner.queue.len() < self.depth {
            inner.waiter.take()
        } else {
            None
        };
        drop(inner);
        drop(done);
        if more {
            // A refusal is recorded in the queue, for its next `send` or `flush`.
            let _ = self.submit_front();
        }
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }
}

impl<B: IoBuf> Drop for SendQueue<B> {
    fn drop(&mut self) {
        let mut inner = self.state.inner.borrow_mut();
        inner.closed = true;
        let in_flight = inner.in_flight;
        let slot = inner.slot;
        // (Q1) the buffer in flight stays until its CQE; the rest was never lent.
        let keep = usize::from(in_flight).min(inner.queue.len());
        let dropped = inner.queue.split_off(keep);
        let waiter = inner.waiter.take();
        drop(inner);
        drop(dropped);
        drop(waiter);
        match slot {
            // The CQE releases the slot (see `complete`).
            Some(id) if in_flight => self.state.driver.cancel_handled(id),
            // The slot holds the state: release it, or the two keep each other alive.
            _ => self.state.release_slot(),
        }
    }
}

impl<B: IoBuf> fmt::Debug for SendQueue<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.state.inner.borrow();
        f.debug_struct("SendQueue")
            .field("fd", &self.state.fd.raw())
            .field("depth", &self.state.depth)
            .field("queued", &inner.queue.len())
            .field("failed", &inner.failed)
            .finish()
    }
}
