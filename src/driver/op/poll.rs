//! `IORING_OP_POLL_ADD`, single-shot: completes when the fd is ready for the asked events.
//! For files whose reads io_uring can only do by blocking a worker thread (a `signalfd`): poll
//! in the ring, then read without blocking.

use std::io;

use io_uring::{opcode, squeue};

use crate::driver::fd::SharedFd;
use crate::driver::op::{Completion, Operation};

pub(crate) struct Poll {
    fd: SharedFd,
    events: u32,
}

impl Poll {
    /// Waits for `events` (`libc::POLLIN`, …) on `fd`.
    pub(crate) fn new(fd: SharedFd, events: i16) -> Self {
        Poll {
            fd,
            events: events as u16 as u32,
        }
    }
}

// SAFETY: the SQE references no memory, only the fd this op holds open.
unsafe impl Operation for Poll {
    /// The events that are ready.
    type Output = io::Result<u32>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::PollAdd::new(self.fd.as_types_fd(), self.events).build()
    }

    fn complete(self, completion: Completion) -> io::Result<u32> {
        completion.into_result()
    }
}
