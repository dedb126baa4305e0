//! `IORING_OP_READV`: one read scattered over several owned buffers.

use std::io;

use io_uring::{opcode, squeue};

use crate::buf::IoBufMut;
use crate::driver::fd::SharedFd;
use crate::driver::op::{Completion, Operation};

pub(crate) struct Readv<B> {
    fd: SharedFd,
    bufs: Vec<B>,
    /// One `iovec` per buffer, on the heap (it does not move with `self`).
    iovecs: Vec<libc::iovec>,
}

impl<B: IoBufMut> Readv<B> {
    pub(crate) fn new(fd: SharedFd, mut bufs: Vec<B>) -> Self {
        let iovecs = bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.stable_mut_ptr().cast(),
                iov_len: b.bytes_total(),
            })
            .collect();
        Readv { fd, bufs, iovecs }
    }
}

// SAFETY: the SQE points at `iovecs` (a Vec's heap, not moved while `self` lives), whose
// entries point into the buffers' memory (stable under moves, `IoBufMut`); all owned by `self`
// until the CQE.
unsafe impl<B: IoBufMut> Operation for Readv<B> {
    type Output = (io::Result<usize>, Vec<B>);

    fn sqe(&mut self) -> squeue::Entry {
        let count = u32::try_from(self.iovecs.len()).unwrap_or(u32::MAX);
        opcode::Readv::new(self.fd.as_types_fd(), self.iovecs.as_ptr(), count)
            .offset(u64::MAX)
            .build()
    }

    fn complete(mut self, completion: Completion) -> Self::Output {
        let res = completion.into_result().map(|n| {
            let mut left = n as usize;
            for buf in &mut self.bufs {
                let filled = left.min(buf.bytes_total());
                // SAFETY: the kernel filled the buffers in order; this one got `filled` bytes
                // from its start.
                unsafe { buf.set_init(filled) };
                left -= filled;
            }
            n as usize
        });
        (res, self.bufs)
    }
}
