//! Unix signals read through the ring (a `signalfd` read), so waiting for Ctrl-C is just
//! another I/O completion.
//!
//! The signals waited for are blocked in the calling thread, so their default action (kill
//! the process) no longer applies there; threads spawned afterwards inherit the mask. Call
//! this before spawning other threads, or those threads may still take the signal.
#![forbid(unsafe_code)]

use std::io;
use std::os::fd::OwnedFd;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// A Unix signal number, for [`wait_any`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalKind(Signal);

impl SignalKind {
    /// `SIGINT`, what Ctrl-C sends.
    pub fn interrupt() -> SignalKind {
        SignalKind(Signal::SIGINT)
    }

    /// `SIGTERM`, what `kill` and service managers send.
    pub fn terminate() -> SignalKind {
        SignalKind(Signal::SIGTERM)
    }

    /// `SIGHUP`.
    pub fn hangup() -> SignalKind {
        SignalKind(Signal::SIGHUP)
    }

    /// The signal's number.
    pub fn as_raw(self) -> i32 {
        self.0 as i32
    }
}

/// Waits for Ctrl-C (`SIGINT`).
///
/// # Errors
///
/// If the signal mask or the `signalfd` cannot be set up.
///
/// # Examples
///
/// ```no_run
/// ringloop::block_on(async {
///     ringloop::signal::ctrl_c().await?;
///     println!("bye");
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub async fn ctrl_c() -> io::Result<()> {
    wait_any(&[SignalKind::interrupt()]).await.map(drop)
}

/// Waits for any of `kinds` and returns the one that arrived.
///
/// # Errors
///
/// If the signal mask or the `signalfd` cannot be set up, or the read fails.
pub async fn wait_any(kinds: &[SignalKind]) -> io::Result<SignalKind> {
    let mut mask = SigSet::empty();
    for kind in kinds {
        mask.add(kind.0);
    }
    mask.thread_block()?;
    let fd = OwnedFd::from(SignalFd::with_flags(
        &mask,
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )?);
    let file = crate::fs::File::from_std(std::fs::File::from(fd.try_clone()?));
    // A signalfd read only sees the signals of the thread that reads it, so it must not be
    // punted to an io_uring worker thread: poll in the ring, then read here, without blocking.
    loop {
        file.readable().await?;
        // One `struct signalfd_siginfo` is 128 bytes; `ssi_signo` is its first u32.
        let mut buf = [0u8; 128];
        match nix::unistd::read(&fd, &mut buf) {
            Ok(n) if n >= 4 => {
                let signo = i32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
                return Ok(SignalKind(
                    Signal::try_from(signo).map_err(io::Error::from)?,
                ));
            }
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "short signalfd read",
                ))
            }
            Err(nix::errno::Errno::EAGAIN) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
