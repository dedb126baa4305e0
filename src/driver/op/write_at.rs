//! `IORING_OP_WRITE` at an offset, from an owned buffer (optionally from a position inside it,
//! so `write_all_at` can resume after a short write without copying).

use std::io;

use io_uring::{opcode, squeue};

use crate::buf::IoBuf;
use crate::driver::fd::SharedFd;
use crate::driver::op::{Completion, Operation};

pub(crate) struct WriteAt<B> {
    fd: SharedFd,
    buf: B,
    /// Bytes of `buf` already written; the SQE starts after them.
    from: usize,
    pos: u64,
}

impl<B: IoBuf> WriteAt<B> {
    pub(crate) fn new(fd: SharedFd, buf: B, from: usize, pos: u64) -> Self {
        assert!(
            from <= buf.bytes_init(),
            "write start beyond the buffer's initialised bytes"
        );
        WriteAt { fd, buf, from, pos }
    }
}

// SAFETY: the SQE points into `buf`'s initialised bytes, which `IoBuf` keeps at a stable
// address and valid while `self` lives; `self` lives until the CQE.
unsafe impl<B: IoBuf> Operation for WriteAt<B> {
    type Output = (io::Result<usize>, B);

    fn sqe(&mut self) -> squeue::Entry {
        let len = u32::try_from(self.buf.bytes_init() - self.from).unwrap_or(u32::MAX);
        let ptr = self.buf.stable_ptr().wrapping_add(self.from);
        opcode::Write::new(self.fd.as_types_fd(), ptr, len)
            .offset(self.pos)
            .build()
    }

    fn complete(self, completion: Completion) -> Self::Output {
        (completion.into_result().map(|n| n as usize), self.buf)
    }
}
