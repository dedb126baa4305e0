//! The process-wide signal handler: it turns a signal, whichever thread the kernel picks for
//! it, into a count on an eventfd that a listening runtime reads through its ring.
//!
//! A handler (rather than `signalfd`) because a `signalfd` only sees signals that every thread
//! of the process blocks, and a program embedding ringloop rarely controls every thread. The
//! handler only does what is async-signal-safe: atomic loads and ors, and `write(2)`.
//!
//! Each listener takes a [`Slot`]: an eventfd created once and never closed, so the handler can
//! never write into a descriptor number that has been closed and reused; the signals the slot
//! wants; and the signals that have arrived since the listener last looked.

use std::io;
use std::os::fd::{BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Mutex;

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// Listeners at once in one process. Each owns one eventfd for the process's lifetime.
const SLOTS: usize = 64;

struct Slot {
    /// The slot's eventfd, or -1 before first use.
    fd: AtomicI32,
    /// Bit `n` set: signal `n` is wanted.
    wanted: AtomicU64,
    /// Bit `n` set: signal `n` arrived since the listener last took the bits.
    arrived: AtomicU64,
}

static SLOTS_TABLE: [Slot; SLOTS] = [const {
    Slot {
        fd: AtomicI32::new(-1),
        wanted: AtomicU64::new(0),
        arrived: AtomicU64::new(0),
    }
}; SLOTS];

/// Which slots are taken and which signals have our handler; only touched outside handlers.
static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    taken: [false; SLOTS],
    installed: 0,
});

struct Registry {
    taken: [bool; SLOTS],
    /// Bit `n` set: `on_signal` is installed for signal `n`.
    installed: u64,
}

extern "C" fn on_signal(signo: libc::c_int) {
    let Some(bit) = u32::try_from(signo).ok().and_then(|n| 1u64.checked_shl(n)) else {
        return;
    };
    // Restored below, so the interrupted code never sees our write's result.
    let saved_errno = nix::errno::Errno::last_raw();
    for slot in &SLOTS_TABLE {
        let fd = slot.fd.load(Ordering::Acquire);
        if fd < 0 || slot.wanted.load(Ordering::Acquire) & bit == 0 {
            continue;
        }
        slot.arrived.fetch_or(bit, Ordering::AcqRel);
        let one: u64 = 1;
        // SAFETY: `fd` is an eventfd this module created and never closes, so it is open; the
        // source is 8 valid bytes on this stack frame. A full counter (EAGAIN) is fine: the
        // listener is already due to wake.
        let _ = unsafe { libc::write(fd, (&raw const one).cast(), 8) };
    }
    nix::errno::Errno::set_raw(saved_errno);
}

/// A listener's registration: while it lives, the handler marks `signals` on its eventfd.
#[derive(Debug)]
pub(crate) struct SignalSlot {
    index: usize,
}

impl SignalSlot {
    /// Takes a free slot for `signals`, installs the handler for each of them (once per
    /// process) and unblocks them in this thread, so a thread that blocked them before (as
    /// `signalfd` users do) still gets them run through the handler.
    pub(crate) fn register(signals: &[Signal]) -> io::Result<SignalSlot> {
        let mut wanted = 0u64;
        for &signal in signals {
            wanted |= 1u64 << (signal as u32);
        }
        let index = {
            let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
            let index = registry.taken.iter().position(|t| !t).ok_or_else(|| {
                io::Error::other(format!("more than {SLOTS} signal listeners at once"))
            })?;
            let slot = &SLOTS_TABLE[index];
            if slot.fd.load(Ordering::Acquire) < 0 {
                let fd = nix::sys::eventfd::EventFd::from_flags(
                    nix::sys::eventfd::EfdFlags::EFD_CLOEXEC
                        | nix::sys::eventfd::EfdFlags::EFD_NONBLOCK,
                )?;
                // Kept open for the life of the process (see the module doc).
                let fd = OwnedFd::from(fd);
                slot.fd.store(fd.into_raw_fd(), Ordering::Release);
            }
            for &signal in signals {
                registry.install(signal)?;
            }
            // Drain what a previous listener of this slot left behind.
            slot.arrived.store(0, Ordering::Release);
            drain(slot.fd.load(Ordering::Acquire));
            slot.wanted.store(wanted, Ordering::Release);
            registry.taken[index] = true;
            index
        };
        let mut mask = SigSet::empty();
        for &signal in signals {
            mask.add(signal);
        }
        mask.thread_unblock()?;
        Ok(SignalSlot { index })
    }

    /// The eventfd the handler counts arrivals on; readable when something arrived.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        let raw = SLOTS_TABLE[self.index].fd.load(Ordering::Acquire);
        // SAFETY: the slot's eventfd is open for the rest of the process (never closed).
        unsafe { BorrowedFd::borrow_raw(raw) }
    }

    /// Clears the eventfd and returns the signals that arrived since the last call.
    pub(crate) fn take(&self) -> u64 {
        let slot = &SLOTS_TABLE[self.index];
        drain(slot.fd.load(Ordering::Acquire));
        slot.arrived.swap(0, Ordering::AcqRel)
    }
}

impl Drop for SignalSlot {
    fn drop(&mut self) {
        let slot = &SLOTS_TABLE[self.index];
        slot.wanted.store(0, Ordering::Release);
        let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        registry.taken[self.index] = false;
    }
}

impl Registry {
    /// Installs [`on_signal`] for `signal` unless already done.
    fn install(&mut self, signal: Signal) -> io::Result<()> {
        let bit = 1u64 << (signal as u32);
        if self.installed & bit != 0 {
            return Ok(());
        }
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: `on_signal` only does async-signal-safe work (atomics and write(2)) and
        // touches only statics, so it may run at any point of any thread.
        unsafe { sigaction(signal, &action) }?;
        self.installed |= bit;
        Ok(())
    }
}

fn drain(fd: RawFd) {
    let mut count = [0u8; 8];
    // SAFETY: `fd` is one of our never-closed eventfds; the destination is 8 writable bytes.
    // Non-blocking, so an empty counter returns EAGAIN at once.
    let _ = unsafe { libc::read(fd, count.as_mut_ptr().cast(), 8) };
}
