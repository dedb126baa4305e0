//! `UnixDatagram`: bound, unbound or paired datagram sockets; datagrams sent and received
//! through the ring, to and from paths.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::socket::SockType;

use super::SocketAddr;
use crate::buf::{IoBuf, IoBufMut};
use crate::net::ring_socket::RingSocket;
use crate::net::socket;

/// A Unix datagram socket.
///
/// Datagrams are sent from and received into owned buffers, passed by value and handed back
/// with the result. Unix datagrams are reliable and ordered; a send waits while the receiver's
/// queue is full.
///
/// # Examples
///
/// ```no_run
/// use ringloop::net::UnixDatagram;
///
/// ringloop::block_on(async {
///     let server = UnixDatagram::bind("/tmp/ringloop-server.sock")?;
///     let client = UnixDatagram::bind("/tmp/ringloop-client.sock")?;
///     client.send_to(b"ping".to_vec(), "/tmp/ringloop-server.sock").await.0?;
///     let (res, buf) = server.recv_from(Vec::with_capacity(64)).await;
///     let (n, from) = res?;
///     assert_eq!(&buf[..n], b"ping");
///     server.send_to(b"pong".to_vec(), from.as_pathname().unwrap()).await.0?;
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UnixDatagram {
    sock: RingSocket,
}

impl UnixDatagram {
    fn from_fd(fd: OwnedFd) -> UnixDatagram {
        UnixDatagram {
            sock: RingSocket::new(fd),
        }
    }

    /// Creates a socket bound to `path`, which others can [`send_to`](Self::send_to).
    ///
    /// # Errors
    ///
    /// `AddrInUse` if `path` exists (remove a stale socket file first); `InvalidInput` if the
    /// path is longer than 107 bytes; those of `socket(2)` and `bind(2)`.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        let fd = super::new_socket(SockType::Datagram)?;
        super::bind(&fd, path.as_ref())?;
        Ok(Self::from_fd(fd))
    }

    /// Creates a socket bound to no path: it can send, and receive replies only once
    /// [connected](Self::connect) (its datagrams arrive from an unnamed sender).
    ///
    /// # Errors
    ///
    /// Those of `socket(2)`.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn unbound() -> io::Result<UnixDatagram> {
        Ok(Self::from_fd(super::new_socket(SockType::Datagram)?))
    }

    /// Two sockets connected to each other, with no path (`socketpair(2)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::net::UnixDatagram;
    ///
    /// ringloop::block_on(async {
    ///     let (a, b) = UnixDatagram::pair()?;
    ///     a.send(b"hi".to_vec()).await.0?;
    ///     let (res, buf) = b.recv(Vec::with_capacity(16)).await;
    ///     assert_eq!(res?, 2);
    ///     assert_eq!(buf, b"hi");
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Those of `socketpair(2)` (`EMFILE`).
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = super::new_pair(SockType::Datagram)?;
        Ok((Self::from_fd(a), Self::from_fd(b)))
    }

    /// Wraps a standard-library socket (made blocking: io_uring waits for readiness itself,
    /// and would answer `EAGAIN` on a non-blocking one).
    ///
    /// # Errors
    ///
    /// That of clearing `O_NONBLOCK`.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn from_std(socket: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        socket.set_nonblocking(false)?;
        Ok(Self::from_fd(OwnedFd::from(socket)))
    }

    /// Sets the default destination for [`send`](Self::send), and receives only from it from
    /// now on (`connect(2)`: it only records the peer, so this does not wait).
    ///
    /// # Errors
    ///
    /// `NotFound` if nothing is at `path`; `ConnectionRefused` if no socket is bound there;
    /// `InvalidInput` if the path is longer than 107 bytes.
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        super::connect(&self.sock, path.as_ref())
    }

    /// Sends `buf`'s initialised bytes as one datagram to the socket bound to `path`.
    ///
    /// # Errors
    ///
    /// `NotFound` if nothing is at `path`; `ConnectionRefused` if no socket is bound there;
    /// `InvalidInput` if the path is longer than 107 bytes; `EMSGSIZE` if the datagram is
    /// larger than the socket's send buffer.
    ///
    /// # Cancel safety
    ///
    /// If dropped, the send is cancelled unless it already happened; a datagram goes out whole
    /// or not at all, but which of the two is unknown. The buffer is freed once the kernel
    /// lets go of it.
    pub async fn send_to<B: IoBuf>(
        &self,
        buf: B,
        path: impl AsRef<Path>,
    ) -> (io::Result<usize>, B) {
        match super::sockaddr(path.as_ref()) {
            Ok(addr) => self.sock.send_to(buf, addr).await,
            Err(e) => (Err(e), buf),
        }
    }

    /// Receives one datagram into `buf` (up to its `bytes_total`, from its start); returns its
    /// length and its sender (unnamed if the sender is not bound to a path).
    ///
    /// A datagram longer than `bytes_total` is truncated: the call returns `bytes_total`, and
    /// the rest of that datagram is discarded. An empty datagram is `Ok((0, sender))`.
    ///
    /// # Errors
    ///
    /// Those of `recvmsg(2)`.
    ///
    /// # Cancel safety
    ///
    /// If dropped, the receive is cancelled; a datagram it had already taken is lost. The
    /// buffer is freed once the kernel lets go of it.
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> (io::Result<(usize, SocketAddr)>, B) {
        let (res, buf) = self.sock.recv_from(buf).await;
        (res.map(|(n, from)| (n, SocketAddr::from_buf(&from))), buf)
    }

    /// Sends `buf`'s initialised bytes as one datagram to the connected peer.
    ///
    /// # Errors
    ///
    /// `NotConnected` if the socket is not connected; `ConnectionRefused` if the peer is gone.
    ///
    /// # Cancel safety
    ///
    /// As [`send_to`](Self::send_to).
    pub async fn send<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        self.sock.send(buf).await
    }

    /// Receives one datagram into `buf`; truncated as in [`recv_from`](Self::recv_from).
    ///
    /// # Errors
    ///
    /// Those of `recv(2)`.
    ///
    /// # Cancel safety
    ///
    /// As [`recv_from`](Self::recv_from).
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        self.sock.recv(buf).await
    }

    /// Shuts down reading, writing, or both (`shutdown(2)`); a receive pending on this socket
    /// returns `Ok(0)` after shutting down reading.
    ///
    /// # Errors
    ///
    /// Those of `shutdown(2)`.
    pub fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        socket::shutdown(&self.sock, how)
    }

    /// The path this socket is bound to (unnamed if none).
    ///
    /// # Errors
    ///
    /// That of `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        SocketAddr::local(&self.sock)
    }

    /// The path of the connected peer.
    ///
    /// # Errors
    ///
    /// `NotConnected` if the socket is not connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        SocketAddr::peer(&self.sock)
    }

    /// Closes the socket through the ring, after the operations still in flight on it.
    ///
    /// # Errors
    ///
    /// That of `close(2)`.
    pub async fn close(self) -> io::Result<()> {
        self.sock.close().await
    }
}

impl AsRawFd for UnixDatagram {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for UnixDatagram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}
