//! The process's standard input, output and error, read and written through the ring
//! ([`io::stdin`](crate::io::stdin), [`io::stdout`](crate::io::stdout),
//! [`io::stderr`](crate::io::stderr)).
//!
//! Each handle holds a duplicate of fd 0, 1 or 2 (closing it never closes the real one). The
//! file description behind it is shared with whoever else holds the terminal or pipe, so its
//! flags are left alone, `O_NONBLOCK` included (a shell or a parent may have set it). Linux
//! 6.18's io_uring waits on such a pipe or socket by itself; a kernel that instead answers
//! `EAGAIN` gets a wait for readiness (`IORING_OP_POLL_ADD`) and a retry, not an error.
#![forbid(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::rc::Rc;

use crate::buf::{IoBuf, IoBufMut};
use crate::driver::fd::SharedFd;
use crate::driver::op::poll::Poll;
use crate::driver::op::read_at::ReadAt;
use crate::driver::op::write_at::WriteAt;
use crate::driver::op::{Op, Operation};
use crate::driver::Driver;
use crate::io::{AsyncRead, AsyncWrite};
use crate::runtime::current_driver;

/// "The current position": the kernel ignores the offset of a terminal or a pipe, and uses the
/// file position of a regular file.
const NO_OFFSET: u64 = u64::MAX;

/// A duplicate of one standard fd, or why it could not be made (reported by the first op).
#[derive(Debug)]
struct StdFd {
    fd: Result<SharedFd, i32>,
    driver: Rc<Driver>,
}

impl StdFd {
    fn dup(fd: BorrowedFd<'_>) -> StdFd {
        let fd = fd
            .try_clone_to_owned()
            .map(SharedFd::new)
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EBADF));
        StdFd {
            fd,
            driver: current_driver(),
        }
    }

    fn fd(&self) -> io::Result<&SharedFd> {
        self.fd
            .as_ref()
            .map_err(|&errno| io::Error::from_raw_os_error(errno))
    }

    async fn read<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        self.until_done(buf, libc::POLLIN, |fd, buf| ReadAt::new(fd, buf, NO_OFFSET))
            .await
    }

    async fn write<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        self.until_done(buf, libc::POLLOUT, |fd, buf| {
            WriteAt::new(fd, buf, NO_OFFSET)
        })
        .await
    }

    /// Runs the op `make` builds on this fd, and again after a wait for `events` each time it
    /// meets `EAGAIN` (an `O_NONBLOCK` stream on a kernel that does not wait by itself).
    async fn until_done<B, O>(
        &self,
        mut buf: B,
        events: i16,
        make: impl Fn(SharedFd, B) -> O,
    ) -> (io::Result<usize>, B)
    where
        O: Operation<Output = (io::Result<usize>, B)>,
    {
        let fd = match self.fd() {
            Ok(fd) => fd.clone(),
            Err(e) => return (Err(e), buf),
        };
        loop {
            let (res, back) = Op::submit(self.driver.clone(), make(fd.clone(), buf)).await;
            buf = back;
            match res {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(e) = self.ready(&fd, events).await {
                        return (Err(e), buf);
                    }
                }
                res => return (res, buf),
            }
        }
    }

    /// Waits until `fd` is ready for `events` (or hung up, or in error: the retried op says
    /// which).
    async fn ready(&self, fd: &SharedFd, events: i16) -> io::Result<()> {
        Op::submit(self.driver.clone(), Poll::new(fd.clone(), events))
            .await
            .map(drop)
    }
}

macro_rules! std_handle {
    ($(#[$doc:meta])* $name:ident, $ctor:ident, $std:path) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name {
            inner: StdFd,
        }

        /// A handle to the process's standard stream of the same name, on the current
        /// runtime. Each call makes a new handle (a duplicate fd); an error making it is
        /// reported by the handle's first read or write.
        ///
        /// # Panics
        ///
        /// Outside a runtime.
        pub fn $ctor() -> $name {
            $name {
                inner: StdFd::dup($std().as_fd()),
            }
        }
    };
}

std_handle!(
    /// The process's standard input, read through the ring with
    /// [`io::AsyncRead`](crate::io::AsyncRead) (owned buffers; `Ok(0)` at end of input).
    ///
    /// ```no_run
    /// use ringloop::io::{stdin, stdout, AsyncRead, AsyncWriteExt};
    ///
    /// ringloop::block_on(async {
    ///     // cat, through the ring
    ///     let (input, output) = (stdin(), stdout());
    ///     let mut buf = Vec::with_capacity(64 * 1024);
    ///     loop {
    ///         buf.clear();
    ///         let (res, filled) = input.read(buf).await;
    ///         if res? == 0 {
    ///             return Ok::<_, std::io::Error>(());
    ///         }
    ///         let (res, back) = output.write_all(filled).await;
    ///         res?;
    ///         buf = back;
    ///     }
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    Stdin,
    stdin,
    std::io::stdin
);

std_handle!(
    /// The process's standard output, written through the ring with
    /// [`io::AsyncWrite`](crate::io::AsyncWrite) (and
    /// [`write_all`](crate::io::AsyncWriteExt::write_all)).
    ///
    /// Bytes go straight to fd 1: they do not pass through `std::io::stdout()`'s buffer, so
    /// interleaving with `println!` is up to the caller (flush std's first).
    Stdout,
    stdout,
    std::io::stdout
);

std_handle!(
    /// The process's standard error, written through the ring like [`Stdout`].
    Stderr,
    stderr,
    std::io::stderr
);

impl AsyncRead for Stdin {
    fn read<B: IoBufMut>(
        &self,
        buf: B,
    ) -> impl std::future::Future<Output = (io::Result<usize>, B)> {
        self.inner.read(buf)
    }
}

impl AsyncWrite for Stdout {
    fn write<B: IoBuf>(&self, buf: B) -> impl std::future::Future<Output = (io::Result<usize>, B)> {
        self.inner.write(buf)
    }
}

impl AsyncWrite for Stderr {
    fn write<B: IoBuf>(&self, buf: B) -> impl std::future::Future<Output = (io::Result<usize>, B)> {
        self.inner.write(buf)
    }
}
