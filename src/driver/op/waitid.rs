//! Waiting for a child process to exit, through the ring.
//!
//! `IORING_OP_WAITID` (Linux 6.7+) completes when the child has exited. It is submitted with
//! `WNOWAIT`, so the child stays a zombie: the exit status is collected afterwards by a plain
//! non-blocking `waitpid` (std's `Child::try_wait`), which keeps std's record of the child in
//! step (std then never signals a pid that may have been reused).
//!
//! On older kernels, [`pidfd_open`] gives an fd that becomes readable when the process exits;
//! `IORING_OP_POLL_ADD` ([`Poll`](super::poll::Poll)) waits for that, then the same `waitpid`
//! reaps it. `pidfd_open(2)` is a syscall nix does not wrap, hence its place here with the
//! driver's other `unsafe`.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use io_uring::{opcode, squeue};

use crate::driver::op::{Completion, Operation};

/// The opcode, for [`Driver::supports`](crate::driver::Driver::supports).
pub(crate) const CODE: u8 = opcode::WaitId::CODE;

pub(crate) struct WaitId {
    pid: libc::id_t,
    /// Where the kernel writes the child's `siginfo`; unused, but given so that no kernel
    /// version has to cope with a null pointer.
    info: Box<MaybeUninit<libc::siginfo_t>>,
}

impl WaitId {
    /// Completes once child `pid` has exited, leaving it waitable (`WEXITED | WNOWAIT`).
    pub(crate) fn exited(pid: u32) -> Self {
        WaitId {
            pid,
            info: Box::new(MaybeUninit::zeroed()),
        }
    }
}

// SAFETY: the SQE points into `info`, heap memory owned by `self` until the CQE.
unsafe impl Operation for WaitId {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::WaitId::new(libc::P_PID, self.pid, libc::WEXITED | libc::WNOWAIT)
            .infop(self.info.as_mut_ptr().cast_const())
            .build()
    }

    fn complete(self, completion: Completion) -> io::Result<()> {
        completion.into_result().map(drop)
    }
}

/// `pidfd_open(pid, 0)`: an fd for process `pid` that polls readable once it has exited
/// (close-on-exec, as every pidfd is). Linux 5.3+; `ENOSYS` before, and `EPERM` or `ENOSYS`
/// under a seccomp filter that does not know it.
///
/// The caller must make sure `pid` is not reaped meanwhile (a child it has not waited for),
/// or the fd may name a new process that reused the number.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    let flags: libc::c_uint = 0;
    // SAFETY: pidfd_open takes two integers and passes no memory; it returns a new fd or -1.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, flags) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(ret).map_err(|_| io::Error::other("pidfd_open: fd out of range"))?;
    // SAFETY: `fd` was just returned by the kernel: open, and owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
