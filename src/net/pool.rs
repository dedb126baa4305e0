//! Pooled receive: a [`BufferPool`] the kernel fills, and the [`RecvStream`] of one socket.

use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::driver::buf_ring::PoolShared;
pub use crate::driver::buf_ring::PooledBuf;
use crate::driver::fd::SharedFd;
use crate::driver::op::multi::{MultiOp, Multishot};
use crate::driver::op::recv_multi::RecvMulti;
use crate::driver::Driver;
use crate::runtime::current_driver;

/// A pool of equal receive buffers registered with the ring (a provided-buffer ring).
///
/// Sockets receiving through [`TcpStream::recv_pooled`](crate::net::TcpStream::recv_pooled)
/// hold no buffer while idle: the kernel takes one from the pool only when data arrives, so
/// 10,000 idle connections cost no receive memory at all. If the pool runs dry, receiving
/// pauses (the data waits in the socket) and resumes when a [`PooledBuf`] is dropped. (On a
/// kernel without provided-buffer rings, before Linux 5.19, each waiting receive is lent a
/// buffer instead; see [`Builder::buf_rings`](crate::Builder::buf_rings).)
///
/// Size it for the connections *busy at once*, not for all of them. The kernel takes buffers
/// in ring order, so the ring holds only a warm set of them (about 512 KiB, at least 16
/// buffers) and the rest wait outside it, the most recently used first in line: receives keep
/// landing in memory that is still in the CPU cache. The warm set doubles whenever a receive
/// finds it empty while the pool has buffers to spare.
///
/// # Examples
///
/// ```no_run
/// use ringloop::net::{BufferPool, TcpStream};
///
/// ringloop::block_on(async {
///     let pool = BufferPool::new(256, 4096)?;
///     let stream = TcpStream::connect("127.0.0.1:7878").await?;
///     let mut rx = stream.recv_pooled(&pool);
///     while let Some(chunk) = rx.next().await {
///         println!("{} bytes", chunk?.len());
///     }
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct BufferPool {
    shared: Rc<PoolShared>,
}

impl BufferPool {
    /// `count` buffers (a power of two, at most 32,768) of `size` bytes each, registered with
    /// the current runtime's ring.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a bad count or size; the kernel's error if it refuses to register the
    /// ring (`ENOMEM` under a low `RLIMIT_MEMLOCK`, for one). A kernel without provided-buffer
    /// rings is no error: see [`Builder::buf_rings`](crate::Builder::buf_rings).
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn new(count: u16, size: usize) -> io::Result<BufferPool> {
        Ok(BufferPool {
            shared: PoolShared::new(current_driver(), count, size)?,
        })
    }

    /// Buffers currently free for the kernel to fill.
    pub fn available(&self) -> usize {
        usize::from(self.shared.available())
    }

    pub(crate) fn shared(&self) -> &Rc<PoolShared> {
        &self.shared
    }

    /// How many buffers the pool has.
    pub fn count(&self) -> usize {
        usize::from(self.shared.entries())
    }
}

/// Chunks received on one socket into a [`BufferPool`], from one multishot receive.
///
/// The receive stays armed in the ring: one SQE serves every chunk. When the kernel ends it
/// (the pool ran dry, the completion queue overflowed), it is re-armed — at once, or once a
/// buffer is back in the pool — so no data is lost and nothing spins.
#[derive(Debug)]
pub struct RecvStream {
    inner: Pooled<RecvMulti>,
}

impl RecvStream {
    pub(crate) fn new(fd: SharedFd, pool: &BufferPool) -> RecvStream {
        let driver = pool.shared.driver_rc();
        let recv = RecvMulti::new(fd, pool.shared.clone(), driver.multishot());
        RecvStream {
            inner: Pooled::new(driver, recv),
        }
    }

    /// The next chunk, `None` at end of stream.
    ///
    /// # Errors
    ///
    /// The socket's error (`ConnectionReset`, …); the stream ends after it.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a chunk that arrives while nobody awaits waits in the stream.
    pub async fn next(&mut self) -> Option<io::Result<PooledBuf>> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Polls for the next chunk. See [`next`](Self::next).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<PooledBuf>>> {
        self.inner.poll_next(cx)
    }
}

/// A multishot receive into a pool: what its CQEs become and the pool its re-arms wait on.
pub(crate) trait PooledMultishot: Multishot<Item = io::Result<Option<Self::Out>>> {
    /// What one receive hands the caller (`Ok(None)` is the end of the stream).
    type Out;
    /// Whether an error ends the stream (a byte stream's) or only that receive (datagrams').
    const ERROR_ENDS: bool;

    fn pool(&self) -> &Rc<PoolShared>;
}

impl PooledMultishot for RecvMulti {
    type Out = PooledBuf;
    const ERROR_ENDS: bool = true;

    fn pool(&self) -> &Rc<PoolShared> {
        RecvMulti::pool(self)
    }
}

/// The re-arm loop shared by the pooled receives: `ENOBUFS` and a request the kernel ended are
/// not the end of the stream, only a reason to arm again, once a buffer is free if need be.
pub(crate) struct Pooled<M: PooledMultishot> {
    op: MultiOp<M>,
    /// The pool ran dry: re-arm only once a buffer comes back.
    starved: bool,
    /// End of stream or an error that ends it: never re-arm.
    finished: bool,
}

impl<M: PooledMultishot> std::fmt::Debug for Pooled<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pooled")
            .field("op", &self.op)
            .field("starved", &self.starved)
            .field("finished", &self.finished)
            .finish()
    }
}

impl<M: PooledMultishot> Pooled<M> {
    pub(crate) fn new(driver: Rc<Driver>, recv: M) -> Pooled<M> {
        let mut pooled = Pooled {
            op: MultiOp::unarmed(driver, recv),
            starved: false,
            finished: false,
        };
        if pooled.may_arm() {
            pooled.op.rearm();
        }
        pooled
    }

    /// Whether the receive may be armed now: with a buffer free, or into a ring that did not
    /// run dry on its last arm (the kernel picks when data comes; a pool that lends needs one
    /// free at the arm).
    fn may_arm(&self) -> bool {
        let pool = self.op.data().pool();
        pool.available() > 0 || (pool.kernel_picks() && !self.starved)
    }

    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<M::Out>>> {
        loop {
            if self.finished {
                return Poll::Ready(None);
            }
            match std::task::ready!(self.op.poll_next(cx)) {
                Some(Ok(Some(item))) => return Poll::Ready(Some(Ok(item))),
                Some(Ok(None)) => {
                    self.finished = true;
                    return Poll::Ready(None);
                }
                Some(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    // Starved only if the pool has no buffer to move into the ring.
                    self.starved = !self.op.data().pool().grow();
                    #[cfg(feature = "tracing")]
                    tracing::debug!(
                        starved = self.starved,
                        "the receive pool ran out of buffers: the receive is re-armed"
                    );
                }
                Some(Err(e)) => {
                    self.finished = M::ERROR_ENDS;
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    if !self.may_arm() {
                        self.op.data().pool().wait_for_buffer(cx.waker());
                        return Poll::Pending;
                    }
                    self.starved = false;
                    self.op.rearm();
                }
            }
        }
    }
}
