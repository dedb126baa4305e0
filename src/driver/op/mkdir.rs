//! `IORING_OP_MKDIRAT`: create a directory.

use std::ffi::CString;
use std::io;

use io_uring::{opcode, squeue, types};

use crate::driver::op::{Completion, Operation};

pub(crate) struct Mkdir {
    path: CString,
    mode: u32,
}

impl Mkdir {
    pub(crate) fn new(path: CString, mode: u32) -> Self {
        Mkdir { path, mode }
    }
}

// SAFETY: the SQE points into `path`'s heap bytes, owned by `self` until the CQE.
unsafe impl Operation for Mkdir {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::MkDirAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .mode(self.mode)
            .build()
    }

    fn complete(self, completion: Completion) -> io::Result<()> {
        completion.into_result().map(drop)
    }
}
