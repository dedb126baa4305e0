//! `TcpSocket`: a TCP socket configured before it becomes a stream or a listener.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::sys::socket::{self as nix_socket, sockopt, AddressFamily, SockType};

use super::{TcpListener, TcpStream};
use crate::net::socket;

/// A TCP socket not yet connected or listening, for the options that must be set before
/// (tokio's `TcpSocket`): the local address of an outgoing connection, `SO_REUSEPORT`, buffer
/// sizes, keep-alive.
///
/// # Examples
///
/// ```
/// use ringloop::net::TcpSocket;
///
/// ringloop::block_on(async {
///     let listener = TcpSocket::new_v4()?;
///     listener.set_reuseaddr(true)?;
///     listener.bind("127.0.0.1:0".parse().unwrap())?;
///     let listener = listener.listen(128)?;
///
///     let client = TcpSocket::new_v4()?;
///     client.set_recv_buffer_size(256 * 1024)?;
///     client.bind("127.0.0.1:0".parse().unwrap())?; // pick the outgoing local address
///     let from = client.local_addr()?;
///     let stream = client.connect(listener.local_addr()?).await?;
///     let (_accepted, peer) = listener.accept().await?;
///     assert_eq!(peer, from);
///     # drop(stream);
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct TcpSocket {
    fd: OwnedFd,
}

impl TcpSocket {
    /// A new IPv4 TCP socket.
    pub fn new_v4() -> io::Result<TcpSocket> {
        TcpSocket::new(AddressFamily::Inet)
    }

    /// A new IPv6 TCP socket.
    pub fn new_v6() -> io::Result<TcpSocket> {
        TcpSocket::new(AddressFamily::Inet6)
    }

    fn new(family: AddressFamily) -> io::Result<TcpSocket> {
        Ok(TcpSocket {
            fd: socket::new_socket(family, SockType::Stream)?,
        })
    }

    /// `SO_REUSEADDR`: bind despite connections still in `TIME_WAIT` on the address.
    pub fn set_reuseaddr(&self, on: bool) -> io::Result<()> {
        Ok(nix_socket::setsockopt(&self.fd, sockopt::ReuseAddr, &on)?)
    }

    /// Whether `SO_REUSEADDR` is on.
    pub fn reuseaddr(&self) -> io::Result<bool> {
        Ok(nix_socket::getsockopt(&self.fd, sockopt::ReuseAddr)?)
    }

    /// `SO_REUSEPORT`: several sockets (one per shard) bound to one address and port.
    pub fn set_reuseport(&self, on: bool) -> io::Result<()> {
        Ok(nix_socket::setsockopt(&self.fd, sockopt::ReusePort, &on)?)
    }

    /// Whether `SO_REUSEPORT` is on.
    pub fn reuseport(&self) -> io::Result<bool> {
        Ok(nix_socket::getsockopt(&self.fd, sockopt::ReusePort)?)
    }

    /// `SO_SNDBUF`, in bytes. Linux doubles the value for its bookkeeping, and
    /// [`send_buffer_size`](Self::send_buffer_size) reads back the doubled value.
    pub fn set_send_buffer_size(&self, size: u32) -> io::Result<()> {
        Ok(nix_socket::setsockopt(
            &self.fd,
            sockopt::SndBuf,
            &as_usize(size),
        )?)
    }

    /// `SO_SNDBUF`, as the kernel holds it.
    pub fn send_buffer_size(&self) -> io::Result<u32> {
        Ok(saturate(nix_socket::getsockopt(&self.fd, sockopt::SndBuf)?))
    }

    /// `SO_RCVBUF`, in bytes (doubled by Linux, as [`set_send_buffer_size`](Self::set_send_buffer_size)).
    pub fn set_recv_buffer_size(&self, size: u32) -> io::Result<()> {
        Ok(nix_socket::setsockopt(
            &self.fd,
            sockopt::RcvBuf,
            &as_usize(size),
        )?)
    }

    /// `SO_RCVBUF`, as the kernel holds it.
    pub fn recv_buffer_size(&self) -> io::Result<u32> {
        Ok(saturate(nix_socket::getsockopt(&self.fd, sockopt::RcvBuf)?))
    }

    /// `SO_KEEPALIVE`: probe an idle connection, so a peer that vanished is noticed.
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        Ok(nix_socket::setsockopt(&self.fd, sockopt::KeepAlive, &on)?)
    }

    /// Whether `SO_KEEPALIVE` is on.
    pub fn keepalive(&self) -> io::Result<bool> {
        Ok(nix_socket::getsockopt(&self.fd, sockopt::KeepAlive)?)
    }

    /// `TCP_NODELAY`: send small writes at once instead of coalescing them (Nagle).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        socket::set_nodelay(&self.fd, on)
    }

    /// Whether `TCP_NODELAY` is on.
    pub fn nodelay(&self) -> io::Result<bool> {
        socket::nodelay(&self.fd)
    }

    /// Binds to `addr`: the address to listen on, or the local address of a connection.
    ///
    /// # Errors
    ///
    /// `AddrInUse`, `AddrNotAvailable`, `PermissionDenied` (a privileged port), or
    /// `InvalidInput` for an address of the other family.
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        socket::bind(&self.fd, &addr)
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket::local_addr(&self.fd)
    }

    /// Connects through the ring, making a [`TcpStream`].
    ///
    /// # Errors
    ///
    /// `ConnectionRefused`, `TimedOut`, `NetworkUnreachable`, …
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the attempt and closes the socket.
    pub async fn connect(self, addr: SocketAddr) -> io::Result<TcpStream> {
        TcpStream::connect_fd(self.fd, addr).await
    }

    /// Listens with a `backlog` of pending connections (capped by `net.core.somaxconn`),
    /// making a [`TcpListener`].
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn listen(self, backlog: u32) -> io::Result<TcpListener> {
        socket::listen(&self.fd, backlog)?;
        TcpListener::from_fd(self.fd)
    }
}

fn as_usize(size: u32) -> usize {
    usize::try_from(size).unwrap_or(usize::MAX)
}

fn saturate(size: usize) -> u32 {
    u32::try_from(size).unwrap_or(u32::MAX)
}

impl AsFd for TcpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for TcpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<TcpSocket> for OwnedFd {
    fn from(socket: TcpSocket) -> OwnedFd {
        socket.fd
    }
}
