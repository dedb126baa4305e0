//! `IORING_OP_CONNECT`: the address is owned by the op until the CQE.

use std::io;

use io_uring::{opcode, squeue};

use crate::driver::fd::SharedFd;
use crate::driver::op::{Completion, Operation};
use crate::driver::sockaddr::SockAddrBuf;

pub(crate) struct Connect {
    fd: SharedFd,
    addr: Box<SockAddrBuf>,
}

impl Connect {
    pub(crate) fn new(fd: SharedFd, addr: SockAddrBuf) -> Self {
        Connect {
            fd,
            addr: Box::new(addr),
        }
    }
}

// SAFETY: the SQE points into `addr`, a Box owned by `self` that does not move with it and lives
// until the CQE.
unsafe impl Operation for Connect {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        let (addr, len) = self.addr.as_ptr_len();
        opcode::Connect::new(self.fd.as_types_fd(), addr, len).build()
    }

    fn complete(self, completion: Completion) -> io::Result<()> {
        completion.into_result().map(drop)
    }
}
