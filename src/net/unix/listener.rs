//! `UnixListener`: bind a path, accept one, or keep a multishot accept armed.

use std::future::poll_fn;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::task::{Context, Poll};

use nix::sys::socket::{Backlog, SockType};

use super::{SocketAddr, UnixStream};
use crate::net::accept::Acceptor;
use crate::net::ring_socket::RingSocket;

/// The `listen(2)` backlog (capped by `net.core.somaxconn`), as for TCP's default.
const BACKLOG: i32 = 1024;

/// A Unix socket listening for connections on a path.
///
/// The listener keeps one multishot accept armed in the ring, shared by [`accept`] and
/// [`incoming`]: connections the kernel accepts while nobody is waiting queue up for the next
/// call, so dropping an `accept` future never loses a connection. Accept from one task at a
/// time.
///
/// The path is a file that outlives the listener: remove it once the listener is dropped
/// (and before binding again).
///
/// # Examples
///
/// ```no_run
/// use ringloop::net::UnixListener;
///
/// async fn serve(path: &str) -> std::io::Result<()> {
///     let _ = std::fs::remove_file(path);
///     let listener = UnixListener::bind(path)?;
///     let mut incoming = listener.incoming();
///     loop {
///         let stream = incoming.next().await?;
///         ringloop::spawn(async move {
///             let (res, buf) = stream.read(vec![0; 1024]).await;
///             if let Ok(n) = res {
///                 let _ = stream.write_all(buf[..n].to_vec()).await;
///             }
///         });
///     }
/// }
///
/// ringloop::block_on(serve("/tmp/ringloop-echo.sock"))?;
/// # Ok::<_, std::io::Error>(())
/// ```
///
/// [`accept`]: UnixListener::accept
/// [`incoming`]: UnixListener::incoming
#[derive(Debug)]
pub struct UnixListener {
    acceptor: Acceptor,
}

impl UnixListener {
    /// Creates a socket bound to `path` and listening (backlog 1024).
    ///
    /// # Errors
    ///
    /// `AddrInUse` if `path` exists (even a stale socket file: remove it first);
    /// `InvalidInput` if the path is longer than 107 bytes; those of `socket(2)`, `bind(2)`
    /// (`PermissionDenied`, `NotFound` for a missing directory) and `listen(2)`.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let fd = super::new_socket(SockType::Stream)?;
        super::bind(&fd, path.as_ref())?;
        let backlog = Backlog::new(BACKLOG).map_err(io::Error::from)?;
        nix::sys::socket::listen(&fd, backlog)?;
        Ok(Self::from_fd(fd))
    }

    fn from_fd(fd: OwnedFd) -> UnixListener {
        UnixListener {
            acceptor: Acceptor::new(fd),
        }
    }

    /// Wraps a listening standard-library socket (made blocking: io_uring waits for readiness
    /// itself, and would answer `EAGAIN` on a non-blocking one).
    ///
    /// # Errors
    ///
    /// That of clearing `O_NONBLOCK`.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(false)?;
        Ok(Self::from_fd(OwnedFd::from(listener)))
    }

    /// The path the listener is bound to.
    ///
    /// # Errors
    ///
    /// That of `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        SocketAddr::local(&self.acceptor)
    }

    /// Accepts one connection; returns it and the peer's address (unnamed unless the peer
    /// bound its socket to a path before connecting).
    ///
    /// After an error the listener pauses before accepting again (5 ms, doubling up to 1 s
    /// while errors repeat): when the process is out of file descriptors (`EMFILE`, `ENFILE`)
    /// even a loop that retries at once does not spin, and the waiting connection stays in the
    /// kernel's backlog until descriptors free up.
    ///
    /// # Errors
    ///
    /// `EMFILE`/`ENFILE` (out of descriptors) and the like, after which the listener stays
    /// usable; that of `getpeername(2)` on the new socket.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a connection accepted after the future was dropped is returned by the next
    /// call.
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let fd = poll_fn(|cx| self.acceptor.poll_accept(cx)).await?;
        let peer = match SocketAddr::peer(&fd) {
            Ok(peer) => peer,
            // The peer is already gone; the connection may still hold data to read.
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => SocketAddr::unnamed(),
            Err(e) => return Err(e),
        };
        Ok((self.stream(fd), peer))
    }

    /// A stream of incoming connections (the same accept as [`accept`](Self::accept)).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    fn stream(&self, fd: OwnedFd) -> UnixStream {
        UnixStream::from_socket(RingSocket::with_driver(fd, self.acceptor.driver().clone()))
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.acceptor.as_raw_fd()
    }
}

impl AsFd for UnixListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.acceptor.as_fd()
    }
}

/// Connections from [`UnixListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

impl Incoming<'_> {
    /// The next connection. Errors (see [`UnixListener::accept`]) do not end the stream.
    ///
    /// # Errors
    ///
    /// As [`UnixListener::accept`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: connections accepted meanwhile wait for the next call.
    pub async fn next(&mut self) -> io::Result<UnixStream> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Polls for the next connection. See [`next`](Self::next).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<UnixStream>> {
        let fd = std::task::ready!(self.listener.acceptor.poll_accept(cx))?;
        Poll::Ready(Ok(self.listener.stream(fd)))
    }
}
