//! Multishot `IORING_OP_ACCEPT`: one SQE keeps accepting; fds nobody takes are closed.
//!
//! There is no single-shot accept on purpose: cancelling an armed accept races with the
//! kernel's exclusive wake-up of the listening socket (the cancelled request can swallow the
//! wake-up meant for the next accept, leaving a connection in the backlog while an accept
//! waits). The listener keeps this one request armed instead and never cancels it while alive.

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
}

impl AcceptMulti {
    pub(crate) fn new(fd: SharedFd) -> Self {
        AcceptMulti { fd }
    }
}

// SAFETY: the SQE references no memory (no peer address is asked for), only the listening fd
// this op holds open.
unsafe impl Multishot for AcceptMulti {
    type Item = io::Result<OwnedFd>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::AcceptMulti::new(self.fd.as_types_fd())
            .flags(libc::SOCK_CLOEXEC)
            .build()
    }

    fn item(&mut self, completion: Completion) -> Self::Item {
        own_fd(completion)
    }

    fn release(&mut self, completion: Completion) {
        drop(own_fd(completion));
    }
}
