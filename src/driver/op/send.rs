//! `IORING_OP_SEND` from an owned buffer, with `MSG_NOSIGNAL`: a closed peer is an `EPIPE`
//! error, never a `SIGPIPE` that kills the process.

use std::io;

use io_uring::{opcode, squeue};

use crate::buf::IoBuf;
use crate::driver::fd::SharedFd;
use crate::driver::op::{Completion, Operation};

pub(crate) struct Send<B> {
    fd: SharedFd,
    buf: B,
    /// Bytes already sent; the SQE starts after them (so `write_all` resumes without copying).
    from: usize,
}

impl<B: IoBuf> Send<B> {
    pub(crate) fn new(fd: SharedFd, buf: B, from: usize) -> Self {
        assert!(
            from <= buf.bytes_init(),
            "send start beyond the buffer's initialised bytes"
        );
        Send { fd, buf, from }
    }
}

// SAFETY: the SQE points into `buf`'s initialised bytes, stable under moves (`IoBuf`) and owned
// by `self` until the CQE.
unsafe impl<B: IoBuf> Operation for Send<B> {
    type Output = (io::Result<usize>, B);

    fn sqe(&mut self) -> squeue::Entry {
        let len = u32::try_from(self.buf.bytes_init() - self.from).unwrap_or(u32::MAX);
        let ptr = self.buf.stable_ptr().wrapping_add(self.from);
        opcode::Send::new(self.fd.as_types_fd(), ptr, len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
    }

    fn complete(self, completion: Completion) -> Self::Output {
        (completion.into_result().map(|n| n as usize), self.buf)
    }
}
