//! `SharedFd`: a file descriptor that outlives every in-flight operation on it.
//!
//! Each operation holds a clone, so the fd number is closed only after the last operation that
//! names it has completed. Closing earlier would let the number be reused by a new file or
//! socket while an SQE that names it is still queued (liburing#363, tokio-uring#122).

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::{Poll, Waker};

use io_uring::{opcode, squeue, types};

use super::op::{Completion, Op, Operation};
use super::Driver;

#[derive(Debug)]
struct Inner {
    fd: RawFd,
    /// Set while `close` waits for the other holders to let go.
    closer: RefCell<Option<Waker>>,
    owned: RefCell<Option<OwnedFd>>,
}

/// A reference-counted fd; the last holder closes it.
#[derive(Debug, Clone)]
pub(crate) struct SharedFd {
    inner: Rc<Inner>,
}

impl SharedFd {
    pub(crate) fn new(fd: OwnedFd) -> SharedFd {
        SharedFd {
            inner: Rc::new(Inner {
                fd: fd.as_raw_fd(),
                closer: RefCell::new(None),
                owned: RefCell::new(Some(fd)),
            }),
        }
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.inner.fd
    }

    pub(crate) fn as_types_fd(&self) -> types::Fd {
        types::Fd(self.inner.fd)
    }

    /// Closes the fd through the ring once every in-flight operation on it has finished.
    pub(crate) async fn close(self, driver: Rc<Driver>) -> io::Result<()> {
        let mut this = Some(self);
        // Wait until we are the only holder.
        poll_fn(|cx| {
            let inner = &this.as_ref().expect("held until ready").inner;
            if Rc::strong_count(inner) == 1 {
                Poll::Ready(())
            } else {
                *inner.closer.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        let last = this.take().expect("held until here");
        let owned = last.inner.owned.borrow_mut().take();
        drop(last);
        match owned {
            Some(fd) => {
                Op::submit(
                    driver,
                    Close {
                        fd: Some(fd.into_raw_fd()),
                    },
                )
                .await
            }
            None => Ok(()),
        }
    }
}

impl AsRawFd for SharedFd {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.fd
    }
}

impl AsFd for SharedFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd stays open while any `SharedFd` for it lives: it is closed only when
        // the last one drops, or by `close`, which consumes the last one.
        unsafe { BorrowedFd::borrow_raw(self.inner.fd) }
    }
}

impl Drop for SharedFd {
    fn drop(&mut self) {
        // The second to last holder wakes a pending `close`, which holds the last reference.
        if Rc::strong_count(&self.inner) == 2 {
            if let Some(waker) = self.inner.closer.borrow_mut().take() {
                waker.wake();
            }
        }
    }
}

/// `IORING_OP_CLOSE`. Owns the raw fd until the kernel has closed it.
struct Close {
    fd: Option<RawFd>,
}

// SAFETY: the SQE references no memory, only the fd number this op owns.
unsafe impl Operation for Close {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::Close::new(types::Fd(self.fd.expect("set until complete"))).build()
    }

    fn complete(mut self, completion: Completion) -> io::Result<()> {
        if completion.result != -libc::ECANCELED {
            // The kernel took the fd (even a failed close releases the number).
            self.fd = None;
        }
        completion.into_result().map(drop)
    }

    fn release(&mut self, _: Completion) {
        self.fd = None;
    }
}

impl Drop for Close {
    fn drop(&mut self) {
        // The op never reached the kernel (runtime shut down): close it the plain way.
        if let Some(fd) = self.fd.take() {
            let _ = nix::unistd::close(fd);
        }
    }
}
