//! The ring: setup with flag fallback, opcode probe, and the only `push` and `enter` calls.
//!
//! Setup tries the newest flags first and steps down on `EINVAL`:
//! `SINGLE_ISSUER | DEFER_TASKRUN`, then `SINGLE_ISSUER | COOP_TASKRUN`, then `COOP_TASKRUN`,
//! then none. A [`RingConfig`] switch can force each optional flag off, so every fallback is
//! testable on a new kernel. `IORING_FEAT_EXT_ARG` (wait with a timeout, 5.11) and
//! `IORING_FEAT_NODROP` (no lost completions, 5.5) are required: without them `Ring::new`
//! fails with an error that says so.
//!
//! # Invariants
//!
//! - (R1) Every SQE pushed references only memory owned by an in-flight slot (see
//!   [`Operation`](super::op::Operation)), which outlives the SQE's completion.
//! - (R2) `enter` is only ever called with no argument pointer, or through `submit_with_args`.

use std::io;
use std::time::Duration;

use io_uring::{opcode, squeue, types, IoUring, Probe};

use super::op::Completion;

/// Ring parameters chosen by the [`Builder`](crate::Builder).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingConfig {
    pub(crate) entries: u32,
    pub(crate) cq_entries: Option<u32>,
    pub(crate) single_issuer: bool,
    pub(crate) defer_taskrun: bool,
    pub(crate) coop_taskrun: bool,
    /// Allow multishot accept and receive (Linux 5.19+).
    pub(crate) multishot: bool,
    /// Allow provided-buffer rings (`IORING_REGISTER_PBUF_RING`, Linux 5.19+).
    pub(crate) buf_rings: bool,
    /// Allow the newer opcodes that have a fallback (see [`NEWER_OPS`]) where the kernel has
    /// them.
    pub(crate) newer_ops: bool,
    /// Tests only: inject kernel failures.
    #[cfg(test)]
    pub(crate) faults: Option<super::faults::FaultPlan>,
}

/// Opcodes used where the kernel has them, with a fallback where it does not: `LINKAT` and
/// `SYMLINKAT` (5.15) and `FTRUNCATE` (6.9) fall back to the blocking pool, `WAITID` (6.7) to
/// polling a pidfd.
pub(crate) const NEWER_OPS: [u8; 4] = [
    io_uring::opcode::LinkAt::CODE,
    io_uring::opcode::SymlinkAt::CODE,
    io_uring::opcode::Ftruncate::CODE,
    io_uring::opcode::WaitId::CODE,
];

/// The running kernel's `(major, minor)` release, `None` if unknown.
pub(crate) fn kernel_version() -> Option<(u32, u32)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    parse_version(&release)
}

fn parse_version(release: &str) -> Option<(u32, u32)> {
    let mut numbers = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().ok());
    Some((numbers.next()??, numbers.next()??))
}

/// Which optional setup flags the ring ended up with.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RingFlags {
    pub(crate) single_issuer: bool,
    pub(crate) defer_taskrun: bool,
    pub(crate) coop_taskrun: bool,
}

pub(crate) struct Ring {
    /// `None` once closed at shutdown.
    uring: Option<IoUring>,
    /// The overflow counter as of the last read, kept after close.
    overflows: u64,
    probe: Probe,
    pub(crate) flags: RingFlags,
    pub(crate) enters: u64,
    pub(crate) sqes_submitted: u64,
    #[cfg(test)]
    pub(crate) faults: Option<super::faults::Faults>,
}

/// The submission queue is full; submit and try again.
#[derive(Debug)]
pub(crate) struct SqFull;

impl Ring {
    pub(crate) fn new(config: RingConfig) -> io::Result<Ring> {
        let attempts = [
            RingFlags {
                single_issuer: true,
                defer_taskrun: true,
                coop_taskrun: false,
            },
            RingFlags {
                single_issuer: true,
                defer_taskrun: false,
                coop_taskrun: true,
            },
            RingFlags {
                single_issuer: false,
                defer_taskrun: false,
                coop_taskrun: true,
            },
            RingFlags::default(),
        ];
        let allowed = |f: &RingFlags| {
            (config.single_issuer || !f.single_issuer)
                && (config.defer_taskrun || !f.defer_taskrun)
                && (config.coop_taskrun || !f.coop_taskrun)
        };
        let mut last_err = None;
        for flags in attempts.iter().filter(|f| allowed(f)) {
            match Self::setup(config, *flags) {
                #[cfg(test)]
                Ok(uring) => {
                    let mut ring = Self::finish(uring, *flags)?;
                    ring.faults = config.faults.map(super::faults::Faults::new);
                    return Ok(ring);
                }
                #[cfg(not(test))]
                Ok(uring) => return Self::finish(uring, *flags),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last_err = Some(e),
                Err(e) => return Err(explain_setup_error(e)),
            }
        }
        Err(explain_setup_error(
            last_err.expect("the plain setup is always attempted"),
        ))
    }

    fn setup(config: RingConfig, flags: RingFlags) -> io::Result<IoUring> {
        #[cfg(test)]
        if let Some(plan) = config.faults {
            // A kernel without one of these flags answers EINVAL (as before 6.0 and 6.1).
            let refused = (plan.refuse_single_issuer && flags.single_issuer)
                || (plan.refuse_defer_taskrun && flags.defer_taskrun);
            if refused {
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            }
        }
        let mut builder = IoUring::builder();
        builder.setup_clamp();
        if let Some(cq) = config.cq_entries {
            builder.setup_cqsize(cq);
        }
        if flags.single_issuer {
            builder.setup_single_issuer();
        }
        if flags.defer_taskrun {
            builder.setup_defer_taskrun();
        }
        if flags.coop_taskrun {
            builder.setup_coop_taskrun().setup_taskrun_flag();
        }
        if flags.single_issuer || flags.coop_taskrun {
            // Kernels new enough for these flags (5.19+) also have SUBMIT_ALL (5.18).
            builder.setup_submit_all();
        }
        builder.build(config.entries)
    }

    fn finish(uring: IoUring, flags: RingFlags) -> io::Result<Ring> {
        let params = uring.params();
        if !params.is_feature_ext_arg() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "ringloop needs IORING_FEAT_EXT_ARG (Linux 5.11 or newer) to wait with a timeout",
            ));
        }
        if !params.is_feature_nodrop() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "ringloop needs IORING_FEAT_NODROP (Linux 5.5 or newer) so no completion is lost",
            ));
        }
        let mut probe = Probe::new();
        uring.submitter().register_probe(&mut probe)?;
        Ok(Ring {
            uring: Some(uring),
            overflows: 0,
            probe,
            flags,
            enters: 0,
            sqes_submitted: 0,
            #[cfg(test)]
            faults: None,
        })
    }

    fn uring(&mut self) -> &mut IoUring {
        self.uring
            .as_mut()
            .expect("the driver never touches the ring after closing it")
    }

    /// Closes the ring fd. The kernel cancels whatever is still in flight; the memory of those
    /// operations has been leaked by then, never freed.
    pub(crate) fn close(&mut self) {
        self.overflow_count();
        self.uring = None;
    }

    /// Whether the kernel knows `opcode` (one of `io_uring::opcode::*::CODE`).
    pub(crate) fn supports(&self, opcode: u8) -> bool {
        self.probe.is_supported(opcode)
    }

    /// Queues one SQE. The only place SQEs enter the ring.
    #[inline]
    pub(crate) fn push(&mut self, sqe: &squeue::Entry) -> Result<(), SqFull> {
        #[cfg(test)]
        if let Some(faults) = &mut self.faults {
            if faults.swallow(sqe) {
                return Ok(());
            }
        }
        let mut sq = self.uring().submission();
        // SAFETY: (R1) callers only build SQEs over memory owned by an in-flight slot.
        unsafe { sq.push(sqe) }.map_err(|_| SqFull)
    }

    /// SQEs queued and not yet submitted.
    pub(crate) fn unsubmitted(&mut self) -> usize {
        self.uring().submission().len()
    }

    /// Submits queued SQEs and, with `get_events`, flushes pending completions without waiting.
    pub(crate) fn enter_nowait(&mut self, get_events: bool) -> io::Result<()> {
        #[cfg_attr(not(test), allow(unused_mut))]
        let mut to_submit = self.unsubmitted() as u32;
        #[cfg(test)]
        if let Some(short) = self.faults.as_mut().and_then(|f| f.shorten(to_submit)) {
            to_submit = short;
        }
        let flags = if get_events {
            io_uring::EnterFlags::GETEVENTS.bits()
        } else {
            0
        };
        if to_submit == 0 && !get_events {
            return Ok(());
        }
        #[cfg(test)]
        if let Some(refused) = self.faults.as_mut().and_then(|f| f.refuse_enter()) {
            return Err(refused);
        }
        self.enter(to_submit, flags)
    }

    /// One `io_uring_enter` that submits `to_submit` SQEs and waits for nothing.
    #[inline]
    fn enter(&mut self, to_submit: u32, flags: u32) -> io::Result<()> {
        self.enters += 1;
        let submitter = self.uring().submitter();
        // SAFETY: (R2) no argument pointer is passed.
        let submitted = unsafe { submitter.enter::<libc::sigset_t>(to_submit, 0, flags, None) };
        self.count(submitted)
    }

    /// Submits queued SQEs and waits for at least one completion, or until `timeout`.
    pub(crate) fn enter_wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        #[cfg(test)]
        if let Some(faults) = &mut self.faults {
            // Completions made here are waiting: no sleep (and no second roll of the dice).
            if faults.has_completions() {
                return self.enter_nowait(true);
            }
            if let Some(refused) = faults.refuse_enter() {
                return Err(refused);
            }
            let queued = self.unsubmitted() as u32;
            if let Some(short) = self.faults.as_mut().and_then(|f| f.shorten(queued)) {
                // Some SQEs taken, and back at once: the caller must cope with both.
                return self.enter(short, io_uring::EnterFlags::GETEVENTS.bits());
            }
        }
        self.enters += 1;
        let uring = self
            .uring
            .as_mut()
            .expect("the driver never waits on a closed ring");
        let submitted = match timeout {
            None => uring.submitter().submit_and_wait(1),
            Some(timeout) => {
                let ts = types::Timespec::from(timeout);
                let args = types::SubmitArgs::new().timespec(&ts);
                uring.submitter().submit_with_args(1, &args)
            }
        };
        match submitted {
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(()),
            other => self.count(other),
        }
    }

    fn count(&mut self, submitted: io::Result<usize>) -> io::Result<()> {
        match submitted {
            Ok(n) => {
                self.sqes_submitted += n as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Hands each CQE in the ring to `each`, in order, freeing its ring entry. Returns how many.
    #[inline]
    pub(crate) fn reap_each(&mut self, mut each: impl FnMut(u64, Completion)) -> usize {
        let mut n = 0;
        #[cfg(test)]
        while let Some((user_data, completion)) =
            self.faults.as_mut().and_then(|f| f.take_made_here())
        {
            each(user_data, completion);
            n += 1;
        }
        let uring = self
            .uring
            .as_mut()
            .expect("the driver never touches the ring after closing it");
        for cqe in uring.completion() {
            #[cfg_attr(not(test), allow(unused_mut))]
            let mut completion = Completion {
                result: cqe.result(),
                flags: cqe.flags(),
            };
            #[cfg(test)]
            if let Some(faults) = &mut self.faults {
                faults.alter(&mut completion);
            }
            each(cqe.user_data(), completion);
            n += 1;
        }
        n
    }

    /// The kernel holds completions that did not fit the CQ; an `enter` with GETEVENTS flushes.
    pub(crate) fn cq_overflowed(&mut self) -> bool {
        self.uring().submission().cq_overflow()
    }

    /// The kernel's count of completions that overflowed the CQ.
    pub(crate) fn overflow_count(&mut self) -> u64 {
        if let Some(uring) = self.uring.as_mut() {
            self.overflows = u64::from(uring.completion().overflow());
        }
        self.overflows
    }

    /// Registers a provided-buffer ring.
    ///
    /// # Safety
    ///
    /// `addr` must point to `entries` page-aligned descriptors that stay valid until
    /// [`unregister_buf_ring`](Self::unregister_buf_ring) succeeds for `group`.
    pub(crate) unsafe fn register_buf_ring(
        &mut self,
        addr: u64,
        entries: u16,
        group: u16,
    ) -> io::Result<()> {
        let submitter = self.uring().submitter();
        // SAFETY: forwarded from this function's contract.
        unsafe { submitter.register_buf_ring_with_flags(addr, entries, group, 0) }
    }

    pub(crate) fn unregister_buf_ring(&mut self, group: u16) -> io::Result<()> {
        match self.uring.as_mut() {
            Some(uring) => uring.submitter().unregister_buf_ring(group),
            None => Err(io::Error::other("the ring is closed")),
        }
    }

    /// Whether an opcode the driver needs is missing, as an error for the caller.
    pub(crate) fn require(&self, code: u8, name: &str) -> io::Result<()> {
        if self.supports(code) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("this kernel's io_uring does not support {name}"),
            ))
        }
    }
}

/// The opcodes every runtime uses, checked once at startup.
pub(crate) const REQUIRED: [(u8, &str); 3] = [
    (opcode::Read::CODE, "IORING_OP_READ"),
    (opcode::AsyncCancel::CODE, "IORING_OP_ASYNC_CANCEL"),
    (opcode::Nop::CODE, "IORING_OP_NOP"),
];

fn explain_setup_error(e: io::Error) -> io::Error {
    let why = match e.raw_os_error() {
        Some(libc::ENOSYS) => "the kernel has no io_uring (Linux 5.11 or newer is needed)",
        Some(libc::EPERM) | Some(libc::EACCES) => {
            "io_uring is disabled for this process: check /proc/sys/kernel/io_uring_disabled, \
             the io_uring_group sysctl, or the container's seccomp profile"
        }
        Some(libc::ENOMEM) => {
            "not enough locked memory for the ring: raise RLIMIT_MEMLOCK (ulimit -l) or use \
             fewer entries"
        }
        Some(libc::EMFILE) | Some(libc::ENFILE) => "no file descriptor left for the ring",
        _ => "io_uring_setup failed",
    };
    io::Error::new(
        e.kind(),
        format!("ringloop: cannot create an io_uring: {why} ({e})"),
    )
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn kernel_release_strings_parse_to_major_and_minor() {
        assert_eq!(parse_version("6.18.44-1-cloud\n"), Some((6, 18)));
        assert_eq!(parse_version("5.15.0-91-generic"), Some((5, 15)));
        assert_eq!(parse_version("5.4"), Some((5, 4)));
        assert_eq!(parse_version("6"), None);
        assert_eq!(parse_version(""), None);
    }
}
