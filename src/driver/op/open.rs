//! `IORING_OP_OPENAT`: the path is owned by the op; an fd opened for a dropped future is closed.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use io_uring::{opcode, squeue, types};

use crate::driver::op::{Completion, Operation};

pub(crate) struct Open {
    path: CString,
    flags: i32,
    mode: u32,
}

impl Open {
    pub(crate) fn new(path: CString, flags: i32, mode: u32) -> Self {
        Open {
            path,
            flags: flags | libc::O_CLOEXEC,
            mode,
        }
    }
}

fn own(completion: Completion) -> io::Result<OwnedFd> {
    let fd = completion.into_result()?;
    // SAFETY: the kernel just opened this fd for us and nothing else refers to it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

// SAFETY: the SQE points into `path`'s heap bytes, which do not move with `self` and live
// until the CQE.
unsafe impl Operation for Open {
    type Output = io::Result<OwnedFd>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .flags(self.flags)
            .mode(self.mode)
            .build()
    }

    fn complete(self, completion: Completion) -> io::Result<OwnedFd> {
        own(completion)
    }

    fn release(&mut self, completion: Completion) {
        // The future is gone; close what the kernel opened for it.
        drop(own(completion));
    }
}
