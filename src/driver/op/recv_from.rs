//! `IORING_OP_RECVMSG` into an owned buffer, with the sender's address (`recvfrom(2)` through
//! the ring).
//!
//! The kernel reads a `msghdr` that points to one `iovec` (which points into the buffer) and to
//! an address buffer it fills in. The three live together in one `Box` (one allocation per
//! receive), so their addresses do not change when the op moves, and the op owns them (and the
//! buffer) until its CQE.
//!
//! A datagram longer than the buffer is truncated to it (`MSG_TRUNC` is not requested, so the
//! result never exceeds the buffer); the kernel discards the rest of that datagram.

use std::io;
use std::mem::size_of;

use io_uring::{opcode, squeue};

use crate::buf::IoBufMut;
use crate::driver::fd::SharedFd;
use crate::driver::op::{Completion, Operation};
use crate::driver::sockaddr::SockAddrBuf;

/// What the kernel reads and writes besides the buffer of a `recvmsg`; `msg` points to `iov`
/// and `addr` once an SQE was built from it. Boxed by its owner, so the addresses hold while
/// the op moves.
pub(crate) struct MsgHeader {
    pub(crate) msg: libc::msghdr,
    pub(crate) iov: libc::iovec,
    pub(crate) addr: SockAddrBuf,
}

impl MsgHeader {
    /// Nothing pointed to yet: null pointers, zero lengths, an empty address.
    pub(crate) fn boxed() -> Box<MsgHeader> {
        Box::new(MsgHeader {
            // SAFETY: `msghdr` is plain old data: all zeroes is null pointers and zero lengths.
            msg: unsafe { std::mem::zeroed() },
            iov: libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            },
            addr: SockAddrBuf::default(),
        })
    }
}

pub(crate) struct RecvFrom<B> {
    fd: SharedFd,
    buf: B,
    header: Box<MsgHeader>,
}

impl<B: IoBufMut> RecvFrom<B> {
    pub(crate) fn new(fd: SharedFd, buf: B) -> Self {
        let header = MsgHeader::boxed();
        RecvFrom { fd, buf, header }
    }
}

// SAFETY: the SQE points to `header.msg`, which points to `header.iov` and `header.addr`, all in
// one Box owned by `self` that does not move with it; `iov` points into `buf`, stable under
// moves (`IoBufMut`) and writable for `bytes_total` bytes. All of it is owned by `self` until
// the CQE.
unsafe impl<B: IoBufMut> Operation for RecvFrom<B> {
    /// The byte count and the sender's address (family `AF_UNSPEC` for an unnamed sender).
    type Output = (io::Result<(usize, SockAddrBuf)>, B);

    fn sqe(&mut self) -> squeue::Entry {
        let header = &mut *self.header;
        header.iov = libc::iovec {
            iov_base: self.buf.stable_mut_ptr().cast(),
            iov_len: self.buf.bytes_total(),
        };
        let (name, _) = header.addr.as_mut_ptrs();
        header.msg.msg_name = name.cast();
        header.msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        header.msg.msg_iov = &mut header.iov;
        header.msg.msg_iovlen = 1;
        opcode::RecvMsg::new(self.fd.as_types_fd(), &mut header.msg).build()
    }

    fn complete(mut self, completion: Completion) -> Self::Output {
        let n = match completion.into_result() {
            Ok(n) => n as usize,
            Err(e) => return (Err(e), self.buf),
        };
        // SAFETY: the kernel wrote `n` bytes at the start of the buffer, and `n` is at most the
        // iovec's length, `bytes_total` (no `MSG_TRUNC`).
        unsafe { self.buf.set_init(n) };
        // The kernel wrote the address's full length back into the msghdr; (A1) caps it.
        let header = &mut *self.header;
        let (_, namelen) = header.addr.raw_parts_mut();
        *namelen = header
            .msg
            .msg_namelen
            .min(size_of::<libc::sockaddr_storage>() as libc::socklen_t);
        (Ok((n, header.addr)), self.buf)
    }
}
