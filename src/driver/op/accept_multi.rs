//! Multishot `IORING_OP_ACCEPT`: one SQE keeps accepting; fds nobody takes are closed.
//!
//! Accept futures never own a request: cancelling an armed accept races with the kernel's
//! exclusive wake-up of the listening socket (the cancelled request can swallow the wake-up
//! meant for the next accept, leaving a connection in the backlog while an accept waits). The
//! listener keeps this one request armed instead and never cancels it while alive.
//!
//! Without multishot (Linux < 5.19, or [`Builder::multishot`](crate::Builder::multishot) off)
//! the same op arms a single-shot accept: its one CQE carries no `IORING_CQE_F_MORE`, so the
//! stream ends after each connection exactly as when the kernel ends a multishot request, and
//! the listener re-arms it.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use io_uring::{opcode, squeue};

use crate::driver::fd::SharedFd;
use crate::driver::op::multi::Multishot;
use crate::driver::op::Completion;

/// Takes ownership of an fd the kernel just created for us.
fn own_fd(completion: Completion) -> io::Result<OwnedFd> {
    let fd = completion.into_result()?;
    // SAFETY: the kernel just created this fd for this operation and nothing else refers to it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

pub(crate) struct AcceptMulti {
    fd: SharedFd,
    /// Arm a multishot accept; else a single-shot one.
    multishot: bool,
}

impl AcceptMulti {
    pub(crate) fn new(fd: SharedFd, multishot: bool) -> Self {
        AcceptMulti { fd, multishot }
    }
}

// SAFETY: the SQE references no memory (no peer address is asked for), only the listening fd
// this op holds open.
unsafe impl Multishot for AcceptMulti {
    type Item = io::Result<OwnedFd>;

    fn sqe(&mut self) -> squeue::Entry {
        let fd = self.fd.as_types_fd();
        if self.multishot {
            opcode::AcceptMulti::new(fd)
                .flags(libc::SOCK_CLOEXEC)
                .build()
        } else {
            opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
                .flags(libc::SOCK_CLOEXEC)
                .build()
        }
    }

    fn item(&mut self, completion: Completion) -> Self::Item {
        own_fd(completion)
    }

    fn release(&mut self, completion: Completion) {
        drop(own_fd(completion));
    }
}
