//! Multishot `IORING_OP_RECV` with buffer select: the kernel picks a buffer from a pool per
//! chunk received, so a connection waiting for data holds none.
//!
//! Every CQE that carries a buffer id gives the buffer to someone: to the caller as a
//! [`PooledBuf`] when it holds data, back to the pool otherwise (an error with
//! `IORING_CQE_F_BUFFER` set, end of file, or a stream nobody reads any more).

use std::io;
use std::rc::Rc;

use io_uring::{cqueue, opcode, squeue};

use crate::driver::buf_ring::{PoolShared, PooledBuf};
use crate::driver::fd::SharedFd;
use crate::driver::op::multi::Multishot;
use crate::driver::op::Completion;

pub(crate) struct RecvMulti {
    fd: SharedFd,
    pool: Rc<PoolShared>,
}

impl RecvMulti {
    pub(crate) fn new(fd: SharedFd, pool: Rc<PoolShared>) -> Self {
        RecvMulti { fd, pool }
    }

    pub(crate) fn pool(&self) -> &Rc<PoolShared> {
        &self.pool
    }
}

/// One receive: data, end of file (`Ok(None)`), or an error (`ENOBUFS` when the pool ran dry).
pub(crate) type Received = io::Result<Option<PooledBuf>>;

// SAFETY: the SQE references no memory of its own: the kernel writes into the pool's buffers,
// which the pool (kept alive by the `Rc` in `self`) owns until the group is unregistered.
unsafe impl Multishot for RecvMulti {
    type Item = Received;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::RecvMulti::new(self.fd.as_types_fd(), self.pool.group()).build()
    }

    fn item(&mut self, completion: Completion) -> Received {
        let buffer = cqueue::buffer_select(completion.flags);
        match (completion.result, buffer) {
            (n, Some(bid)) if n > 0 => Ok(Some(self.pool.take(bid, n as usize))),
            (n, bid) => {
                if let Some(bid) = bid {
                    self.pool.recycle(bid);
                }
                if n < 0 {
                    Err(io::Error::from_raw_os_error(-n))
                } else {
                    Ok(None)
                }
            }
        }
    }

    fn release(&mut self, completion: Completion) {
        if let Some(bid) = cqueue::buffer_select(completion.flags) {
            self.pool.recycle(bid);
        }
    }
}
