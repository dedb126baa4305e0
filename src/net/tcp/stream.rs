//! `TcpStream`: connect, owned-buffer reads and writes, pooled receive, split.

use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use crate::buf::{IoBuf, IoBufMut};
use crate::driver::sockaddr::SockAddrBuf;
use crate::driver::Driver;
use crate::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use crate::net::pool::{BufferPool, RecvStream};
use crate::net::ring_socket::RingSocket;
use crate::net::socket;
use crate::net::SendQueue;

/// A TCP connection.
///
/// Reads and writes take their buffer by value and return it with the result:
/// `let (res, buf) = stream.read(buf).await;`. A stream can be shared by reference between
/// tasks of its runtime, or split into owned halves with [`into_split`](Self::into_split).
///
/// # Examples
///
/// ```no_run
/// use ringloop::net::TcpStream;
///
/// ringloop::block_on(async {
///     let stream = TcpStream::connect("127.0.0.1:7878").await?;
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
pub struct TcpStream {
    socket: RingSocket,
}

impl TcpStream {
    pub(crate) fn from_owned(fd: OwnedFd, driver: Rc<Driver>) -> TcpStream {
        TcpStream {
            socket: RingSocket::with_driver(fd, driver),
        }
    }

    /// Connects to `addr`, trying each address it resolves to in turn.
    ///
    /// Host names are resolved with the system resolver on this thread, which blocks every task
    /// of the runtime meanwhile: resolve them with [`lookup_host`](crate::net::lookup_host)
    /// first, which does it on the blocking pool, and pass the addresses.
    ///
    /// # Errors
    ///
    /// The last address's error: `ConnectionRefused`, `TimedOut`, `NetworkUnreachable`, …
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the attempt and closes the socket.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = None;
        for addr in socket::resolve(addr)? {
            match Self::connect_addr(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    /// Connects to `addr`, giving up after `timeout` with `TimedOut`.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect), and `TimedOut`.
    pub async fn connect_timeout(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        crate::time::timeout(timeout, Self::connect_addr(addr)).await?
    }

    async fn connect_addr(addr: SocketAddr) -> io::Result<TcpStream> {
        Self::connect_fd(socket::tcp_socket(&addr)?, addr).await
    }

    /// Connects the unconnected TCP socket `fd` to `addr` through the ring.
    pub(super) async fn connect_fd(fd: OwnedFd, addr: SocketAddr) -> io::Result<TcpStream> {
        let socket = RingSocket::new(fd);
        socket.connect(SockAddrBuf::from_std(addr)).await?;
        Ok(TcpStream { socket })
    }

    /// Wraps a connected standard-library stream.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(false)?;
        Ok(TcpStream {
            socket: RingSocket::new(OwnedFd::from(stream)),
        })
    }

    /// Reads into `buf` (up to its `bytes_total`, from its start). `Ok(0)`: the peer closed.
    ///
    /// # Cancel safety
    ///
    /// If dropped, the receive is cancelled; bytes it may already have taken are lost. Use
    /// [`recv_pooled`](Self::recv_pooled) for a cancel-safe receive.
    pub async fn read<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        self.socket.recv(buf).await
    }

    /// Fills `buf` to `bytes_total`. See [`AsyncReadExt::read_exact`].
    pub async fn read_exact<B: IoBufMut>(&self, buf: B) -> (io::Result<()>, B) {
        AsyncReadExt::read_exact(self, buf).await
    }

    /// Reads into `buf` like [`read`](Self::read), but leaves the bytes in the socket: the
    /// next read or peek returns them again. `Ok(0)`: the peer closed.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ringloop::net::TcpStream;
    ///
    /// ringloop::block_on(async {
    ///     let stream = TcpStream::connect("127.0.0.1:7878").await?;
    ///     let (res, head) = stream.peek(vec![0u8; 4]).await;
    ///     if res? == 4 && head == b"GET " {
    ///         // An HTTP request: hand the untouched stream to the HTTP code.
    ///     }
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a peek takes nothing from the socket.
    pub async fn peek<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        self.socket.peek(buf).await
    }

    /// Writes some of `buf`'s initialised bytes; returns how many (`send(2)` with
    /// `MSG_NOSIGNAL`: a closed peer is an error, not `SIGPIPE`).
    ///
    /// # Cancel safety
    ///
    /// If dropped, the send is cancelled if it has not happened; whether bytes went out is
    /// unknown.
    pub async fn write<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        self.socket.send(buf).await
    }

    /// Writes all of `buf`'s initialised bytes. See [`AsyncWriteExt::write_all`].
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> (io::Result<()>, B) {
        AsyncWriteExt::write_all(self, buf).await
    }

    /// Reads into several buffers in order with one `readv(2)`; returns the total read.
    ///
    /// # Cancel safety
    ///
    /// As [`read`](Self::read).
    pub async fn readv<B: IoBufMut>(&self, bufs: Vec<B>) -> (io::Result<usize>, Vec<B>) {
        self.socket.readv(bufs).await
    }

    /// Writes several buffers' initialised bytes in order with one `writev(2)`; returns the
    /// total written, which may be short.
    ///
    /// # Cancel safety
    ///
    /// As [`write`](Self::write).
    pub async fn writev<B: IoBuf>(&self, bufs: Vec<B>) -> (io::Result<usize>, Vec<B>) {
        self.socket.writev(bufs).await
    }

    /// Receives into `pool`'s buffers through one multishot receive kept armed in the ring.
    /// See [`BufferPool`].
    pub fn recv_pooled(&self, pool: &BufferPool) -> RecvStream {
        self.socket.recv_pooled(pool)
    }

    /// A queue of writes sent in order without waking this task per write; `send` waits only
    /// while `depth` buffers (at least 1) are queued. See [`SendQueue`].
    pub fn send_queue<B: IoBuf>(&self, depth: usize) -> SendQueue<B> {
        self.socket.send_queue(depth)
    }

    /// Shuts down reading, writing, or both (`shutdown(2)`).
    ///
    /// # Errors
    ///
    /// `NotConnected` if the peer is gone.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        socket::shutdown(&self.socket, how)
    }

    /// Sets `TCP_NODELAY` (no Nagle delay for small writes).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        socket::set_nodelay(&self.socket, on)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        socket::nodelay(&self.socket)
    }

    /// Sets `IP_TTL`, the time-to-live of outgoing packets.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        socket::set_ttl(&self.socket, ttl)
    }

    /// `IP_TTL`, the time-to-live of outgoing packets.
    pub fn ttl(&self) -> io::Result<u32> {
        socket::ttl(&self.socket)
    }

    /// Sets `SO_LINGER`: `Some(Duration::ZERO)` makes closing the stream reset the
    /// connection at once, discarding unsent data (the peer reads `ConnectionReset`); `None`
    /// (the default) closes in the background, sending what is left.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a non-zero linger: the final close would then block the runtime's
    /// thread, and every task on it, until the data drained or the time ran out (tokio
    /// deprecated its `set_linger` for the same reason).
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        if linger.is_some_and(|d| !d.is_zero()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a non-zero SO_LINGER would block the runtime's thread when the stream closes; \
                 use Some(Duration::ZERO) to reset the connection, or None",
            ));
        }
        socket::set_linger(&self.socket, linger)
    }

    /// `SO_LINGER`: see [`set_linger`](Self::set_linger).
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        socket::linger(&self.socket)
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        socket::peer_addr(&self.socket)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket::local_addr(&self.socket)
    }

    /// Splits into a read half and a write half, usable from two tasks. The socket closes when
    /// both are dropped.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let read = OwnedReadHalf {
            socket: self.socket.clone(),
        };
        (
            read,
            OwnedWriteHalf {
                socket: self.socket,
            },
        )
    }

    /// Closes the socket through the ring, after operations still in flight on it.
    pub async fn close(self) -> io::Result<()> {
        self.socket.close().await
    }

    #[cfg(feature = "_compat")]
    pub(crate) fn ring_socket(&self) -> &RingSocket {
        &self.socket
    }
}

impl AsyncRead for TcpStream {
    fn read<B: IoBufMut>(
        &self,
        buf: B,
    ) -> impl std::future::Future<Output = (io::Result<usize>, B)> {
        self.socket.recv(buf)
    }
}

impl AsyncWrite for TcpStream {
    fn write<B: IoBuf>(&self, buf: B) -> impl std::future::Future<Output = (io::Result<usize>, B)> {
        self.socket.send(buf)
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

/// The read half of a [`TcpStream`], from [`into_split`](TcpStream::into_split).
#[derive(Debug)]
pub struct OwnedReadHalf {
    socket: RingSocket,
}

/// The write half of a [`TcpStream`]; dropping it does not shut the socket down (call
/// [`shutdown`](Self::shutdown) to send FIN).
#[derive(Debug)]
pub struct OwnedWriteHalf {
    socket: RingSocket,
}

impl OwnedReadHalf {
    /// As [`TcpStream::read`].
    pub async fn read<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        self.socket.recv(buf).await
    }

    /// As [`TcpStream::peek`].
    pub async fn peek<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        self.socket.peek(buf).await
    }

    /// As [`TcpStream::read_exact`].
    pub async fn read_exact<B: IoBufMut>(&self, buf: B) -> (io::Result<()>, B) {
        AsyncReadExt::read_exact(self, buf).await
    }

    /// As [`TcpStream::recv_pooled`].
    pub fn recv_pooled(&self, pool: &BufferPool) -> RecvStream {
        self.socket.recv_pooled(pool)
    }
}

impl OwnedWriteHalf {
    /// As [`TcpStream::send_queue`].
    pub fn send_queue<B: IoBuf>(&self, depth: usize) -> SendQueue<B> {
        self.socket.send_queue(depth)
    }

    /// As [`TcpStream::write`].
    pub async fn write<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        self.socket.send(buf).await
    }

    /// As [`TcpStream::write_all`].
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> (io::Result<()>, B) {
        AsyncWriteExt::write_all(self, buf).await
    }

    /// Shuts down the writing side (sends FIN); the read half keeps working.
    pub fn shutdown(&self) -> io::Result<()> {
        socket::shutdown(&self.socket, Shutdown::Write)
    }
}

impl AsyncRead for OwnedReadHalf {
    fn read<B: IoBufMut>(
        &self,
        buf: B,
    ) -> impl std::future::Future<Output = (io::Result<usize>, B)> {
        self.socket.recv(buf)
    }
}

impl AsyncWrite for OwnedWriteHalf {
    fn write<B: IoBuf>(&self, buf: B) -> impl std::future::Future<Output = (io::Result<usize>, B)> {
        self.socket.send(buf)
    }
}
