//! Multishot `IORING_OP_RECVMSG` with buffer select: datagrams and their senders' addresses
//! into a pool's buffers, one armed request for every datagram.
//!
//! With multishot the kernel lays out each buffer as an `io_uring_recvmsg_out` header, the
//! sender's address in a field of `msg_namelen` bytes, then the payload; the header says how
//! long each really was. The fallbacks arm one single-shot receive at a time (with buffer
//! select from the ring if multishot is off, into a buffer lent by the pool if the pool is not
//! a ring): the payload then starts the buffer and the address lands in this op's own
//! `msghdr`, which nothing else uses until the CQE.
//!
//! Every CQE that carries a buffer id gives the buffer to someone, as in `recv_multi.rs`.

use std::io;
use std::mem::size_of;
use std::net::SocketAddr;
use std::ops::Range;
use std::rc::Rc;

use io_uring::types::RecvMsgOut;
use io_uring::{cqueue, opcode, squeue};

use crate::driver::buf_ring::{PoolShared, PooledBuf};
use crate::driver::fd::SharedFd;
use crate::driver::op::multi::Multishot;
use crate::driver::op::recv_from::MsgHeader;
use crate::driver::op::Completion;
use crate::driver::sockaddr::{to_std, SockAddrBuf};

/// The address field reserved in front of each multishot payload: a UDP socket's senders are
/// IPv4 or IPv6 addresses, and `sockaddr_in6` is the larger.
const NAME_LEN: usize = size_of::<libc::sockaddr_in6>();

/// `struct io_uring_recvmsg_out`: namelen, controllen, payloadlen and flags, a `u32` each.
const RECVMSG_OUT_LEN: usize = 4 * size_of::<u32>();

/// What the kernel puts in front of a multishot payload: its header and the address field.
pub(crate) const MULTISHOT_OVERHEAD: usize = RECVMSG_OUT_LEN + NAME_LEN;

/// One datagram received into a [`BufferPool`](crate::net::BufferPool) buffer, with its
/// sender; the buffer goes back to the pool when this is dropped. Derefs to the payload, and
/// is an [`IoBuf`](crate::IoBuf) of it: it can be sent on as it is (an echo, a relay), with no
/// copy.
pub struct PooledDatagram {
    /// `None` for an empty datagram received single-shot, for which the kernel selects no
    /// buffer.
    buf: Option<PooledBuf>,
    /// (U1) Within `buf`'s bytes (`0..0` without a buffer).
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

// SAFETY: (B1, P1, U1) the payload lies in the pool buffer this value owns (kept alive by the
// pool's `Rc` in `PooledBuf`, never written by the kernel while held, never moved); without a
// buffer the payload is empty and the pointer, never read, is a dangling non-null one.
unsafe impl crate::buf::IoBuf for PooledDatagram {
    fn stable_ptr(&self) -> *const u8 {
        match &self.buf {
            Some(buf) => buf.as_slice()[self.payload.clone()].as_ptr(),
            None => std::ptr::NonNull::<u8>::dangling().as_ptr(),
        }
    }
    fn bytes_init(&self) -> usize {
        self.payload.len()
    }
    fn bytes_total(&self) -> usize {
        self.payload.len()
    }
}

pub(crate) struct RecvMsgMulti {
    fd: SharedFd,
    pool: Rc<PoolShared>,
    multishot: bool,
    /// (P1) the buffer lent to the armed receive, until its CQE.
    lent: Option<u16>,
    /// The `msghdr` the kernel reads (the field sizes, for multishot) or writes (the address,
    /// single-shot).
    header: Box<MsgHeader>,
}

impl RecvMsgMulti {
    pub(crate) fn new(fd: SharedFd, pool: Rc<PoolShared>, multishot: bool) -> Self {
        let header = MsgHeader::boxed();
        RecvMsgMulti {
            fd,
            pool,
            multishot,
            lent: None,
            header,
        }
    }

    pub(crate) fn pool(&self) -> &Rc<PoolShared> {
        &self.pool
    }

    /// Whether the armed request is the multishot kind, whose buffers carry a header.
    fn is_multishot(&self) -> bool {
        self.multishot && self.pool.kernel_picks()
    }

    #[inline]
    fn buffer(&mut self, completion: Completion) -> Option<u16> {
        match cqueue::buffer_select(completion.flags) {
            Some(bid) => Some(bid),
            None => self.lent.take(),
        }
    }

    /// A multishot CQE's buffer of `n` bytes, parsed.
    fn parse_multishot(&self, buf: PooledBuf, n: usize) -> io::Result<PooledDatagram> {
        let bytes = &buf.as_slice()[..n.min(buf.len())];
        let Ok(out) = RecvMsgOut::parse(bytes, &self.header.msg) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a multishot receive's buffer is shorter than its header",
            ));
        };
        let start = out.payload_data().as_ptr() as usize - bytes.as_ptr() as usize;
        let payload = start..start + out.payload_data().len();
        let from = sender(&SockAddrBuf::from_bytes(out.name_data()))?;
        let truncated = out.is_payload_truncated();
        Ok(PooledDatagram {
            buf: Some(buf),
            payload,
            from,
            truncated,
        })
    }
}

/// One receive: a datagram, or an error (`ENOBUFS` when the pool ran dry). Never `Ok(None)`:
/// datagrams have no end of stream.
pub(crate) type Received = io::Result<Option<PooledDatagram>>;

/// The sender the kernel reported, as an IP address.
fn sender(addr: &SockAddrBuf) -> io::Result<SocketAddr> {
    to_std(addr).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the kernel reported a sender that is not an IP address",
        )
    })
}

// SAFETY: the kernel writes only into the pool's buffers, whose allocation the `Rc` in `self`
// keeps alive (P2) — one from the ring, or the one lent to this receive, which (P1) nobody else
// touches until its CQE — and into `header`, boxed and owned by `self` until the last CQE.
unsafe impl Multishot for RecvMsgMulti {
    type Item = Received;

    /// # Panics
    ///
    /// If the pool is not a ring and has no buffer free: the owner arms only when one is.
    fn sqe(&mut self) -> squeue::Entry {
        let fd = self.fd.as_types_fd();
        let multishot = self.is_multishot();
        let header = &mut *self.header;
        header.msg.msg_control = std::ptr::null_mut();
        header.msg.msg_controllen = 0;
        header.msg.msg_flags = 0;
        if multishot {
            // Only the field sizes are read: the kernel writes the address into each buffer.
            header.msg.msg_name = std::ptr::null_mut();
            header.msg.msg_namelen = NAME_LEN as libc::socklen_t;
            header.msg.msg_iov = std::ptr::null_mut();
            header.msg.msg_iovlen = 0;
            return opcode::RecvMsgMulti::new(fd, &header.msg, self.pool.group()).build();
        }
        let base = if self.pool.kernel_picks() {
            std::ptr::null_mut()
        } else {
            debug_assert!(self.lent.is_none(), "armed twice");
            let (bid, buf) = self.pool.lend().expect("armed only with a buffer free");
            self.lent = Some(bid);
            buf
        };
        let msg = header.point_for_recv(base, self.pool.buf_size());
        // MSG_TRUNC: the result is the datagram's real length, so a cut is visible.
        let recv = opcode::RecvMsg::new(fd, msg).flags(libc::MSG_TRUNC as u32);
        if !self.pool.kernel_picks() {
            return recv.build();
        }
        recv.buf_group(self.pool.group())
            .build()
            .flags(squeue::Flags::BUFFER_SELECT)
    }

    fn item(&mut self, completion: Completion) -> Received {
        let buffer = self.buffer(completion);
        let (n, bid) = match (completion.result, buffer) {
            (n, Some(bid)) if n >= 0 => (n as usize, bid),
            // An empty datagram, single-shot: the kernel took no buffer for it.
            (0, None) if !self.is_multishot() => {
                return Ok(Some(PooledDatagram {
                    buf: None,
                    payload: 0..0,
                    from: sender(&self.header.addr)?,
                    truncated: false,
                }))
            }
            (n, bid) => {
                if let Some(bid) = bid {
                    self.pool.recycle(bid);
                }
                return Err(io::Error::from_raw_os_error(if n < 0 {
                    -n
                } else {
                    libc::EIO
                }));
            }
        };
        let size = self.pool.buf_size();
        let buf = self.pool.take(bid, n.min(size));
        if self.is_multishot() {
            return self.parse_multishot(buf, n).map(Some);
        }
        Ok(Some(PooledDatagram {
            buf: Some(buf),
            payload: 0..n.min(size),
            from: sender(&self.header.addr)?,
            truncated: n > size,
        }))
    }

    fn release(&mut self, completion: Completion) {
        if let Some(bid) = self.buffer(completion) {
            self.pool.recycle(bid);
        }
    }
}
