//! `IORING_OP_UNLINKAT`: remove a file (or, with `AT_REMOVEDIR`, an empty directory).

use std::ffi::CString;
use std::io;

use io_uring::{opcode, squeue, types};

use crate::driver::op::{Completion, Operation};

pub(crate) struct Unlink {
    path: CString,
    flags: i32,
}

impl Unlink {
    pub(crate) fn new(path: CString, dir: bool) -> Self {
        Unlink {
            path,
            flags: if dir { libc::AT_REMOVEDIR } else { 0 },
        }
    }
}

// SAFETY: the SQE points into `path`'s heap bytes, owned by `self` until the CQE.
unsafe impl Operation for Unlink {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::UnlinkAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .flags(self.flags)
            .build()
    }

    fn complete(self, completion: Completion) -> io::Result<()> {
        completion.into_result().map(drop)
    }
}
