//! `Acceptor`: the accepting half of any listener — one multishot accept kept armed in the
//! ring, and a pause (never a spin) after an accept error such as running out of descriptors.
//!
//! A listener type (`UnixListener`) holds an [`Acceptor`] and turns the accepted fds into its
//! stream type; this file knows nothing of address families. No accept future owns a request
//! (see `driver/op/accept_multi.rs` for why): connections the kernel accepts while nobody
//! waits queue in the armed request for the next call. Without multishot the armed request is
//! a single-shot accept, re-armed after each connection.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::driver::fd::SharedFd;
use crate::driver::op::accept_multi::AcceptMulti;
use crate::driver::op::multi::MultiOp;
use crate::driver::Driver;
use crate::runtime::current_driver;
use crate::time::{sleep, Sleep};

/// First pause after an accept error; doubles up to [`MAX_BACKOFF`] while errors repeat.
const MIN_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A listening socket, its armed multishot accept and its error pause.
#[derive(Debug)]
pub(crate) struct Acceptor {
    fd: SharedFd,
    driver: Rc<Driver>,
    /// The armed multishot accept (armed on first use, re-armed when the kernel ends it).
    op: RefCell<Option<MultiOp<AcceptMulti>>>,
    /// After an error: no accept before this sleep ends.
    pause: RefCell<Option<Sleep>>,
    /// The pause after the next error.
    backoff: Cell<Duration>,
}

impl Acceptor {
    /// Wraps a listening socket for the current runtime.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub(crate) fn new(fd: OwnedFd) -> Acceptor {
        Acceptor {
            fd: SharedFd::new(fd),
            driver: current_driver(),
            op: RefCell::new(None),
            pause: RefCell::new(None),
            backoff: Cell::new(MIN_BACKOFF),
        }
    }

    pub(crate) fn driver(&self) -> &Rc<Driver> {
        &self.driver
    }

    /// Polls the multishot accept for one connection. After an error (other than the
    /// request's own cancellation) the next poll waits out a pause: 5 ms, doubling up to 1 s
    /// while errors repeat, back to 5 ms after a success.
    pub(crate) fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<OwnedFd>> {
        loop {
            if let Some(pause) = self.pause.borrow_mut().as_mut() {
                std::task::ready!(pause.poll_elapsed(cx));
            }
            *self.pause.borrow_mut() = None;
            let mut op = self.op.borrow_mut();
            let op = op.get_or_insert_with(|| {
                let accept = AcceptMulti::new(self.fd.clone(), self.driver.multishot());
                MultiOp::submit(self.driver.clone(), accept)
            });
            match std::task::ready!(op.poll_next(cx)) {
                Some(Ok(fd)) => {
                    self.backoff.set(MIN_BACKOFF);
                    return Poll::Ready(Ok(fd));
                }
                Some(Err(e)) => {
                    if e.raw_os_error() != Some(libc::ECANCELED) {
                        let pause = self.backoff.get();
                        self.backoff.set((pause * 2).min(MAX_BACKOFF));
                        #[cfg(feature = "tracing")]
                        tracing::warn!(error = %e, ?pause, "accept failed: the listener pauses");
                        *self.pause.borrow_mut() = Some(sleep(pause));
                    }
                    return Poll::Ready(Err(e));
                }
                // The kernel ended the request (after an error, or on CQ overflow): re-arm.
                None => op.rearm(),
            }
        }
    }
}

impl AsRawFd for Acceptor {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Acceptor {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
