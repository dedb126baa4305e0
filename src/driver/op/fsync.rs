//! `IORING_OP_FSYNC`, full or data-only.

use std::io;

use io_uring::{opcode, squeue, types::FsyncFlags};

use crate::driver::fd::SharedFd;
use crate::driver::op::{Completion, Operation};

pub(crate) struct Fsync {
    fd: SharedFd,
    data_only: bool,
}

impl Fsync {
    pub(crate) fn new(fd: SharedFd, data_only: bool) -> Self {
        Fsync { fd, data_only }
    }
}

// SAFETY: the SQE references no memory, only the fd this op holds open.
unsafe impl Operation for Fsync {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        let flags = if self.data_only {
            FsyncFlags::DATASYNC
        } else {
            FsyncFlags::empty()
        };
        opcode::Fsync::new(self.fd.as_types_fd())
            .flags(flags)
            .build()
    }

    fn complete(self, completion: Completion) -> io::Result<()> {
        completion.into_result().map(drop)
    }
}
