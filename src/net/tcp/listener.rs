//! `TcpListener`: bind, accept one, or keep a multishot accept armed.

use std::future::poll_fn;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::task::{Context, Poll};

use super::TcpStream;
use crate::net::accept::Acceptor;
use crate::net::socket::{self, ListenOptions};

/// A TCP socket listening for connections.
///
/// The listener keeps one multishot accept armed in the ring, shared by [`accept`] and
/// [`incoming`]: connections the kernel accepts while nobody is waiting queue up for the next
/// call, so dropping an `accept` future never loses (or resets) a connection. Accept from one
/// task at a time.
///
/// [`accept`]: TcpListener::accept
/// [`incoming`]: TcpListener::incoming
///
/// # Examples
///
/// ```no_run
/// use ringloop::net::TcpListener;
///
/// async fn serve() -> std::io::Result<()> {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     println!("listening on {}", listener.local_addr()?);
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
/// ringloop::block_on(serve())?;
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct TcpListener {
    acceptor: Acceptor,
    local: SocketAddr,
}

impl TcpListener {
    /// Binds to `addr` with the default [`ListenOptions`] (`SO_REUSEADDR`, backlog 1024).
    ///
    /// Tries each address `addr` resolves to and returns the first that binds.
    ///
    /// # Errors
    ///
    /// Those of `socket(2)`, `bind(2)` (`AddrInUse`, `PermissionDenied`) and `listen(2)`.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        Self::bind_with(addr, &ListenOptions::new())
    }

    /// Binds with explicit options: `SO_REUSEPORT`, backlog, `IPV6_V6ONLY`.
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind).
    pub fn bind_with(addr: impl ToSocketAddrs, opts: &ListenOptions) -> io::Result<TcpListener> {
        let mut last = None;
        for addr in socket::resolve(addr)? {
            let bound = socket::tcp_socket(&addr).and_then(|fd| {
                socket::listen_on(&fd, &addr, opts)?;
                Ok(fd)
            });
            match bound {
                Ok(fd) => return Self::from_fd(fd),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    pub(super) fn from_fd(fd: OwnedFd) -> io::Result<TcpListener> {
        let local = socket::local_addr(&fd)?;
        Ok(TcpListener {
            acceptor: Acceptor::new(fd),
            local,
        })
    }

    /// Wraps a listening standard-library socket.
    ///
    /// # Errors
    ///
    /// If its address cannot be read or it cannot be made blocking.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        // io_uring waits for readiness itself; a non-blocking fd would make it answer EAGAIN.
        listener.set_nonblocking(false)?;
        Self::from_fd(OwnedFd::from(listener))
    }

    /// The address the listener is bound to (with the port the system chose for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// Sets `IP_TTL` on the listening socket; accepted connections inherit it.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        socket::set_ttl(self, ttl)
    }

    /// `IP_TTL` of the listening socket.
    pub fn ttl(&self) -> io::Result<u32> {
        socket::ttl(self)
    }

    /// Accepts one connection and returns it with the peer's address.
    ///
    /// After an error the listener pauses before accepting again (5 ms, doubling up to 1 s
    /// while errors repeat): when the process is out of file descriptors (`EMFILE`, `ENFILE`)
    /// even a loop that retries at once does not spin, and the waiting connection stays in the
    /// kernel's backlog until descriptors free up. A connection the peer reset before we could
    /// read its address is skipped.
    ///
    /// # Errors
    ///
    /// `EMFILE`/`ENFILE` (out of descriptors), `ECONNABORTED`, and the like; the listener
    /// stays usable.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a connection accepted after the future was dropped is returned by the next
    /// call.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        loop {
            let fd = poll_fn(|cx| self.acceptor.poll_accept(cx)).await?;
            let stream = TcpStream::from_owned(fd, self.acceptor.driver().clone());
            match stream.peer_addr() {
                Ok(peer) => return Ok((stream, peer)),
                // Reset before we looked: nothing to hand out; take the next one.
                Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// A stream of incoming connections (the same accept as [`accept`](Self::accept)).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.acceptor.as_fd()
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.acceptor.as_raw_fd()
    }
}

/// Connections from [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Incoming<'_> {
    /// The next connection. Errors (see [`TcpListener::accept`]) do not end the stream.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: connections accepted meanwhile wait for the next call.
    pub async fn next(&mut self) -> io::Result<TcpStream> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Polls for the next connection. See [`next`](Self::next).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<TcpStream>> {
        let acceptor = &self.listener.acceptor;
        let fd = std::task::ready!(acceptor.poll_accept(cx))?;
        Poll::Ready(Ok(TcpStream::from_owned(fd, acceptor.driver().clone())))
    }
}
