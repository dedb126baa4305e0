//! Multishot `IORING_OP_RECV` with buffer select: the kernel picks a buffer from a pool per
//! chunk received, so a connection waiting for data holds none.
//!
//! Every CQE that carries a buffer id gives the buffer to someone: to the caller as a
//! [`PooledBuf`] when it holds data, back to the pool otherwise (an error with
//! `IORING_CQE_F_BUFFER` set, end of file, or a stream nobody reads any more).
//!
//! The fallbacks arm a single-shot receive, whose one CQE ends the stream as when the kernel
//! ends a multishot request (the owner re-arms): with buffer select from the ring if multishot
//! is off, or into a buffer lent by the pool if the pool is not a ring. A lent buffer is handed
//! on exactly like a selected one.

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
    /// Arm a multishot receive (when the pool is a ring).
    multishot: bool,
    /// (P1) the buffer lent to the armed receive, until its CQE.
    lent: Option<u16>,
}

impl RecvMulti {
    pub(crate) fn new(fd: SharedFd, pool: Rc<PoolShared>, multishot: bool) -> Self {
        RecvMulti {
            fd,
            pool,
            multishot,
            lent: None,
        }
    }

    pub(crate) fn pool(&self) -> &Rc<PoolShared> {
        &self.pool
    }

    /// The buffer a CQE hands on: the one the kernel selected, or the one lent for this arm.
    #[inline]
    fn buffer(&mut self, completion: Completion) -> Option<u16> {
        match cqueue::buffer_select(completion.flags) {
            Some(bid) => Some(bid),
            None => self.lent.take(),
        }
    }
}

/// One receive: data, end of file (`Ok(None)`), or an error (`ENOBUFS` when the pool ran dry).
pub(crate) type Received = io::Result<Option<PooledBuf>>;

// SAFETY: the kernel writes only into the pool's buffers, whose allocation the `Rc` in `self`
// keeps alive (P2): one from the ring, which the pool owns until the group is unregistered, or
// the one lent to this receive, which (P1) nobody else touches until its CQE.
unsafe impl Multishot for RecvMulti {
    type Item = Received;

    /// # Panics
    ///
    /// If the pool is not a ring and has no buffer free: the owner arms only when one is.
    fn sqe(&mut self) -> squeue::Entry {
        let fd = self.fd.as_types_fd();
        let len = u32::try_from(self.pool.buf_size()).expect("pool buffers are under 4 GiB");
        if !self.pool.kernel_picks() {
            debug_assert!(self.lent.is_none(), "armed twice");
            let (bid, buf) = self.pool.lend().expect("armed only with a buffer free");
            self.lent = Some(bid);
            return opcode::Recv::new(fd, buf, len).build();
        }
        if self.multishot {
            opcode::RecvMulti::new(fd, self.pool.group()).build()
        } else {
            opcode::Recv::new(fd, std::ptr::null_mut(), len)
                .buf_group(self.pool.group())
                .build()
                .flags(squeue::Flags::BUFFER_SELECT)
        }
    }

    #[inline]
    fn item(&mut self, completion: Completion) -> Received {
        let buffer = self.buffer(completion);
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
        let buffer = self.buffer(completion);
        if let Some(bid) = buffer {
            self.pool.recycle(bid);
        }
    }
}
