//! `IORING_OP_SYMLINKAT` (Linux 5.15): create a symbolic link.

use std::ffi::CString;
use std::io;

use io_uring::{opcode, squeue, types};

use crate::driver::op::{Completion, Operation};
use crate::driver::Driver;

pub(crate) struct Symlink {
    /// What the link points to, stored as given (not resolved, may not exist).
    target: CString,
    link: CString,
}

impl Symlink {
    pub(crate) fn new(target: CString, link: CString) -> Self {
        Symlink { target, link }
    }

    /// Whether this kernel's ring knows the opcode (from the probe taken at startup).
    pub(crate) fn supported(driver: &Driver) -> bool {
        driver.supports(opcode::SymlinkAt::CODE)
    }
}

// SAFETY: the SQE points into both paths' heap bytes, owned by `self` until the CQE.
unsafe impl Operation for Symlink {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::SymlinkAt::new(
            types::Fd(libc::AT_FDCWD),
            self.target.as_ptr(),
            self.link.as_ptr(),
        )
        .build()
    }

    fn complete(self, completion: Completion) -> io::Result<()> {
        completion.into_result().map(drop)
    }
}
