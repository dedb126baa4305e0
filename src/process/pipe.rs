//! The parent's ends of a child's stdin, stdout and stderr pipes, read and written through
//! the ring.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::rc::Rc;

use nix::fcntl::{fcntl, FcntlArg, OFlag};

use crate::buf::{IoBuf, IoBufMut};
use crate::driver::fd::SharedFd;
use crate::driver::op::read_at::ReadAt;
use crate::driver::op::write_at::WriteAt;
use crate::driver::op::Op;
use crate::driver::Driver;
use crate::io::{AsyncRead, AsyncWrite};
use crate::runtime::current_driver;

/// The offset given to reads and writes: -1, "the current position". A pipe has none; the
/// kernel ignores the offset of a stream.
const NO_OFFSET: u64 = u64::MAX;

/// One end of a pipe and the driver its operations run on.
#[derive(Debug)]
struct Pipe {
    fd: SharedFd,
    driver: Rc<Driver>,
}

impl Pipe {
    /// Wraps one of std's pipe ends (blocking, close-on-exec).
    fn new(fd: OwnedFd, driver: Rc<Driver>) -> Pipe {
        Pipe {
            fd: SharedFd::new(fd),
            driver,
        }
    }

    /// Wraps a pipe end from outside, made blocking if it was not: io_uring fails a read or
    /// write on an `O_NONBLOCK` pipe with `EAGAIN` rather than waiting for it.
    fn from_owned(fd: OwnedFd) -> io::Result<Pipe> {
        let flags = OFlag::from_bits_retain(fcntl(&fd, FcntlArg::F_GETFL)?);
        if flags.contains(OFlag::O_NONBLOCK) {
            fcntl(&fd, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK))?;
        }
        Ok(Pipe::new(fd, current_driver()))
    }

    async fn read<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        let op = ReadAt::new(self.fd.clone(), buf, NO_OFFSET);
        Op::submit(self.driver.clone(), op).await
    }

    async fn write<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        let op = WriteAt::new(self.fd.clone(), buf, NO_OFFSET);
        Op::submit(self.driver.clone(), op).await
    }

    async fn read_to_end(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        crate::io::AsyncReadExt::read_to_end(self, buf).await
    }

    async fn close(self) -> io::Result<()> {
        self.fd.close(self.driver).await
    }
}

impl AsyncRead for Pipe {
    fn read<B: IoBufMut>(
        &self,
        buf: B,
    ) -> impl std::future::Future<Output = (io::Result<usize>, B)> {
        Pipe::read(self, buf)
    }
}

/// The parent's end of a child's stdin pipe: [`Child::stdin`](super::Child::stdin), written
/// through the ring with [`io::AsyncWrite`](crate::io::AsyncWrite) (and
/// [`write_all`](crate::io::AsyncWriteExt::write_all)).
///
/// Dropping it (or [`close`](Self::close)) closes the pipe, once writes still in flight have
/// finished: the child then reads end of file. A write after the child has closed its end
/// fails with `BrokenPipe` (see the [module documentation](super#signals) on `SIGPIPE`).
///
/// # Examples
///
/// ```
/// use std::process::Stdio;
///
/// use ringloop::io::AsyncWriteExt;
/// use ringloop::process::Command;
///
/// ringloop::block_on(async {
///     let mut child = Command::new("sh")
///         .args(["-c", "read line; exit ${#line}"])
///         .stdin(Stdio::piped())
///         .spawn()?;
///     let stdin = child.stdin.take().expect("piped");
///     let (res, _) = stdin.write_all(b"four\n".to_vec()).await;
///     res?;
///     stdin.close().await?;
///     assert_eq!(child.wait().await?.code(), Some(4));
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct ChildStdin {
    pipe: Pipe,
}

/// The parent's end of a child's stdout pipe: [`Child::stdout`](super::Child::stdout), read
/// through the ring with [`io::AsyncRead`](crate::io::AsyncRead) (and
/// [`read_exact`](crate::io::AsyncReadExt::read_exact)) or [`read_to_end`](Self::read_to_end).
///
/// # Examples
///
/// ```
/// use std::process::Stdio;
///
/// use ringloop::process::Command;
///
/// ringloop::block_on(async {
///     let mut child = Command::new("echo").arg("hi").stdout(Stdio::piped()).spawn()?;
///     let stdout = child.stdout.take().expect("piped");
///     let (res, buf) = stdout.read(Vec::with_capacity(64)).await;
///     assert_eq!(&buf[..res?], b"hi\n");
///     child.wait().await?;
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct ChildStdout {
    pipe: Pipe,
}

/// The parent's end of a child's stderr pipe: [`Child::stderr`](super::Child::stderr), read
/// as a [`ChildStdout`] is.
#[derive(Debug)]
pub struct ChildStderr {
    pipe: Pipe,
}

impl ChildStdin {
    pub(super) fn new(fd: OwnedFd, driver: Rc<Driver>) -> ChildStdin {
        ChildStdin {
            pipe: Pipe::new(fd, driver),
        }
    }

    /// Wraps the stdin pipe of a child spawned by `std::process::Command`, for the current
    /// runtime (made blocking if it was set `O_NONBLOCK`).
    ///
    /// # Errors
    ///
    /// If its flags cannot be read or set (`fcntl(2)`).
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn from_std(inner: std::process::ChildStdin) -> io::Result<ChildStdin> {
        Pipe::from_owned(inner.into()).map(|pipe| ChildStdin { pipe })
    }

    /// Writes some of the initialised bytes of `buf`; returns how many, and the buffer. As
    /// [`AsyncWrite::write`].
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped, the write is cancelled if it has not happened yet; whether
    /// bytes reached the pipe is unknown.
    pub async fn write<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        self.pipe.write(buf).await
    }

    /// Closes the pipe through the ring, after writes still in flight on it; the child reads
    /// end of file.
    ///
    /// # Errors
    ///
    /// Those of `close(2)`.
    pub async fn close(self) -> io::Result<()> {
        self.pipe.close().await
    }
}

macro_rules! reader {
    ($name:ident, $std:ty) => {
        impl $name {
            pub(super) fn new(fd: OwnedFd, driver: Rc<Driver>) -> $name {
                $name {
                    pipe: Pipe::new(fd, driver),
                }
            }

            /// Wraps the pipe of a child spawned by `std::process::Command`, for the current
            /// runtime (made blocking if it was set `O_NONBLOCK`).
            ///
            /// # Errors
            ///
            /// If its flags cannot be read or set (`fcntl(2)`).
            ///
            /// # Panics
            ///
            /// Outside a runtime.
            pub fn from_std(inner: $std) -> io::Result<$name> {
                Pipe::from_owned(inner.into()).map(|pipe| $name { pipe })
            }

            /// Reads into `buf` (up to `bytes_total`, from its start); `Ok(0)` once the child
            /// has closed its end (usually: exited). As
            /// [`AsyncRead::read`].
            ///
            /// # Cancel safety
            ///
            /// If the future is dropped, the read is cancelled; bytes it may have taken from
            /// the pipe are lost.
            pub async fn read<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
                self.pipe.read(buf).await
            }

            /// Reads until the child closes its end, appending to `buf`'s contents; returns
            /// how many bytes were appended, and the buffer (a full buffer at least doubles).
            ///
            /// # Errors
            ///
            /// The first read error other than `Interrupted`; `buf` then holds what was read
            /// before it.
            ///
            /// # Cancel safety
            ///
            /// Not cancel safe: what was read is lost with the buffer.
            pub async fn read_to_end(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
                self.pipe.read_to_end(buf).await
            }

            /// Closes the pipe through the ring, after reads still in flight on it. A child
            /// that writes to it afterwards gets `EPIPE` (and `SIGPIPE`).
            ///
            /// # Errors
            ///
            /// Those of `close(2)`.
            pub async fn close(self) -> io::Result<()> {
                self.pipe.close().await
            }
        }

        impl AsyncRead for $name {
            fn read<B: IoBufMut>(
                &self,
                buf: B,
            ) -> impl std::future::Future<Output = (io::Result<usize>, B)> {
                self.pipe.read(buf)
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.pipe.fd.as_raw_fd()
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.pipe.fd.as_fd()
            }
        }
    };
}

reader!(ChildStdout, std::process::ChildStdout);
reader!(ChildStderr, std::process::ChildStderr);

impl AsyncWrite for ChildStdin {
    fn write<B: IoBuf>(&self, buf: B) -> impl std::future::Future<Output = (io::Result<usize>, B)> {
        self.pipe.write(buf)
    }
}

impl AsRawFd for ChildStdin {
    fn as_raw_fd(&self) -> RawFd {
        self.pipe.fd.as_raw_fd()
    }
}

impl AsFd for ChildStdin {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.pipe.fd.as_fd()
    }
}
