//! `IORING_OP_WRITE` at an offset, from an owned buffer (a `Slice` of one to resume after a
//! short write without copying).

use std::io;

use io_uring::{opcode, squeue};

use crate::buf::IoBuf;
use crate::driver::fd::SharedFd;
use crate::driver::op::{Completion, Operation};

pub(crate) struct WriteAt<B> {
    fd: SharedFd,
    buf: B,
    pos: u64,
}

impl<B: IoBuf> WriteAt<B> {
    pub(crate) fn new(fd: SharedFd, buf: B, pos: u64) -> Self {
        WriteAt { fd, buf, pos }
    }
}

// SAFETY: the SQE points into `buf`'s initialised bytes, which `IoBuf` keeps at a stable
// address and valid while `self` lives; `self` lives until the CQE.
unsafe impl<B: IoBuf> Operation for WriteAt<B> {
    type Output = (io::Result<usize>, B);

    fn sqe(&mut self) -> squeue::Entry {
        let len = u32::try_from(self.buf.bytes_init()).unwrap_or(u32::MAX);
        let ptr = self.buf.stable_ptr();
        opcode::Write::new(self.fd.as_types_fd(), ptr, len)
            .offset(self.pos)
            .build()
    }

    fn complete(self, completion: Completion) -> Self::Output {
        (completion.into_result().map(|n| n as usize), self.buf)
    }
}
