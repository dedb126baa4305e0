//! `IORING_OP_FTRUNCATE` (Linux 6.9): set an open file's length.

use std::io;

use io_uring::{opcode, squeue};

use crate::driver::fd::SharedFd;
use crate::driver::op::{Completion, Operation};
use crate::driver::Driver;

pub(crate) struct Ftruncate {
    fd: SharedFd,
    len: u64,
}

impl Ftruncate {
    /// `len` must fit in an `i64` (the kernel's `loff_t`); callers check.
    pub(crate) fn new(fd: SharedFd, len: u64) -> Self {
        Ftruncate { fd, len }
    }

    /// Whether this kernel's ring knows the opcode (from the probe taken at startup).
    pub(crate) fn supported(driver: &Driver) -> bool {
        driver.supports(opcode::Ftruncate::CODE)
    }
}

// SAFETY: the SQE references no memory, only the fd this op holds open until the CQE.
unsafe impl Operation for Ftruncate {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::Ftruncate::new(self.fd.as_types_fd(), self.len).build()
    }

    fn complete(self, completion: Completion) -> io::Result<()> {
        completion.into_result().map(drop)
    }
}
