//! Pooled datagram receive: `UdpSocket::recv_from_pooled` and what it yields.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::pool::{BufferPool, Pooled, PooledMultishot};
use crate::driver::buf_ring::{PoolShared, PooledBuf};
use crate::driver::fd::SharedFd;
use crate::driver::op::recv_msg_multi::{DatagramParts, RecvMsgMulti, MULTISHOT_OVERHEAD};
use crate::driver::sockaddr::to_std;

/// One datagram received into a [`BufferPool`] buffer, with its sender; the buffer goes back
/// to the pool when this is dropped. Derefs to the payload.
pub struct PooledDatagram {
    /// `None` for an empty datagram that took no buffer.
    buf: Option<PooledBuf>,
    payload: Range<usize>,
    from: SocketAddr,
    truncated: bool,
}

impl PooledDatagram {
    /// The payload.
    pub fn as_slice(&self) -> &[u8] {
        match &self.buf {
            Some(buf) => &buf.as_slice()[self.payload.clone()],
            None => &[],
        }
    }

    /// Who sent it.
    pub fn peer_addr(&self) -> SocketAddr {
        self.from
    }

    /// Whether the datagram was longer than the buffer could hold and was cut (the rest is
    /// gone, as with `recv_from` into a short buffer). See
    /// [`UdpSocket::recv_from_pooled`](crate::net::UdpSocket::recv_from_pooled) for the room
    /// a buffer has.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl std::ops::Deref for PooledDatagram {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::fmt::Debug for PooledDatagram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledDatagram")
            .field("len", &self.payload.len())
            .field("from", &self.from)
            .field("truncated", &self.truncated)
            .finish()
    }
}

impl PooledMultishot for RecvMsgMulti {
    type Out = DatagramParts;
    // An error (a port unreachable, reported to a connected socket) is about one datagram.
    const ERROR_ENDS: bool = false;

    fn pool(&self) -> &Rc<PoolShared> {
        RecvMsgMulti::pool(self)
    }
}

/// Datagrams received on one socket into a [`BufferPool`], from one multishot `recvmsg`; see
/// [`UdpSocket::recv_from_pooled`](crate::net::UdpSocket::recv_from_pooled).
#[derive(Debug)]
pub struct RecvFromStream {
    inner: Pooled<RecvMsgMulti>,
}

impl RecvFromStream {
    pub(crate) fn new(fd: SharedFd, pool: &BufferPool) -> io::Result<RecvFromStream> {
        let shared = pool.shared();
        let driver = shared.driver_rc();
        if shared.buf_size() <= MULTISHOT_OVERHEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "pool buffers of {} bytes leave no room for a datagram after the \
                     {MULTISHOT_OVERHEAD}-byte header a multishot receive puts in front",
                    shared.buf_size()
                ),
            ));
        }
        let recv = RecvMsgMulti::new(fd, shared.clone(), driver.multishot());
        Ok(RecvFromStream {
            inner: Pooled::new(driver, recv),
        })
    }

    /// The next datagram. Never `None` but after the socket is gone: an error is about one
    /// datagram (the next call receives again).
    ///
    /// # Errors
    ///
    /// The socket's error, for example `ConnectionRefused` on a connected socket whose peer's
    /// port is closed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a datagram that arrives while nobody awaits waits in the stream.
    pub async fn next(&mut self) -> Option<io::Result<PooledDatagram>> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Polls for the next datagram. See [`next`](Self::next).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<PooledDatagram>>> {
        let parts = match std::task::ready!(self.inner.poll_next(cx)) {
            Some(Ok(parts)) => parts,
            Some(Err(e)) => return Poll::Ready(Some(Err(e))),
            None => return Poll::Ready(None),
        };
        let Some(from) = to_std(&parts.from) else {
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the kernel reported a sender that is not an IP address",
            ))));
        };
        Poll::Ready(Some(Ok(PooledDatagram {
            buf: parts.buf,
            payload: parts.payload,
            from,
            truncated: parts.truncated,
        })))
    }
}
