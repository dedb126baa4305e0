//! `IORING_OP_RECV` into an owned buffer.

use std::io;

use io_uring::{opcode, squeue};

use crate::buf::IoBufMut;
use crate::driver::fd::SharedFd;
use crate::driver::op::{Completion, Operation};

pub(crate) struct Recv<B> {
    fd: SharedFd,
    buf: B,
    /// `recv(2)` flags: 0, or `MSG_PEEK`.
    flags: i32,
}

impl<B: IoBufMut> Recv<B> {
    pub(crate) fn new(fd: SharedFd, buf: B) -> Self {
        Recv { fd, buf, flags: 0 }
    }

    /// A receive that leaves the bytes in the socket (`MSG_PEEK`).
    pub(crate) fn peek(fd: SharedFd, buf: B) -> Self {
        Recv {
            fd,
            buf,
            flags: libc::MSG_PEEK,
        }
    }
}

// SAFETY: the SQE points into `buf`'s memory, stable under moves (`IoBufMut`) and owned by
// `self` until the CQE.
unsafe impl<B: IoBufMut> Operation for Recv<B> {
    type Output = (io::Result<usize>, B);

    fn sqe(&mut self) -> squeue::Entry {
        let len = u32::try_from(self.buf.bytes_total()).unwrap_or(u32::MAX);
        opcode::Recv::new(self.fd.as_types_fd(), self.buf.stable_mut_ptr(), len)
            .flags(self.flags)
            .build()
    }

    fn complete(mut self, completion: Completion) -> Self::Output {
        let res = completion.into_result().map(|n| {
            let n = n as usize;
            // SAFETY: the kernel wrote `n <= bytes_total` bytes at the start of the buffer.
            unsafe { self.buf.set_init(n) };
            n
        });
        (res, self.buf)
    }
}
