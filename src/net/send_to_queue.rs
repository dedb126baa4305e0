//! `SendToQueue`: datagrams sent from a socket without waking the sender per datagram.
//!
//! `send_to(buf, addr).await` costs a boxed `msghdr`, a driver slot, and a task wake and poll
//! per datagram. A server answering many peers (an echo, a DNS-like responder, a relay) needs
//! none of that: it needs each datagram handed to the kernel and its buffer released after.
//! A `SendToQueue` keeps `depth` send slots, each with its `msghdr` and driver slot made once
//! and reused; a send's CQE goes straight to its slot, which drops the buffer and frees the
//! slot inside the reactor's dispatch. A task waits only when every slot is busy, or when it
//! flushes.
//!
//! # Invariants
//!
//! - (S1) While a slot is busy, its buffer and its boxed `msghdr` (with the address and the
//!   `iovec` it points to) are lent to the kernel: neither is dropped, moved out or rewritten
//!   until that slot's CQE reaches `complete`. The driver slot holds an `Rc` to the queue's
//!   state, so even a dropped queue keeps them until then.

use std::cell::RefCell;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use io_uring::types;

use crate::buf::IoBuf;
use crate::driver::fd::SharedFd;
use crate::driver::op::recv_from::MsgHeader;
use crate::driver::op::{Completion, Handler};
use crate::driver::slots::OpId;
use crate::driver::sockaddr::SockAddrBuf;
use crate::driver::Driver;
use crate::task::waker::register;

/// Datagrams queued for sending from one socket, each to its own address, sent in the
/// background.
///
/// Made by [`UdpSocket::send_queue`](crate::net::UdpSocket::send_queue).
/// [`send_to`](Self::send_to) returns as soon as the datagram is handed to the kernel, at once
/// while fewer than `depth` sends are in flight; each buffer is dropped once the kernel is done
/// with it. Datagrams may leave in another order than they were queued, as UDP allows.
///
/// A send's error (for example `ConnectionRefused` reported for an earlier datagram) belongs to
/// that datagram only: the queue keeps sending, and [`flush`](Self::flush) returns the first
/// error since the last flush. Dropping the queue lets the sends in flight finish.
///
/// # Examples
///
/// An echo that sends each received datagram back as it is (no copy, no wake per send):
///
/// ```no_run
/// use ringloop::net::{BufferPool, UdpSocket};
///
/// ringloop::block_on(async {
///     let socket = UdpSocket::bind("127.0.0.1:7890")?;
///     let pool = BufferPool::new(256, 2048)?;
///     let mut datagrams = socket.recv_from_pooled(&pool)?;
///     let mut replies = socket.send_queue(64);
///     while let Some(datagram) = datagrams.next().await {
///         let datagram = datagram?;
///         let peer = datagram.peer_addr();
///         replies.send_to(datagram, peer).await?;
///     }
///     replies.flush().await
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub struct SendToQueue<B: IoBuf> {
    state: Rc<State<B>>,
}

struct State<B> {
    fd: SharedFd,
    /// `fd`'s number (`fd` keeps it open).
    target: types::Fd,
    driver: Rc<Driver>,
    depth: usize,
    inner: RefCell<Inner<B>>,
}

struct Inner<B> {
    /// Made on first use, at most `depth`.
    slots: Vec<Slot<B>>,
    /// Indexes of the slots not in flight.
    free: Vec<usize>,
    /// The first send error since the last flush.
    error: Option<i32>,
    /// The queue was dropped: free each slot as its CQE arrives.
    closed: bool,
    /// The task in `send_to` (waiting for a slot) or `flush` (waiting for none in flight).
    waiter: Option<Waker>,
}

struct Slot<B> {
    /// (S1) What the kernel reads: the address and the `iovec` into `buf`.
    header: Box<MsgHeader>,
    /// (S1) Lent to the kernel while `Some`.
    buf: Option<B>,
    /// The driver slot this send slot's SENDMSGs reuse.
    op: Option<OpId>,
}

/// The handler of one send slot's CQEs: which slot, and the queue.
struct SlotHandler<B> {
    state: Rc<State<B>>,
    index: usize,
}

impl<B: IoBuf> SendToQueue<B> {
    pub(crate) fn new(fd: SharedFd, driver: Rc<Driver>, depth: usize) -> SendToQueue<B> {
        let depth = depth.max(1);
        SendToQueue {
            state: Rc::new(State {
                target: fd.as_types_fd(),
                fd,
                driver,
                depth,
                inner: RefCell::new(Inner {
                    slots: Vec::new(),
                    free: Vec::new(),
                    error: None,
                    closed: false,
                    waiter: None,
                }),
            }),
        }
    }

    /// Sends `buf`'s initialised bytes as one datagram to `addr`, in the background. Waits
    /// only while `depth` sends are in flight.
    ///
    /// # Errors
    ///
    /// Only when the ring refuses the send at once (the runtime is shutting down); `buf` is
    /// dropped. The datagram's own error, if any, is [`flush`](Self::flush)'s.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped while it waits for a slot, it sends nothing (and drops `buf`).
    pub fn send_to(
        &mut self,
        buf: B,
        addr: SocketAddr,
    ) -> impl Future<Output = io::Result<()>> + '_ {
        let mut buf = Some(buf);
        let addr = SockAddrBuf::from_std(addr);
        poll_fn(move |cx| self.poll_send_to(cx, &mut buf, addr))
    }

    fn poll_send_to(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Option<B>,
        addr: SockAddrBuf,
    ) -> Poll<io::Result<()>> {
        let index = {
            let mut inner = self.state.inner.borrow_mut();
            match inner.free.pop() {
                Some(index) => index,
                None if inner.slots.len() < self.state.depth => {
                    inner.slots.push(Slot {
                        header: MsgHeader::boxed(),
                        buf: None,
                        op: None,
                    });
                    inner.slots.len() - 1
                }
                None => {
                    register(&mut inner.waiter, cx.waker());
                    return Poll::Pending;
                }
            }
        };
        let buf = buf
            .take()
            .expect("a send_to future is not polled after it completed");
        Poll::Ready(self.state.submit(index, buf, addr))
    }

    /// Waits until no send is in flight, and returns the first send error since the last
    /// flush (then forgets it).
    ///
    /// # Errors
    ///
    /// That first error: `ConnectionRefused`, `EMSGSIZE` for a datagram too large, ...
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the sends go on whether or not anyone waits.
    pub async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| {
            let mut inner = self.state.inner.borrow_mut();
            if inner.free.len() < inner.slots.len() {
                register(&mut inner.waiter, cx.waker());
                return Poll::Pending;
            }
            Poll::Ready(match inner.error.take() {
                Some(errno) => Err(io::Error::from_raw_os_error(errno)),
                None => Ok(()),
            })
        })
        .await
    }

    /// Sends in flight.
    pub fn in_flight(&self) -> usize {
        let inner = self.state.inner.borrow();
        inner.slots.len() - inner.free.len()
    }

    /// How many sends may be in flight before [`send_to`](Self::send_to) waits.
    pub fn depth(&self) -> usize {
        self.state.depth
    }
}

impl<B: IoBuf> State<B> {
    /// Lends `buf` and `addr` to the kernel through free slot `index`.
    fn submit(self: &Rc<Self>, index: usize, buf: B, addr: SockAddrBuf) -> io::Result<()> {
        let (sqe, op) = {
            let mut inner = self.inner.borrow_mut();
            let slot = &mut inner.slots[index];
            slot.header.addr = addr;
            // (S1) `buf` and `header` stay in the slot, unmoved in memory, until this op's CQE.
            let sqe = slot.header.sendmsg(self.target, &buf);
            slot.buf = Some(buf);
            (sqe, slot.op)
        };
        let submitted = match op {
            // The slot's previous send's driver slot: no new slot, no new handler.
            Some(id) => self.driver.resubmit_handled(id, sqe),
            None => {
                let handler: Rc<dyn Handler> = Rc::new(SlotHandler {
                    state: self.clone(),
                    index,
                });
                self.driver.submit_handled(sqe, handler)
            }
        };
        let mut inner = self.inner.borrow_mut();
        match submitted {
            Ok(id) => {
                inner.slots[index].op = Some(id);
                Ok(())
            }
            Err(errno) => {
                // Never in the kernel: the buffer is ours again, and the driver freed its slot.
                let slot = &mut inner.slots[index];
                slot.op = None;
                let buf = slot.buf.take();
                inner.free.push(index);
                drop(inner);
                drop(buf);
                Err(io::Error::from_raw_os_error(errno))
            }
        }
    }
}

impl<B: IoBuf> Handler for SlotHandler<B> {
    fn complete(self: Rc<Self>, completion: Completion) {
        let state = &self.state;
        let mut inner = state.inner.borrow_mut();
        let slot = &mut inner.slots[self.index];
        let buf = slot.buf.take();
        let parked = if inner.closed {
            // Nobody will send through this slot again: give its driver slot back (it holds
            // this handler, which holds the state).
            inner.slots[self.index].op.take()
        } else {
            None
        };
        if completion.result < 0 {
            inner.error.get_or_insert(-completion.result);
        }
        inner.free.push(self.index);
        let waiter = inner.waiter.take();
        drop(inner);
        // User code (the buffer's and the waker's) runs with nothing borrowed.
        drop(buf);
        if let Some(id) = parked {
            state.driver.release_handled(id);
        }
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }
}

impl<B: IoBuf> Drop for SendToQueue<B> {
    fn drop(&mut self) {
        let mut inner = self.state.inner.borrow_mut();
        inner.closed = true;
        let waiter = inner.waiter.take();
        // Slots not in flight hold their driver slot parked: give those back now; the busy
        // ones give theirs back at their CQE (see `complete`).
        let mut parked = Vec::new();
        let free = std::mem::take(&mut inner.free);
        for index in free {
            if let Some(id) = inner.slots[index].op.take() {
                parked.push(id);
            }
        }
        drop(inner);
        drop(waiter);
        for id in parked {
            self.state.driver.release_handled(id);
        }
    }
}

impl<B: IoBuf> fmt::Debug for SendToQueue<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendToQueue")
            .field("fd", &self.state.fd.raw())
            .field("depth", &self.state.depth)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}
