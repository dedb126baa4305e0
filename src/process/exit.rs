//! Learning that a child exited, through the ring, and reaping it; the background reaper of
//! dropped children and the process-wide list of orphans it leaves when no runtime runs.

use std::io;
use std::process::ExitStatus;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::driver::fd::SharedFd;
use crate::driver::op::poll::Poll;
use crate::driver::op::waitid::{self, pidfd_open, WaitId};
use crate::driver::op::Op;
use crate::driver::Driver;
use crate::runtime::{context, current_driver};

/// The first pause of the timer fallback; it doubles up to [`MAX_PAUSE`].
const MIN_PAUSE: Duration = Duration::from_millis(1);
/// The longest the timer fallback waits between two looks.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// How the end of a child is waited for, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    /// `IORING_OP_WAITID` with `WNOWAIT` (Linux 6.7+).
    WaitId,
    /// `IORING_OP_POLL_ADD` on a pidfd.
    Pidfd,
    /// A non-blocking `waitpid` on a timer: for when `pidfd_open` is refused (`Watch::pidfd`
    /// falls back to it without naming it; only tests ask for it).
    #[cfg_attr(not(test), allow(dead_code))]
    Timer,
}

/// What a child's waits use, chosen at spawn.
#[derive(Debug)]
pub(super) enum Watch {
    WaitId,
    Pidfd(SharedFd),
    Timer { pause: Duration },
}

impl Watch {
    /// The best mechanism the kernel has for child `pid` (or `forced`, for tests). A pidfd is
    /// opened now, while the child is certainly unreaped.
    pub(super) fn new(driver: &Driver, pid: u32, forced: Option<Mechanism>) -> Watch {
        let chosen = forced.unwrap_or(if driver.supports(waitid::CODE) {
            Mechanism::WaitId
        } else {
            Mechanism::Pidfd
        });
        match chosen {
            Mechanism::WaitId => Watch::WaitId,
            Mechanism::Pidfd => Watch::pidfd(pid),
            Mechanism::Timer => Watch::timer(),
        }
    }

    fn pidfd(pid: u32) -> Watch {
        match pidfd_open(pid) {
            Ok(fd) => Watch::Pidfd(SharedFd::new(fd)),
            Err(_) => Watch::timer(),
        }
    }

    fn timer() -> Watch {
        Watch::Timer { pause: MIN_PAUSE }
    }

    /// The mechanism in use.
    #[cfg(test)]
    pub(super) fn mechanism(&self) -> Mechanism {
        match self {
            Watch::WaitId => Mechanism::WaitId,
            Watch::Pidfd(_) => Mechanism::Pidfd,
            Watch::Timer { .. } => Mechanism::Timer,
        }
    }

    /// Waits, on the current runtime, until `child` has exited, and reaps it.
    ///
    /// Cancel safe: nothing is reaped until the status is returned (std keeps it, so a later
    /// call returns it again).
    pub(super) async fn wait(&mut self, child: &mut std::process::Child) -> io::Result<ExitStatus> {
        loop {
            // Before every wait: the child may have exited before the first one was armed.
            // Both ring waits see an exited, unreaped child at once, so nothing is missed.
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            self.exit_seen(child.id()).await?;
        }
    }

    /// Returns once child `pid` may have exited.
    async fn exit_seen(&mut self, pid: u32) -> io::Result<()> {
        match self {
            Watch::WaitId => match Op::submit(current_driver(), WaitId::exited(pid)).await {
                Ok(()) => Ok(()),
                // Reaped by someone else: the next `try_wait` says so.
                Err(e) if e.raw_os_error() == Some(libc::ECHILD) => Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => Err(e),
                // The kernel turned the opcode down after all: the older way, from now on.
                Err(_) => {
                    *self = Watch::pidfd(pid);
                    Ok(())
                }
            },
            Watch::Pidfd(fd) => Op::submit(current_driver(), Poll::new(fd.clone(), libc::POLLIN))
                .await
                .map(drop),
            Watch::Timer { pause } => {
                crate::time::sleep(*pause).await;
                *pause = (*pause * 2).min(MAX_PAUSE);
                Ok(())
            }
        }
    }
}

/// A child not yet reaped, and how to wait for it.
#[derive(Debug)]
pub(super) struct Running {
    pub(super) child: std::process::Child,
    pub(super) watch: Watch,
}

impl Running {
    /// Reaps the child once it exits, without anyone awaiting it: on a detached task of the
    /// current runtime, or, with none, through the orphan list.
    pub(super) fn reap_in_background(mut self) {
        reap_orphans();
        if !matches!(self.child.try_wait(), Ok(None)) {
            return; // reaped now, or not ours to reap
        }
        let reaper = Reaper(Some(self));
        // If there is no runtime, the closure is dropped uncalled, and `reaper` with it: the
        // child goes on the orphan list.
        let _ = context::with_current(move |core| drop(core.spawn(reaper.run())));
    }
}

/// Owns a dropped child until it is reaped; if dropped first (its runtime shut down), it puts
/// the child on the orphan list.
struct Reaper(Option<Running>);

impl Reaper {
    async fn run(mut self) {
        if let Some(running) = &mut self.0 {
            match running.watch.wait(&mut running.child).await {
                Ok(_) => self.0 = None,
                Err(e) if e.raw_os_error() == Some(libc::ECHILD) => self.0 = None,
                // The runtime is shutting down (or the ring failed): left to the orphan list.
                Err(_) => {}
            }
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(running) = self.0.take() {
            adopt(running.child);
        }
    }
}

/// Children dropped while still running, with no runtime to wait for them.
static ORPHANS: Mutex<Vec<std::process::Child>> = Mutex::new(Vec::new());

/// Reaps `child` now if it has exited, else keeps it on the orphan list.
fn adopt(mut child: std::process::Child) {
    if matches!(child.try_wait(), Ok(None)) {
        ORPHANS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(child);
    }
}

/// Reaps the orphans that have exited (a non-blocking `waitpid` each). Called on every spawn
/// and every drop of a `Child`.
pub(super) fn reap_orphans() {
    let mut orphans = ORPHANS.lock().unwrap_or_else(PoisonError::into_inner);
    // Kept: those still running. Gone: reaped, or reaped by someone else (`ECHILD`).
    orphans.retain_mut(|child| matches!(child.try_wait(), Ok(None)));
}

/// How many orphans wait to be reaped.
#[cfg(test)]
pub(super) fn orphans() -> usize {
    ORPHANS.lock().unwrap_or_else(PoisonError::into_inner).len()
}
