//! `IORING_OP_STATX`: file metadata into a boxed `statx` the op owns until the CQE.

use std::ffi::CString;
use std::io;
use std::mem::MaybeUninit;

use io_uring::{opcode, squeue, types};

use std::os::fd::AsRawFd;

use crate::driver::fd::SharedFd;
use crate::driver::op::{Completion, Operation};

pub(crate) struct Statx {
    /// The path, or empty with `AT_EMPTY_PATH` for an open fd.
    path: CString,
    dirfd: i32,
    /// Keeps `dirfd` open (and its number unreused) until the CQE.
    _file: Option<SharedFd>,
    flags: i32,
    buf: Box<MaybeUninit<libc::statx>>,
}

impl Statx {
    /// Metadata of `path` (following symlinks).
    pub(crate) fn path(path: CString) -> Self {
        Statx {
            path,
            dirfd: libc::AT_FDCWD,
            _file: None,
            flags: 0,
            buf: Box::new(MaybeUninit::zeroed()),
        }
    }

    /// Metadata of `path` itself, a symlink included (`lstat`).
    pub(crate) fn path_nofollow(path: CString) -> Self {
        Statx {
            flags: libc::AT_SYMLINK_NOFOLLOW,
            ..Statx::path(path)
        }
    }

    /// Metadata of the open file `fd`.
    pub(crate) fn fd(fd: SharedFd) -> Self {
        Statx {
            path: CString::default(),
            dirfd: fd.as_raw_fd(),
            _file: Some(fd),
            flags: libc::AT_EMPTY_PATH,
            buf: Box::new(MaybeUninit::zeroed()),
        }
    }
}

// SAFETY: the SQE points into `path` and `buf`, heap memory owned by `self` until the CQE.
unsafe impl Operation for Statx {
    type Output = io::Result<libc::statx>;

    fn sqe(&mut self) -> squeue::Entry {
        let buf = self.buf.as_mut_ptr().cast::<types::statx>();
        opcode::Statx::new(types::Fd(self.dirfd), self.path.as_ptr(), buf)
            .flags(self.flags)
            .mask(libc::STATX_BASIC_STATS | libc::STATX_BTIME)
            .build()
    }

    fn complete(self, completion: Completion) -> io::Result<libc::statx> {
        completion.into_result()?;
        // SAFETY: the buffer started zeroed (a valid `statx`) and the kernel filled it.
        Ok(unsafe { self.buf.assume_init_read() })
    }
}
