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

use io_uring::{opcode, squeue, types};

use crate::buf::{IoBuf, IoBufMut};
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

    /// Points the header at `len` bytes from `base` (null with a selected buffer) and at its
    /// own address buffer, emptied, for a receive to fill.
    pub(crate) fn point_for_recv(&mut self, base: *mut u8, len: usize) -> &mut libc::msghdr {
        self.addr = SockAddrBuf::default();
        self.iov = libc::iovec {
            iov_base: base.cast(),
            iov_len: len,
        };
        let (name, _) = self.addr.as_mut_ptrs();
        self.msg.msg_name = name.cast();
        self.msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        self.msg.msg_iov = &mut self.iov;
        self.msg.msg_iovlen = 1;
        &mut self.msg
    }

    /// A `SENDMSG` of `buf`'s initialised bytes to the header's address, with `MSG_NOSIGNAL`.
    /// The caller keeps `buf` and this header in place until the CQE.
    pub(crate) fn sendmsg(&mut self, fd: types::Fd, buf: &impl IoBuf) -> squeue::Entry {
        self.iov = libc::iovec {
            iov_base: buf.stable_ptr().cast_mut().cast(),
            iov_len: buf.bytes_init(),
        };
        let (name, namelen) = self.addr.raw_parts_mut();
        self.msg.msg_name = name.cast();
        self.msg.msg_namelen = *namelen;
        self.msg.msg_iov = &mut self.iov;
        self.msg.msg_iovlen = 1;
        opcode::SendMsg::new(fd, &self.msg)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build()
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
        let msg = self
            .header
            .point_for_recv(self.buf.stable_mut_ptr(), self.buf.bytes_total());
        opcode::RecvMsg::new(self.fd.as_types_fd(), msg).build()
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
