//! `UdpSocket`: bind and connect through `nix`; datagrams sent and received through the ring
//! (`IORING_OP_SENDMSG` / `IORING_OP_RECVMSG` with an address, `SEND` / `RECV` without).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::sys::socket::{sockopt, IpMembershipRequest, SockaddrStorage};

use crate::buf::{IoBuf, IoBufMut};
use crate::driver::sockaddr::{to_std, SockAddrBuf};
use crate::net::ring_socket::RingSocket;
use crate::net::socket;

/// A UDP socket.
///
/// Datagrams are sent from and received into owned buffers, passed by value and handed back
/// with the result: `let (res, buf) = socket.recv_from(buf).await;`. A socket can be shared by
/// reference between the tasks of its runtime; one datagram is one operation, so concurrent
/// sends and receives never interleave within a datagram.
///
/// # Examples
///
/// ```no_run
/// use ringloop::net::UdpSocket;
///
/// ringloop::block_on(async {
///     let socket = UdpSocket::bind("127.0.0.1:0")?;
///     let (res, _) = socket.send_to(b"ping".to_vec(), "127.0.0.1:7878").await;
///     res?;
///     let (res, buf) = socket.recv_from(Vec::with_capacity(1500)).await;
///     let (n, from) = res?;
///     println!("{n} bytes from {from}: {:?}", &buf[..n]);
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UdpSocket {
    sock: RingSocket,
}

impl UdpSocket {
    /// Creates a socket bound to `addr` (port 0: the system picks one).
    ///
    /// Tries each address `addr` resolves to and returns the first that binds. The socket is
    /// blocking (io_uring waits for it) and close-on-exec.
    ///
    /// # Errors
    ///
    /// Those of `socket(2)` and `bind(2)` (`AddrInUse`, `AddrNotAvailable`, `PermissionDenied`),
    /// or `InvalidInput` if `addr` resolves to nothing.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let mut last = None;
        for addr in socket::resolve(addr)? {
            let bound = socket::udp_socket(&addr).and_then(|fd| {
                socket::bind(&fd, &addr)?;
                Ok(fd)
            });
            match bound {
                Ok(fd) => return Ok(Self::from_fd(fd)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    fn from_fd(fd: OwnedFd) -> UdpSocket {
        UdpSocket {
            sock: RingSocket::new(fd),
        }
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
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(false)?;
        Ok(Self::from_fd(OwnedFd::from(socket)))
    }

    /// Sets the default destination for [`send`](Self::send), and receives only from it from
    /// now on (`connect(2)`: no packet leaves, so this does not wait).
    ///
    /// Tries each address `addr` resolves to and keeps the first that is accepted.
    ///
    /// # Errors
    ///
    /// That of `connect(2)` (`NetworkUnreachable`, an address of the other family), or
    /// `InvalidInput` if `addr` resolves to nothing.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let mut last = None;
        for addr in socket::resolve(addr)? {
            let storage = SockaddrStorage::from(addr);
            match nix::sys::socket::connect(self.as_raw_fd(), &storage) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e.into()),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    /// Sends `buf`'s initialised bytes as one datagram to `addr` (the first address it
    /// resolves to); returns how many bytes were sent.
    ///
    /// Host names are resolved with the system resolver on this thread, which blocks: pass a
    /// `SocketAddr` ([`lookup_host`](crate::net::lookup_host) resolves off the thread).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `addr` resolves to nothing; `sendmsg(2)`'s errors: a datagram larger
    /// than the protocol allows (about 64 KiB) is refused whole with `EMSGSIZE`.
    ///
    /// # Cancel safety
    ///
    /// If dropped, the send is cancelled unless it already happened; a datagram goes out whole
    /// or not at all, but which of the two is unknown. The buffer is freed once the kernel
    /// lets go of it.
    pub async fn send_to<B: IoBuf>(
        &self,
        buf: B,
        addr: impl ToSocketAddrs,
    ) -> (io::Result<usize>, B) {
        // `to_socket_addrs` of a `SocketAddr` allocates nothing; `socket::resolve` would.
        let addr = match addr.to_socket_addrs().map(|mut addrs| addrs.next()) {
            Ok(Some(addr)) => addr,
            Ok(None) => {
                let e = io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the address resolved to nothing",
                );
                return (Err(e), buf);
            }
            Err(e) => return (Err(e), buf),
        };
        self.sock.send_to(buf, SockAddrBuf::from_std(addr)).await
    }

    /// Receives one datagram into `buf` (up to its `bytes_total`, from its start); returns its
    /// length and its sender.
    ///
    /// A datagram longer than `bytes_total` is truncated: the call returns `bytes_total`, and
    /// the rest of that datagram is discarded (as `recvfrom(2)` does). Receive into a buffer
    /// of 65,507 bytes to never lose any. An empty datagram is `Ok((0, sender))`.
    ///
    /// # Errors
    ///
    /// `recvmsg(2)`'s errors; on a connected socket, `ConnectionRefused` after an earlier
    /// datagram met a closed port.
    ///
    /// # Cancel safety
    ///
    /// If dropped, the receive is cancelled; a datagram it had already taken is lost. The
    /// buffer is freed once the kernel lets go of it.
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> (io::Result<(usize, SocketAddr)>, B) {
        let (res, buf) = self.sock.recv_from(buf).await;
        let res = res.and_then(|(n, from)| match to_std(&from) {
            Some(from) => Ok((n, from)),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the kernel reported a sender that is not an IP address",
            )),
        });
        (res, buf)
    }

    /// Receives datagrams into `pool`'s buffers through one multishot `recvmsg` kept armed
    /// in the ring: no buffer is held while no datagram waits, and no request is submitted per
    /// datagram. Each yields the payload and the sender (a
    /// [`PooledDatagram`](crate::net::PooledDatagram)); dropping it returns the buffer.
    ///
    /// Each buffer holds a 44-byte header in front of the payload (the kernel's
    /// `io_uring_recvmsg_out` and the sender's address), so a datagram longer than the
    /// buffers less 44 bytes arrives cut ([`is_truncated`](crate::net::PooledDatagram::is_truncated)).
    /// Size the pool for the datagrams waiting at once; when it runs dry, receiving pauses
    /// (datagrams wait in the socket's buffer, or are dropped when it fills, as UDP does).
    ///
    /// One stream per socket: two would share out the datagrams between them.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the pool's buffers are 44 bytes or smaller.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::net::{BufferPool, UdpSocket};
    ///
    /// ringloop::block_on(async {
    ///     let server = UdpSocket::bind("127.0.0.1:0")?;
    ///     let client = UdpSocket::bind("127.0.0.1:0")?;
    ///     let pool = BufferPool::new(64, 2048)?;
    ///     let mut datagrams = server.recv_from_pooled(&pool)?;
    ///     let (res, _) = client.send_to(b"ping".to_vec(), server.local_addr()?).await;
    ///     res?;
    ///     let datagram = datagrams.next().await.unwrap()?;
    ///     assert_eq!(&datagram[..], b"ping");
    ///     assert_eq!(datagram.peer_addr(), client.local_addr()?);
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn recv_from_pooled(
        &self,
        pool: &crate::net::BufferPool,
    ) -> io::Result<crate::net::RecvFromStream> {
        crate::net::RecvFromStream::new(self.sock.shared_fd().clone(), pool)
    }

    /// A queue of datagrams sent to their addresses in the background: `send_to` on it waits
    /// only while `depth` sends (at least 1) are in flight, and no task is woken per datagram.
    /// See [`SendToQueue`](crate::net::SendToQueue).
    pub fn send_queue<B: IoBuf>(&self, depth: usize) -> crate::net::SendToQueue<B> {
        self.sock.send_to_queue(depth)
    }

    /// Sends `buf`'s initialised bytes as one datagram to the connected peer.
    ///
    /// # Errors
    ///
    /// `EDESTADDRREQ` if the socket is not [connected](Self::connect); `ConnectionRefused`
    /// after an earlier datagram met a closed port; as [`send_to`](Self::send_to).
    ///
    /// # Cancel safety
    ///
    /// As [`send_to`](Self::send_to).
    pub async fn send<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        self.sock.send(buf).await
    }

    /// Receives one datagram from the connected peer into `buf`; truncated as in
    /// [`recv_from`](Self::recv_from).
    ///
    /// # Errors
    ///
    /// As [`recv_from`](Self::recv_from).
    ///
    /// # Cancel safety
    ///
    /// As [`recv_from`](Self::recv_from).
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        self.sock.recv(buf).await
    }

    /// Receives the next datagram from the connected peer like [`recv`](Self::recv), but
    /// leaves it queued: the next `recv` or `peek` returns it again. A datagram longer than
    /// `buf` is truncated in `buf` only.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a peek takes nothing from the socket.
    pub async fn peek<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        self.sock.peek(buf).await
    }

    /// The address the socket is bound to (with the port the system chose for port 0).
    ///
    /// # Errors
    ///
    /// That of `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket::local_addr(&self.sock)
    }

    /// The address the socket is connected to.
    ///
    /// # Errors
    ///
    /// `NotConnected` if it is not [connected](Self::connect).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        socket::peer_addr(&self.sock)
    }

    /// Sets `IP_TTL`, the time-to-live of outgoing datagrams.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        socket::set_ttl(&self.sock, ttl)
    }

    /// `IP_TTL`, the time-to-live of outgoing datagrams.
    pub fn ttl(&self) -> io::Result<u32> {
        socket::ttl(&self.sock)
    }

    /// Sets `SO_BROADCAST`: whether datagrams may go to a broadcast address.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        socket::set_broadcast(&self.sock, on)
    }

    /// `SO_BROADCAST`: see [`set_broadcast`](Self::set_broadcast).
    pub fn broadcast(&self) -> io::Result<bool> {
        socket::broadcast(&self.sock)
    }

    /// Joins the IPv4 multicast group `multiaddr` on the interface whose address is
    /// `interface` (`Ipv4Addr::UNSPECIFIED`: the one the kernel routes the group through), so
    /// datagrams sent to the group arrive on this socket (bound to the group's port).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an address that is not multicast; the kernel's (`ENODEV` for an
    /// address no interface has, `EADDRINUSE` for a group already joined).
    pub fn join_multicast_v4(&self, multiaddr: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        let request = IpMembershipRequest::new(multiaddr, Some(interface));
        Ok(nix::sys::socket::setsockopt(
            &self.sock,
            sockopt::IpAddMembership,
            &request,
        )?)
    }

    /// Leaves a group joined with [`join_multicast_v4`](Self::join_multicast_v4).
    pub fn leave_multicast_v4(&self, multiaddr: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        let request = IpMembershipRequest::new(multiaddr, Some(interface));
        Ok(nix::sys::socket::setsockopt(
            &self.sock,
            sockopt::IpDropMembership,
            &request,
        )?)
    }

    /// `IP_MULTICAST_LOOP`: whether this host's own members of a group get the datagrams this
    /// socket sends to it (on by default).
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        Ok(nix::sys::socket::setsockopt(
            &self.sock,
            sockopt::IpMulticastLoop,
            &on,
        )?)
    }

    /// `IP_MULTICAST_LOOP`: see [`set_multicast_loop_v4`](Self::set_multicast_loop_v4).
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        Ok(nix::sys::socket::getsockopt(
            &self.sock,
            sockopt::IpMulticastLoop,
        )?)
    }

    /// `IP_MULTICAST_TTL`: how many hops datagrams sent to a group may travel (1 by default:
    /// this network only).
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        let ttl = u8::try_from(ttl)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "multicast TTL above 255"))?;
        Ok(nix::sys::socket::setsockopt(
            &self.sock,
            sockopt::IpMulticastTtl,
            &ttl,
        )?)
    }

    /// `IP_MULTICAST_TTL`: see [`set_multicast_ttl_v4`](Self::set_multicast_ttl_v4).
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        Ok(u32::from(nix::sys::socket::getsockopt(
            &self.sock,
            sockopt::IpMulticastTtl,
        )?))
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

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}
