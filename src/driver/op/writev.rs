//! `IORING_OP_WRITEV`: one write gathered from several owned buffers.

use std::io;

use io_uring::{opcode, squeue};

use crate::buf::IoBuf;
use crate::driver::fd::SharedFd;
use crate::driver::op::{Completion, Operation};

pub(crate) struct Writev<B> {
    fd: SharedFd,
    bufs: Vec<B>,
    /// One `iovec` per buffer (its initialised bytes), on the heap.
    iovecs: Vec<libc::iovec>,
}

impl<B: IoBuf> Writev<B> {
    pub(crate) fn new(fd: SharedFd, bufs: Vec<B>) -> Self {
        let iovecs = bufs
            .iter()
            .map(|b| libc::iovec {
                iov_base: b.stable_ptr() as *mut libc::c_void,
                iov_len: b.bytes_init(),
            })
            .collect();
        Writev { fd, bufs, iovecs }
    }
}

// SAFETY: the SQE points at `iovecs` (a Vec's heap, not moved while `self` lives), whose
// entries point into the buffers' initialised bytes (stable under moves, `IoBuf`); all owned
// by `self` until the CQE.
unsafe impl<B: IoBuf> Operation for Writev<B> {
    type Output = (io::Result<usize>, Vec<B>);

    fn sqe(&mut self) -> squeue::Entry {
        let count = u32::try_from(self.iovecs.len()).unwrap_or(u32::MAX);
        opcode::Writev::new(self.fd.as_types_fd(), self.iovecs.as_ptr(), count)
            .offset(u64::MAX)
            .build()
    }

    fn complete(self, completion: Completion) -> Self::Output {
        (completion.into_result().map(|n| n as usize), self.bufs)
    }
}
