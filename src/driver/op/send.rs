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
}

impl<B: IoBuf> Send<B> {
    pub(crate) fn new(fd: SharedFd, buf: B) -> Self {
        Send { fd, buf }
    }
}

// SAFETY: the SQE points into `buf`'s initialised bytes, stable under moves (`IoBuf`) and owned
// by `self` until the CQE.
unsafe impl<B: IoBuf> Operation for Send<B> {
    type Output = (io::Result<usize>, B);

    fn sqe(&mut self) -> squeue::Entry {
        let len = u32::try_from(self.buf.bytes_init()).unwrap_or(u32::MAX);
        let ptr = self.buf.stable_ptr();
        opcode::Send::new(self.fd.as_types_fd(), ptr, len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
    }

    fn complete(self, completion: Completion) -> Self::Output {
        (completion.into_result().map(|n| n as usize), self.buf)
    }
}
