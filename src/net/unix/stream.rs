//! `UnixStream`: connect to a path or make a pair, owned-buffer reads and writes, pooled
//! receive, split.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::socket::SockType;

use super::SocketAddr;
use crate::buf::{IoBuf, IoBufMut};
use crate::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use crate::net::pool::{BufferPool, RecvStream};
use crate::net::ring_socket::RingSocket;
use crate::net::socket;
use crate::net::SendQueue;

/// A connected Unix stream socket.
///
/// Reads and writes take their buffer by value and return it with the result:
/// `let (res, buf) = stream.read(buf).await;`. A stream can be shared by reference between
/// tasks of its runtime, or split into owned halves with [`into_split`](Self::into_split).
///
/// # Examples
///
/// ```no_run
/// use ringloop::net::UnixStream;
///
/// ringloop::block_on(async {
///     let stream = UnixStream::connect("/tmp/ringloop-echo.sock").await?;
///     let (res, _) = stream.write_all(b"ping".to_vec()).await;
///     res?;
///     let (res, buf) = stream.read_exact(Vec::with_capacity(4)).await;
///     res?;
///     assert_eq!(buf, b"ping");
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UnixStream {
    sock: RingSocket,
}

impl UnixStream {
    pub(super) fn from_socket(sock: RingSocket) -> UnixStream {
        UnixStream { sock }
    }

    #[cfg(feature = "_compat")]
    pub(crate) fn ring_socket(&self) -> &RingSocket {
        &self.sock
    }

    /// Connects to the listener bound to `path`.
    ///
    /// # Errors
    ///
    /// `NotFound` if nothing is at `path`; `ConnectionRefused` if the file is a socket nobody
    /// listens on; `InvalidInput` if the path is longer than 107 bytes; `PermissionDenied`.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the attempt and closes the socket.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let addr = super::sockaddr(path.as_ref())?;
        let sock = RingSocket::new(super::new_socket(SockType::Stream)?);
        sock.connect(addr).await?;
        Ok(UnixStream { sock })
    }

    /// Two streams connected to each other, with no path (`socketpair(2)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::net::UnixStream;
    ///
    /// ringloop::block_on(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     a.write_all(b"hi".to_vec()).await.0?;
    ///     let (res, buf) = b.read_exact(Vec::with_capacity(2)).await;
    ///     res?;
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
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = super::new_pair(SockType::Stream)?;
        Ok((
            UnixStream::from_socket(RingSocket::new(a)),
            UnixStream::from_socket(RingSocket::new(b)),
        ))
    }

    /// Wraps a connected standard-library stream (made blocking: io_uring waits for readiness
    /// itself, and would answer `EAGAIN` on a non-blocking one).
    ///
    /// # Errors
    ///
    /// That of clearing `O_NONBLOCK`.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(false)?;
        Ok(UnixStream::from_socket(RingSocket::new(OwnedFd::from(
            stream,
        ))))
    }

    /// Reads into `buf` (up to its `bytes_total`, from its start). `Ok(0)`: the peer closed
    /// or shut down writing.
    ///
    /// # Errors
    ///
    /// Those of `recv(2)` (`ConnectionReset`).
    ///
    /// # Cancel safety
    ///
    /// If dropped, the receive is cancelled; bytes it may already have taken are lost. Use
    /// [`recv_pooled`](Self::recv_pooled) for a cancel-safe receive.
    pub async fn read<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        self.sock.recv(buf).await
    }

    /// Reads into `buf` like [`read`](Self::read), but leaves the bytes in the socket: the
    /// next read or peek returns them again. `Ok(0)`: the peer closed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a peek takes nothing from the socket.
    pub async fn peek<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        self.sock.peek(buf).await
    }

    /// Fills `buf` to `bytes_total`. See [`AsyncReadExt::read_exact`].
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` if the stream ends first; as [`read`](Self::read).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: bytes read before the future is dropped are lost.
    pub async fn read_exact<B: IoBufMut>(&self, buf: B) -> (io::Result<()>, B) {
        AsyncReadExt::read_exact(self, buf).await
    }

    /// Writes some of `buf`'s initialised bytes; returns how many (`send(2)` with
    /// `MSG_NOSIGNAL`: a closed peer is a `BrokenPipe` error, not `SIGPIPE`).
    ///
    /// # Errors
    ///
    /// Those of `send(2)` (`BrokenPipe`).
    ///
    /// # Cancel safety
    ///
    /// If dropped, the send is cancelled if it has not happened; whether bytes went out is
    /// unknown.
    pub async fn write<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        self.sock.send(buf).await
    }

    /// Writes all of `buf`'s initialised bytes. See [`AsyncWriteExt::write_all`].
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write); `WriteZero` if the socket accepts no bytes.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: a prefix of the bytes may have been written.
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> (io::Result<()>, B) {
        AsyncWriteExt::write_all(self, buf).await
    }

    /// Receives into `pool`'s buffers through one multishot receive kept armed in the ring.
    /// See [`BufferPool`].
    pub fn recv_pooled(&self, pool: &BufferPool) -> RecvStream {
        self.sock.recv_pooled(pool)
    }

    /// A queue of writes sent in order without waking this task per write; `send` waits only
    /// while `depth` buffers (at least 1) are queued. See [`SendQueue`].
    pub fn send_queue<B: IoBuf>(&self, depth: usize) -> SendQueue<B> {
        self.sock.send_queue(depth)
    }

    /// Shuts down reading, writing, or both (`shutdown(2)`).
    ///
    /// # Errors
    ///
    /// `NotConnected` if the peer is gone.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        socket::shutdown(&self.sock, how)
    }

    /// The path of the peer's socket (unnamed for a listener's client that did not bind, and
    /// for a [`pair`](Self::pair)).
    ///
    /// # Errors
    ///
    /// That of `getpeername(2)`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        SocketAddr::peer(&self.sock)
    }

    /// The path of this socket (a stream accepted by a listener reports the listener's path;
    /// a connecting one is unnamed).
    ///
    /// # Errors
    ///
    /// That of `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        SocketAddr::local(&self.sock)
    }

    /// The credentials of the process at the other end (`SO_PEERCRED`): who connected, for a
    /// server that authorises by user.
    ///
    /// ```
    /// use ringloop::net::UnixStream;
    ///
    /// ringloop::block_on(async {
    ///     let (a, _b) = UnixStream::pair()?;
    ///     let peer = a.peer_cred()?;
    ///     assert_eq!(peer.pid(), Some(std::process::id() as i32));
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// That of `getsockopt(2)`.
    pub fn peer_cred(&self) -> io::Result<super::UCred> {
        super::UCred::of_peer(&self.sock)
    }

    /// Splits into a read half and a write half, usable from two tasks. The socket closes when
    /// both are dropped.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        (
            OwnedReadHalf {
                sock: self.sock.clone(),
            },
            OwnedWriteHalf { sock: self.sock },
        )
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

impl AsyncRead for UnixStream {
    fn read<B: IoBufMut>(
        &self,
        buf: B,
    ) -> impl std::future::Future<Output = (io::Result<usize>, B)> {
        self.sock.recv(buf)
    }
}

impl AsyncWrite for UnixStream {
    fn write<B: IoBuf>(&self, buf: B) -> impl std::future::Future<Output = (io::Result<usize>, B)> {
        self.sock.send(buf)
    }
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for UnixStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// The read half of a [`UnixStream`], from [`into_split`](UnixStream::into_split).
#[derive(Debug)]
pub struct OwnedReadHalf {
    sock: RingSocket,
}

/// The write half of a [`UnixStream`]; dropping it does not shut the socket down (call
/// [`shutdown`](Self::shutdown) for the peer to read end of stream).
#[derive(Debug)]
pub struct OwnedWriteHalf {
    sock: RingSocket,
}

impl OwnedReadHalf {
    /// As [`UnixStream::read`].
    ///
    /// # Errors
    ///
    /// As [`UnixStream::read`].
    ///
    /// # Cancel safety
    ///
    /// As [`UnixStream::read`].
    pub async fn read<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        self.sock.recv(buf).await
    }

    /// As [`UnixStream::read_exact`].
    ///
    /// # Errors
    ///
    /// As [`UnixStream::read_exact`].
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe, as [`UnixStream::read_exact`].
    pub async fn read_exact<B: IoBufMut>(&self, buf: B) -> (io::Result<()>, B) {
        AsyncReadExt::read_exact(self, buf).await
    }

    /// As [`UnixStream::recv_pooled`].
    pub fn recv_pooled(&self, pool: &BufferPool) -> RecvStream {
        self.sock.recv_pooled(pool)
    }
}

impl OwnedWriteHalf {
    /// As [`UnixStream::send_queue`].
    pub fn send_queue<B: IoBuf>(&self, depth: usize) -> SendQueue<B> {
        self.sock.send_queue(depth)
    }

    /// As [`UnixStream::write`].
    ///
    /// # Errors
    ///
    /// As [`UnixStream::write`].
    ///
    /// # Cancel safety
    ///
    /// As [`UnixStream::write`].
    pub async fn write<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        self.sock.send(buf).await
    }

    /// As [`UnixStream::write_all`].
    ///
    /// # Errors
    ///
    /// As [`UnixStream::write_all`].
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe, as [`UnixStream::write_all`].
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> (io::Result<()>, B) {
        AsyncWriteExt::write_all(self, buf).await
    }

    /// Shuts down the writing side: the peer reads end of stream; the read half keeps working.
    ///
    /// # Errors
    ///
    /// `NotConnected` if the peer is gone.
    pub fn shutdown(&self) -> io::Result<()> {
        socket::shutdown(&self.sock, Shutdown::Write)
    }
}

impl AsyncRead for OwnedReadHalf {
    fn read<B: IoBufMut>(
        &self,
        buf: B,
    ) -> impl std::future::Future<Output = (io::Result<usize>, B)> {
        self.sock.recv(buf)
    }
}

impl AsyncWrite for OwnedWriteHalf {
    fn write<B: IoBuf>(&self, buf: B) -> impl std::future::Future<Output = (io::Result<usize>, B)> {
        self.sock.send(buf)
    }
}
