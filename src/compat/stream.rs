//! `Compat`: a ringloop stream behind the poll-based I/O traits of tokio (`tokio-compat`),
//! futures (`futures-io`) and hyper (`hyper`).
//!
//! The kernel needs memory it owns for the length of an operation, and the poll traits lend
//! memory only for one call. So `Compat` receives into memory it owns and copies once each
//! way:
//!
//! - reads: with [`Compat::new`], one receive into its own buffer, kept in flight across
//!   polls; with [`Compat::with_pool`], a multishot receive into a shared
//!   [`BufferPool`], which holds no buffer while the connection is
//!   idle and re-arms nothing per message. Either way the bytes are copied out over as many
//!   `poll_read`s as it takes, and nothing is lost when the caller gives up on a read: the
//!   receive stays with `Compat`, and its bytes go to the next `poll_read`. The received
//!   buffer doubles as the `AsyncBufRead` buffer, so lines and frames need no `BufReader`
//!   (and no second copy) on top.
//! - writes: `poll_write` copies into an owned buffer queued on a [`SendQueue`], and returns
//!   at once. The queue sends its buffers in order, continuing short sends and starting the
//!   next from the reactor as each completes, so bytes accepted go out with no further poll
//!   (a `write_all` then a `read` of the answer needs no flush). Small writes made while a send
//!   is in flight are coalesced into the buffer queued behind it (up to the write capacity;
//!   then `poll_write` waits). `poll_flush` waits until the kernel has taken every byte, and
//!   reports a send's error if the peer broke the connection meanwhile. **Flush (or shut down)
//!   before dropping**: dropping cancels what is still queued, as dropping a `BufWriter` does.
//!
//! # Invariants
//!
//! - (W1) Bytes leave in the order `poll_write` accepted them: the queue sends one buffer at a
//!   time, front first, and only its newest buffer, never the one in flight, takes more bytes.
//! - (W2) An accepted byte is sent or its loss reported: the queue's first error is returned
//!   by every later `poll_write`, `poll_flush` and `poll_shutdown`.
//! - (R1) At most one receive is in flight (single-shot, or the pool's multishot), and it is
//!   never dropped while `Compat` lives.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use crate::driver::op::recv::Recv;
use crate::driver::op::Op;
use crate::net::ring_socket::RingSocket;
use crate::net::{BufferPool, PooledBuf, RecvStream, SendQueue, TcpStream, UnixStream};

/// Bytes received at most per receive, by default.
const READ_CAPACITY: usize = 16 * 1024;
/// Bytes per queued send buffer at most, by default.
const WRITE_CAPACITY: usize = 64 * 1024;
/// Buffers queued at most: the one in flight and the one filling behind it.
const WRITE_DEPTH: usize = 2;

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
enum ReadSide {
    /// One receive at a time into a buffer of Compat's own.
    Owned {
        /// The receive in flight (R1).
        op: Option<Op<Recv<Vec<u8>>>>,
        /// Received bytes; those before `pos` were copied out.
        buf: Vec<u8>,
        pos: usize,
        capacity: usize,
    },
    /// A multishot receive into a shared pool: nothing held while idle, nothing re-armed
    /// per message.
    Pooled {
        stream: RecvStream,
        /// The chunk being read; bytes before `pos` were copied out.
        chunk: Option<PooledBuf>,
        pos: usize,
    },
}

#[derive(Debug)]
struct WriteSide {
    queue: SendQueue<Vec<u8>>,
    /// Bytes per queued buffer at most.
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
    /// Wraps `stream` with a 16 KiB receive buffer of its own and up to 64 KiB queued for
    /// sending.
    ///
    /// Each read re-arms a single-shot receive, and an idle connection keeps its buffer and
    /// one armed receive. A server with many connections does better with
    /// [`with_pool`](Self::with_pool): with hyper on this machine, 4–5 % less system CPU per
    /// request (BENCHMARKS.md).
    pub fn new(stream: S) -> Compat<S> {
        Compat::with_capacity(stream, READ_CAPACITY, WRITE_CAPACITY)
    }

    /// Wraps `stream`, receiving up to `read` bytes at a time and queueing up to `write` bytes
    /// behind the send in flight (each at least 1).
    pub fn with_capacity(stream: S, read: usize, write: usize) -> Compat<S> {
        Compat::assemble(stream, write, |_| ReadSide::Owned {
            op: None,
            buf: Vec::new(),
            pos: 0,
            capacity: read.max(1),
        })
    }

    /// Wraps `stream`, receiving through `pool`: one multishot receive stays armed and takes
    /// a pooled buffer only when bytes arrive, so an idle connection holds no buffer and a
    /// busy one re-arms nothing per message (see [`BufferPool`]). Chunks are copied out as
    /// from [`new`](Self::new)'s buffer and go back to the pool once read.
    ///
    /// ```
    /// use ringloop::compat::Compat;
    /// use ringloop::net::{BufferPool, UnixStream};
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// ringloop::block_on(async {
    ///     let pool = BufferPool::new(64, 4096)?; // shared by every connection
    ///     let (a, b) = UnixStream::pair()?;
    ///     let mut a = Compat::new(a);
    ///     let mut b = Compat::with_pool(b, &pool);
    ///     a.write_all(b"pooled").await?;
    ///     a.flush().await?;
    ///     let mut got = [0u8; 6];
    ///     b.read_exact(&mut got).await?;
    ///     assert_eq!(&got, b"pooled");
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn with_pool(stream: S, pool: &BufferPool) -> Compat<S> {
        Compat::assemble(stream, WRITE_CAPACITY, |socket| ReadSide::Pooled {
            stream: socket.recv_pooled(pool),
            chunk: None,
            pos: 0,
        })
    }

    /// `stream`'s socket, once, with the read side `read` makes on it and a send queue.
    fn assemble(stream: S, write: usize, read: impl FnOnce(&RingSocket) -> ReadSide) -> Compat<S> {
        let sealed::Socket(socket) = stream.socket();
        let read = read(&socket);
        let queue = socket.send_queue(WRITE_DEPTH);
        Compat {
            stream,
            socket,
            read,
            write: WriteSide {
                queue,
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
    /// queued but not yet sent (flush first).
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// The received bytes not yet consumed, receiving first if none are left. Empty: the
    /// peer closed its writing side.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        match &mut self.read {
            ReadSide::Owned {
                op,
                buf,
                pos,
                capacity,
            } => {
                while *pos == buf.len() {
                    let in_flight = match op {
                        Some(op) => op,
                        None => {
                            let mut next = std::mem::take(buf);
                            next.clear();
                            next.reserve_exact(*capacity);
                            *pos = 0;
                            op.insert(self.socket.recv_op(next))
                        }
                    };
                    let (res, received) = ready!(Pin::new(in_flight).poll(cx));
                    *op = None;
                    *buf = received;
                    *pos = 0;
                    if res? == 0 {
                        break;
                    }
                }
                Poll::Ready(Ok(&buf[*pos..]))
            }
            ReadSide::Pooled { stream, chunk, pos } => {
                while chunk.as_ref().is_none_or(|c| *pos == c.len()) {
                    // The chunk read to its end goes back to the pool before the next is taken.
                    *chunk = None;
                    *pos = 0;
                    match ready!(stream.poll_next(cx)) {
                        Some(Ok(next)) => *chunk = Some(next),
                        Some(Err(e)) => return Poll::Ready(Err(e)),
                        // The peer closed its writing side.
                        None => return Poll::Ready(Ok(&[])),
                    }
                }
                let chunk = chunk.as_ref().expect("filled just above");
                Poll::Ready(Ok(&chunk[*pos..]))
            }
        }
    }

    /// Hands up to `room` received bytes to `put` (receiving first if none are left) and
    /// returns how many: the body of every trait's `poll_read`. `Ok(0)` with room: end of
    /// stream.
    fn poll_copy_out(
        &mut self,
        cx: &mut Context<'_>,
        room: usize,
        put: impl FnOnce(&[u8]),
    ) -> Poll<io::Result<usize>> {
        if room == 0 {
            return Poll::Ready(Ok(0));
        }
        let available = ready!(self.poll_fill(cx))?;
        let n = available.len().min(room);
        put(&available[..n]);
        self.consume(n);
        Poll::Ready(Ok(n))
    }

    /// Marks `n` bytes of those [`poll_fill`](Self::poll_fill) returned as read.
    fn consume(&mut self, n: usize) {
        match &mut self.read {
            ReadSide::Owned { buf, pos, .. } => *pos = (*pos + n).min(buf.len()),
            ReadSide::Pooled { chunk, pos, .. } => {
                *pos = (*pos + n).min(chunk.as_ref().map_or(0, |c| c.len()));
            }
        }
    }

    fn poll_write_from(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let capacity = self.write.capacity;
        self.write.queue.poll_write_copy(cx, data, capacity)
    }

    fn poll_flush_all(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.write.queue.poll_flush(cx)
    }

    fn poll_shutdown_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_flush_all(cx))?;
        Poll::Ready(crate::net::socket::shutdown_write(&self.socket))
    }
}

#[cfg(feature = "tokio-compat")]
impl<S: Unpin> tokio::io::AsyncRead for Compat<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // Straight from the receive buffer into the caller's: no zeroing of `buf` first.
        let room = buf.remaining();
        ready!(self
            .get_mut()
            .poll_copy_out(cx, room, |bytes| buf.put_slice(bytes)))?;
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
        let room = buf.len();
        self.get_mut()
            .poll_copy_out(cx, room, |bytes| buf[..bytes.len()].copy_from_slice(bytes))
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
        let room = buf.remaining();
        ready!(self
            .get_mut()
            .poll_copy_out(cx, room, |bytes| buf.put_slice(bytes)))?;
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
