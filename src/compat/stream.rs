//! `Compat`: a ringloop stream behind the poll-based I/O traits of tokio (`tokio-compat`),
//! futures (`futures-io`) and hyper (`hyper`).
//!
//! The kernel needs memory it owns for the length of an operation, and the poll traits lend
//! memory only for one call. So `Compat` owns two buffers and copies once each way:
//!
//! - reads: one receive into its own buffer, kept in flight across polls, whose bytes are then
//!   copied out over as many `poll_read`s as it takes. Nothing is lost when the caller gives up
//!   on a read: the receive stays with `Compat`, and its bytes go to the next `poll_read`.
//!   The receive buffer doubles as the `AsyncBufRead` buffer, so lines and frames need no
//!   `BufReader` (and no second copy) on top.
//! - writes: `poll_write` copies into a staging buffer and returns at once; the bytes go to the
//!   kernel in one send while the next writes are staged (up to the write capacity, then
//!   `poll_write` waits). `poll_flush` waits until everything written was sent, and reports a
//!   send's error if the peer broke the connection meanwhile. As with tokio's `BufWriter`,
//!   **flush (or shut down) before dropping**: bytes still staged are lost with `Compat`
//!   (bytes already handed to the kernel still go out).
//!
//! # Invariants
//!
//! - (W1) At most one send is in flight; the staging buffer holds only bytes after it, so the
//!   peer receives the bytes in the order `poll_write` accepted them.
//! - (W2) An accepted byte is sent or its loss reported: a send's error is returned by the
//!   next `poll_write`, `poll_flush` or `poll_shutdown`, once.
//! - (R1) At most one receive is in flight, and it is never dropped while `Compat` lives.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use crate::driver::op::recv::Recv;
use crate::driver::op::send::Send;
use crate::driver::op::Op;
use crate::net::ring_socket::RingSocket;
use crate::net::{TcpStream, UnixStream};

/// Bytes received at most per receive, by default.
const READ_CAPACITY: usize = 16 * 1024;
/// Bytes staged at most while a send is in flight, by default.
const WRITE_CAPACITY: usize = 64 * 1024;

/// A ringloop stream with tokio's `AsyncRead`/`AsyncWrite` (feature `tokio-compat`) and
/// futures' (feature `futures-io`).
///
/// # Examples
///
/// ```
/// use ringloop::compat::Compat;
/// use ringloop::net::UnixStream;
/// use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
///
/// ringloop::block_on(async {
///     let (a, b) = UnixStream::pair()?;
///     let mut a = Compat::new(a);
///     a.write_all(b"first line\nsecond line\n").await?;
///     a.shutdown().await?; // flushes, then shuts down the writing side
///
///     // `Compat` is buffered already: it reads lines without a `BufReader` around it.
///     let mut lines = Compat::new(b).lines();
///     assert_eq!(lines.next_line().await?.as_deref(), Some("first line"));
///     assert_eq!(lines.next_line().await?.as_deref(), Some("second line"));
///     assert_eq!(lines.next_line().await?, None);
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Compat<S> {
    stream: S,
    socket: RingSocket,
    read: ReadSide,
    write: WriteSide,
}

#[derive(Debug)]
struct ReadSide {
    /// The receive in flight (R1).
    op: Option<Op<Recv<Vec<u8>>>>,
    /// Received bytes; those before `pos` were copied out.
    buf: Vec<u8>,
    pos: usize,
    capacity: usize,
}

#[derive(Debug)]
struct WriteSide {
    /// The send in flight (W1).
    op: Option<Op<Send<Vec<u8>>>>,
    /// Accepted bytes behind the send in flight.
    staged: Vec<u8>,
    /// The buffer of the last finished send, kept to stage into next.
    spare: Vec<u8>,
    capacity: usize,
}

/// A stream `Compat` can wrap: [`TcpStream`] and [`UnixStream`].
pub trait CompatStream: sealed::Sealed {}

mod sealed {
    use crate::net::ring_socket::RingSocket;

    /// The socket a stream runs on, behind a type users can reach but not open.
    #[derive(Debug)]
    pub struct Socket(pub(super) RingSocket);

    pub trait Sealed {
        fn socket(&self) -> Socket;
    }
}

impl sealed::Sealed for TcpStream {
    fn socket(&self) -> sealed::Socket {
        sealed::Socket(self.ring_socket().clone())
    }
}
impl CompatStream for TcpStream {}

impl sealed::Sealed for UnixStream {
    fn socket(&self) -> sealed::Socket {
        sealed::Socket(self.ring_socket().clone())
    }
}
impl CompatStream for UnixStream {}

impl<S: CompatStream> Compat<S> {
    /// Wraps `stream` with a 16 KiB receive buffer and up to 64 KiB staged for sending.
    pub fn new(stream: S) -> Compat<S> {
        Compat::with_capacity(stream, READ_CAPACITY, WRITE_CAPACITY)
    }

    /// Wraps `stream`, receiving up to `read` bytes at a time and staging up to `write` bytes
    /// while a send is in flight (each at least 1).
    pub fn with_capacity(stream: S, read: usize, write: usize) -> Compat<S> {
        let sealed::Socket(socket) = stream.socket();
        Compat {
            stream,
            socket,
            read: ReadSide {
                op: None,
                buf: Vec::new(),
                pos: 0,
                capacity: read.max(1),
            },
            write: WriteSide {
                op: None,
                staged: Vec::new(),
                spare: Vec::new(),
                capacity: write.max(1),
            },
        }
    }
}

impl<S> Compat<S> {
    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The wrapped stream. Bytes received but not yet read are dropped, and so are bytes
    /// staged but not yet sent (flush first); a send already in flight still completes.
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// The received bytes not yet consumed, receiving first if none are left. Empty: the
    /// peer closed its writing side.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let read = &mut self.read;
        while read.pos == read.buf.len() {
            let op = match &mut read.op {
                Some(op) => op,
                None => {
                    let mut buf = std::mem::take(&mut read.buf);
                    buf.clear();
                    buf.reserve_exact(read.capacity);
                    read.pos = 0;
                    read.op.insert(self.socket.recv_op(buf))
                }
            };
            let (res, buf) = ready!(Pin::new(op).poll(cx));
            read.op = None;
            read.buf = buf;
            read.pos = 0;
            if res? == 0 {
                break;
            }
        }
        Poll::Ready(Ok(&read.buf[read.pos..]))
    }

    /// Marks `n` bytes of those [`poll_fill`](Self::poll_fill) returned as read.
    fn consume(&mut self, n: usize) {
        self.read.pos = (self.read.pos + n).min(self.read.buf.len());
    }

    /// Waits for the send in flight, sending the rest after a short send. Ready when nothing
    /// is in flight; an error is the send's, and what was staged behind it is dropped (W2).
    fn poll_sent(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let write = &mut self.write;
        while let Some(op) = &mut write.op {
            let (res, mut buf) = ready!(Pin::new(op).poll(cx));
            write.op = None;
            let sent = match res {
                Ok(0) if !buf.is_empty() => Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => Ok(n),
                Err(e) => Err(e),
            };
            match sent {
                Ok(n) if n < buf.len() => {
                    buf.drain(..n);
                    write.op = Some(self.socket.send_op(buf));
                }
                Ok(_) => {
                    buf.clear();
                    write.spare = buf;
                }
                Err(e) => {
                    buf.clear();
                    write.spare = buf;
                    write.staged.clear();
                    return Poll::Ready(Err(e));
                }
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Hands the staged bytes to the kernel if no send is in flight (W1).
    fn send_staged(&mut self) {
        let write = &mut self.write;
        if write.op.is_none() && !write.staged.is_empty() {
            let next = std::mem::take(&mut write.spare);
            let buf = std::mem::replace(&mut write.staged, next);
            write.op = Some(self.socket.send_op(buf));
        }
    }

    fn poll_write_from(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Collects a finished send, so that its error is reported here (W2); a send still in
        // flight is fine unless the staging buffer is full.
        let sent = self.poll_sent(cx);
        if let Poll::Ready(Err(e)) = sent {
            return Poll::Ready(Err(e));
        }
        if self.write.staged.len() >= self.write.capacity {
            if sent.is_pending() {
                // Woken when the send in flight completes.
                return Poll::Pending;
            }
            self.send_staged();
        }
        let n = data
            .len()
            .min(self.write.capacity - self.write.staged.len());
        self.write.staged.extend_from_slice(&data[..n]);
        self.send_staged();
        Poll::Ready(Ok(n))
    }

    fn poll_flush_all(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_sent(cx))?;
            if self.write.staged.is_empty() {
                return Poll::Ready(Ok(()));
            }
            self.send_staged();
        }
    }

    fn poll_shutdown_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_flush_all(cx))?;
        Poll::Ready(crate::net::socket::shutdown(
            &self.socket,
            std::net::Shutdown::Write,
        ))
    }
}

#[cfg(feature = "tokio-compat")]
impl<S: Unpin> tokio::io::AsyncRead for Compat<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let this = self.get_mut();
        // Straight from the receive buffer into the caller's: no zeroing of `buf` first.
        let available = ready!(this.poll_fill(cx))?;
        let n = available.len().min(buf.remaining());
        buf.put_slice(&available[..n]);
        this.consume(n);
        Poll::Ready(Ok(()))
    }
}

/// The receive buffer is the read buffer: wrapping `Compat` in a `BufReader` would only add a
/// copy.
#[cfg(feature = "tokio-compat")]
impl<S: Unpin> tokio::io::AsyncBufRead for Compat<S> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        self.get_mut().poll_fill(cx)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.get_mut().consume(amt);
    }
}

#[cfg(feature = "tokio-compat")]
impl<S: Unpin> tokio::io::AsyncWrite for Compat<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_from(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_all(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_shutdown_write(cx)
    }
}

#[cfg(feature = "futures-io")]
impl<S: Unpin> futures_io::AsyncRead for Compat<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let this = self.get_mut();
        let available = ready!(this.poll_fill(cx))?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        this.consume(n);
        Poll::Ready(Ok(n))
    }
}

#[cfg(feature = "futures-io")]
impl<S: Unpin> futures_io::AsyncBufRead for Compat<S> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        self.get_mut().poll_fill(cx)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.get_mut().consume(amt);
    }
}

#[cfg(feature = "futures-io")]
impl<S: Unpin> futures_io::AsyncWrite for Compat<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_from(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_all(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_shutdown_write(cx)
    }
}

#[cfg(feature = "hyper")]
impl<S: Unpin> hyper::rt::Read for Compat<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let this = self.get_mut();
        let available = ready!(this.poll_fill(cx))?;
        let n = available.len().min(buf.remaining());
        buf.put_slice(&available[..n]);
        this.consume(n);
        Poll::Ready(Ok(()))
    }
}

#[cfg(feature = "hyper")]
impl<S: Unpin> hyper::rt::Write for Compat<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_from(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_all(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_shutdown_write(cx)
    }
}
