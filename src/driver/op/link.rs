//! `IORING_OP_LINKAT` (Linux 5.15): create a hard link.

use std::ffi::CString;
use std::io;

use io_uring::{opcode, squeue, types};

use crate::driver::op::{Completion, Operation};
use crate::driver::Driver;

pub(crate) struct Link {
    original: CString,
    link: CString,
}

impl Link {
    pub(crate) fn new(original: CString, link: CString) -> Self {
        Link { original, link }
    }

    /// Whether this kernel's ring knows the opcode (from the probe taken at startup).
    pub(crate) fn supported(driver: &Driver) -> bool {
        driver.supports(opcode::LinkAt::CODE)
    }
}

// SAFETY: the SQE points into both paths' heap bytes, owned by `self` until the CQE.
unsafe impl Operation for Link {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        let cwd = types::Fd(libc::AT_FDCWD);
        // No `AT_SYMLINK_FOLLOW`: a symlink `original` is linked itself, as `linkat(2)` and
        // `std::fs::hard_link` do on Linux.
        opcode::LinkAt::new(cwd, self.original.as_ptr(), cwd, self.link.as_ptr()).build()
    }

    fn complete(self, completion: Completion) -> io::Result<()> {
        completion.into_result().map(drop)
    }
}
