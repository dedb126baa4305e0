//! `RingSocket`: a socket's fd and the ring it runs on, with the owned-buffer operations that
//! every socket type (UDP, Unix stream and datagram) delegates to.
//!
//! Each public socket type is docs plus thin delegation to this; the operations themselves are
//! in `driver/op/`. Methods are `async fn`s so that, like every ringloop I/O future, nothing is
//! submitted before the first poll.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::rc::Rc;

use crate::buf::{IoBuf, IoBufMut};
use crate::driver::fd::SharedFd;
use crate::driver::op::connect::Connect;
use crate::driver::op::readv::Readv;
use crate::driver::op::recv::Recv;
use crate::driver::op::recv_from::RecvFrom;
use crate::driver::op::send::Send;
use crate::driver::op::send_to::SendTo;
use crate::driver::op::writev::Writev;
use crate::driver::op::Op;
use crate::driver::sockaddr::SockAddrBuf;
use crate::driver::Driver;
use crate::net::pool::{BufferPool, RecvStream};
use crate::net::send_queue::SendQueue;
use crate::runtime::current_driver;

/// A socket fd shared with its in-flight operations, and the driver they run on. Cloning it
/// clones the handle, not the socket (how streams split into halves).
#[derive(Debug, Clone)]
pub(crate) struct RingSocket {
    fd: SharedFd,
    driver: Rc<Driver>,
}

impl RingSocket {
    /// Wraps `fd` for the current runtime.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub(crate) fn new(fd: OwnedFd) -> RingSocket {
        RingSocket::with_driver(fd, current_driver())
    }

    pub(crate) fn with_driver(fd: OwnedFd, driver: Rc<Driver>) -> RingSocket {
        RingSocket {
            fd: SharedFd::new(fd),
            driver,
        }
    }

    pub(crate) fn shared_fd(&self) -> &SharedFd {
        &self.fd
    }

    /// A queue of datagram sends on this socket that completes without waking the sender.
    pub(crate) fn send_to_queue<B: IoBuf>(&self, depth: usize) -> crate::net::SendToQueue<B> {
        crate::net::SendToQueue::new(self.fd.clone(), self.driver.clone(), depth)
    }

    /// `IORING_OP_CONNECT` to `addr`.
    pub(crate) async fn connect(&self, addr: SockAddrBuf) -> io::Result<()> {
        Op::submit(self.driver.clone(), Connect::new(self.fd.clone(), addr)).await
    }

    /// `IORING_OP_RECV` into `buf`.
    pub(crate) async fn recv<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        Op::submit(self.driver.clone(), Recv::new(self.fd.clone(), buf)).await
    }

    /// `IORING_OP_RECV` with `MSG_PEEK` into `buf`: the bytes stay in the socket.
    pub(crate) async fn peek<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        Op::submit(self.driver.clone(), Recv::peek(self.fd.clone(), buf)).await
    }

    /// `IORING_OP_SEND` of `buf`'s initialised bytes (`MSG_NOSIGNAL`).
    pub(crate) async fn send<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        Op::submit(self.driver.clone(), Send::new(self.fd.clone(), buf)).await
    }

    /// `IORING_OP_RECV` into `buf`, submitted now: an owned future that a poll-based adapter
    /// keeps across polls (dropping it would cancel the receive and lose what it took).
    #[cfg(feature = "_compat")]
    pub(crate) fn recv_op<B: IoBufMut>(&self, buf: B) -> Op<Recv<B>> {
        Op::submit(self.driver.clone(), Recv::new(self.fd.clone(), buf))
    }

    /// `IORING_OP_READV` into `bufs`, in order.
    pub(crate) async fn readv<B: IoBufMut>(&self, bufs: Vec<B>) -> (io::Result<usize>, Vec<B>) {
        Op::submit(self.driver.clone(), Readv::new(self.fd.clone(), bufs)).await
    }

    /// `IORING_OP_WRITEV` of `bufs`' initialised bytes, in order.
    pub(crate) async fn writev<B: IoBuf>(&self, bufs: Vec<B>) -> (io::Result<usize>, Vec<B>) {
        Op::submit(self.driver.clone(), Writev::new(self.fd.clone(), bufs)).await
    }

    /// `IORING_OP_SENDMSG` of `buf`'s initialised bytes to `addr`.
    pub(crate) async fn send_to<B: IoBuf>(
        &self,
        buf: B,
        addr: SockAddrBuf,
    ) -> (io::Result<usize>, B) {
        Op::submit(self.driver.clone(), SendTo::new(self.fd.clone(), buf, addr)).await
    }

    /// `IORING_OP_RECVMSG` into `buf`, with the sender's address.
    pub(crate) async fn recv_from<B: IoBufMut>(
        &self,
        buf: B,
    ) -> (io::Result<(usize, SockAddrBuf)>, B) {
        Op::submit(self.driver.clone(), RecvFrom::new(self.fd.clone(), buf)).await
    }

    /// A multishot receive into `pool`.
    pub(crate) fn recv_pooled(&self, pool: &BufferPool) -> RecvStream {
        RecvStream::new(self.fd.clone(), pool)
    }

    /// A queue of sends on this socket that completes without waking the sender.
    pub(crate) fn send_queue<B: IoBuf>(&self, depth: usize) -> SendQueue<B> {
        SendQueue::new(self.fd.clone(), self.driver.clone(), depth)
    }

    /// Closes the socket through the ring, after the operations still in flight on it.
    pub(crate) async fn close(self) -> io::Result<()> {
        self.fd.close(self.driver).await
    }
}

impl AsRawFd for RingSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for RingSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
