//! `IORING_OP_READ` at an offset, into an owned buffer.

use std::io;

use io_uring::{opcode, squeue};

use crate::buf::IoBufMut;
use crate::driver::fd::SharedFd;
use crate::driver::op::{Completion, Operation};

pub(crate) struct ReadAt<B> {
    fd: SharedFd,
    buf: B,
    pos: u64,
}

impl<B: IoBufMut> ReadAt<B> {
    pub(crate) fn new(fd: SharedFd, buf: B, pos: u64) -> Self {
        ReadAt { fd, buf, pos }
    }
}

// SAFETY: the SQE points into `buf`'s memory, which `IoBufMut` keeps at a stable address and
// valid while `self` lives; `self` lives until the CQE.
unsafe impl<B: IoBufMut> Operation for ReadAt<B> {
    type Output = (io::Result<usize>, B);

    fn sqe(&mut self) -> squeue::Entry {
        let len = u32::try_from(self.buf.bytes_total()).unwrap_or(u32::MAX);
        opcode::Read::new(self.fd.as_types_fd(), self.buf.stable_mut_ptr(), len)
            .offset(self.pos)
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
