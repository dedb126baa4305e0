//! `IORING_OP_SENDMSG` to an explicit address (`sendto(2)` through the ring), from an owned
//! buffer, with `MSG_NOSIGNAL`.
//!
//! The kernel reads a `msghdr` that points to one `iovec` (which points into the buffer) and to
//! the destination address. The three live together in one `Box` (one allocation per send), so
//! their addresses do not change when the op moves, and the op owns them (and the buffer) until
//! its CQE.

use std::io;

use io_uring::squeue;

use crate::buf::IoBuf;
use crate::driver::fd::SharedFd;
use crate::driver::op::recv_from::MsgHeader;
use crate::driver::op::{Completion, Operation};
use crate::driver::sockaddr::SockAddrBuf;

pub(crate) struct SendTo<B> {
    fd: SharedFd,
    buf: B,
    /// What the kernel reads besides the buffer; `msg` points to `iov` and `addr` once `sqe`
    /// ran.
    header: Box<MsgHeader>,
}

impl<B: IoBuf> SendTo<B> {
    pub(crate) fn new(fd: SharedFd, buf: B, addr: SockAddrBuf) -> Self {
        let mut header = MsgHeader::boxed();
        header.addr = addr;
        SendTo { fd, buf, header }
    }
}

// SAFETY: the SQE points to `header.msg`, which points to `header.iov` and `header.addr`, all in
// one Box owned by `self` that does not move with it; `iov` points into `buf`'s initialised
// bytes, stable under moves (`IoBuf`). All of it is owned by `self` until the CQE.
unsafe impl<B: IoBuf> Operation for SendTo<B> {
    type Output = (io::Result<usize>, B);

    fn sqe(&mut self) -> squeue::Entry {
        self.header.sendmsg(self.fd.as_types_fd(), &self.buf)
    }

    fn complete(self, completion: Completion) -> Self::Output {
        (completion.into_result().map(|n| n as usize), self.buf)
    }
}
