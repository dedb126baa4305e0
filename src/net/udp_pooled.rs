//! Pooled datagram receive: `UdpSocket::recv_from_pooled` and what it yields.

use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::pool::{BufferPool, Pooled, PooledMultishot};
use crate::driver::buf_ring::PoolShared;
use crate::driver::fd::SharedFd;
pub use crate::driver::op::recv_msg_multi::PooledDatagram;
use crate::driver::op::recv_msg_multi::{RecvMsgMulti, MULTISHOT_OVERHEAD};

impl PooledMultishot for RecvMsgMulti {
    type Out = PooledDatagram;
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
        self.inner.poll_next(cx)
    }
}
