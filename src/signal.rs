//! Unix signals as ring completions: a process-wide handler counts each arrival on an eventfd
//! that the listening runtime polls through its ring, so waiting for Ctrl-C is just another
//! I/O completion.
//!
//! Every listener of a signal sees it, on whichever shard or thread it listens, whatever
//! thread the kernel picked to deliver it. Listening unblocks the signal in the listening
//! thread, so a program may block signals in its other threads. As with tokio, once a signal
//! has been listened for, its default action (for Ctrl-C: end the process) is replaced for
//! the rest of the process's life; arrivals close together may merge into one.
#![forbid(unsafe_code)]

use std::io;

use nix::sys::signal::Signal;

use crate::driver::signal::SignalSlot;
use crate::fs::File;

/// A Unix signal, for [`wait_any`] and [`unix::signal`].
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

    /// `SIGQUIT`.
    pub fn quit() -> SignalKind {
        SignalKind(Signal::SIGQUIT)
    }

    /// `SIGUSR1`.
    pub fn user_defined1() -> SignalKind {
        SignalKind(Signal::SIGUSR1)
    }

    /// `SIGUSR2`.
    pub fn user_defined2() -> SignalKind {
        SignalKind(Signal::SIGUSR2)
    }

    /// `SIGWINCH`.
    pub fn window_change() -> SignalKind {
        SignalKind(Signal::SIGWINCH)
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
    Listener::new(kinds)?.next().await
}

/// Streams of one signal, in the shape of `tokio::signal::unix`.
pub mod unix {
    use std::io;

    use super::Listener;
    pub use super::SignalKind;

    /// Starts listening for `kind`; every arrival from now on is seen by [`Signal::recv`]
    /// (arrivals close together may merge into one, as Unix signals do).
    ///
    /// # Errors
    ///
    /// If the signal mask or the `signalfd` cannot be set up.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ringloop::signal::unix::{signal, SignalKind};
    ///
    /// ringloop::block_on(async {
    ///     let mut hangups = signal(SignalKind::hangup())?;
    ///     while hangups.recv().await.is_some() {
    ///         println!("reloading configuration");
    ///     }
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn signal(kind: SignalKind) -> io::Result<Signal> {
        Ok(Signal {
            listener: Listener::new(&[kind])?,
        })
    }

    /// A stream of one signal's arrivals, from [`signal`].
    #[derive(Debug)]
    pub struct Signal {
        listener: Listener,
    }

    impl Signal {
        /// Waits for the next arrival. `None` if the `signalfd` fails (it does not in practice;
        /// the error is not worth a `Result` in the tokio-shaped signature).
        pub async fn recv(&mut self) -> Option<()> {
            self.listener.next().await.ok().map(drop)
        }
    }
}

/// A registration with the process-wide handler plus a way to wait on its eventfd in the ring.
#[derive(Debug)]
struct Listener {
    slot: SignalSlot,
    file: File,
    /// Arrivals taken from the slot but not yet returned (several can arrive at once).
    pending: u64,
}

impl Listener {
    fn new(kinds: &[SignalKind]) -> io::Result<Listener> {
        let signals: Vec<Signal> = kinds.iter().map(|k| k.0).collect();
        let slot = SignalSlot::register(&signals)?;
        // The ring polls a duplicate, so dropping the `File` never closes the slot's eventfd.
        let file = File::from_std(std::fs::File::from(slot.fd().try_clone_to_owned()?));
        Ok(Listener {
            slot,
            file,
            pending: 0,
        })
    }

    async fn next(&mut self) -> io::Result<SignalKind> {
        loop {
            if self.pending == 0 {
                self.pending = self.slot.take();
            }
            if self.pending != 0 {
                let signo = self.pending.trailing_zeros();
                self.pending &= !(1u64 << signo);
                let signal = Signal::try_from(signo as i32).map_err(io::Error::from)?;
                return Ok(SignalKind(signal));
            }
            self.file.readable().await?;
        }
    }
}
