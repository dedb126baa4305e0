//! `IORING_OP_RENAMEAT`: rename a file or directory.

use std::ffi::CString;
use std::io;

use io_uring::{opcode, squeue, types};

use crate::driver::op::{Completion, Operation};

pub(crate) struct Rename {
    from: CString,
    to: CString,
}

impl Rename {
    pub(crate) fn new(from: CString, to: CString) -> Self {
        Rename { from, to }
    }
}

// SAFETY: the SQE points into both paths' heap bytes, owned by `self` until the CQE.
unsafe impl Operation for Rename {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        let cwd = types::Fd(libc::AT_FDCWD);
        opcode::RenameAt::new(cwd, self.from.as_ptr(), cwd, self.to.as_ptr()).build()
    }

    fn complete(self, completion: Completion) -> io::Result<()> {
        completion.into_result().map(drop)
    }
}
