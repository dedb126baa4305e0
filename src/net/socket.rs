//! Socket setup through `nix`: creation, options, bind, listen, addresses.
//!
//! Sockets are created *blocking* on purpose: io_uring answers an operation on an
//! `O_NONBLOCK` socket with `EAGAIN` instead of waiting for readiness itself.

use std::io;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{
    self, sockopt, AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage,
};

/// Options for [`TcpListener::bind_with`](crate::net::TcpListener::bind_with).
///
/// # Examples
///
/// ```no_run
/// use ringloop::net::{ListenOptions, TcpListener};
///
/// ringloop::block_on(async {
///     let opts = ListenOptions::new().reuse_port(true).backlog(4096);
///     let listener = TcpListener::bind_with("127.0.0.1:7878", &opts)?;
///     # let _ = listener;
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ListenOptions {
    pub(crate) reuse_addr: bool,
    pub(crate) reuse_port: bool,
    pub(crate) backlog: u32,
    pub(crate) only_v6: Option<bool>,
}

impl Default for ListenOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ListenOptions {
    /// `SO_REUSEADDR` on, `SO_REUSEPORT` off, backlog 1024, `IPV6_V6ONLY` left to the system.
    pub fn new() -> ListenOptions {
        ListenOptions {
            reuse_addr: true,
            reuse_port: false,
            backlog: 1024,
            only_v6: None,
        }
    }

    /// `SO_REUSEADDR`: rebind right after a restart despite connections in `TIME_WAIT`.
    pub fn reuse_addr(mut self, on: bool) -> Self {
        self.reuse_addr = on;
        self
    }

    /// `SO_REUSEPORT`: several listeners (one per shard) on one port; the kernel spreads
    /// connections between them.
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }

    /// The `listen(2)` backlog (capped by `net.core.somaxconn`).
    pub fn backlog(mut self, backlog: u32) -> Self {
        self.backlog = backlog;
        self
    }

    /// `IPV6_V6ONLY` for an IPv6 address: `true` to refuse IPv4-mapped connections.
    pub fn only_v6(mut self, on: bool) -> Self {
        self.only_v6 = Some(on);
        self
    }
}

fn family(addr: &SocketAddr) -> AddressFamily {
    match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// A new blocking, close-on-exec socket.
pub(crate) fn new_socket(family: AddressFamily, ty: SockType) -> io::Result<OwnedFd> {
    Ok(socket::socket(family, ty, SockFlag::SOCK_CLOEXEC, None)?)
}

/// A TCP socket of the right family for `addr`.
pub(crate) fn tcp_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    new_socket(family(addr), SockType::Stream)
}

/// A UDP socket of the right family for `addr`.
pub(crate) fn udp_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    new_socket(family(addr), SockType::Datagram)
}

/// Applies `opts`, binds and listens.
pub(crate) fn listen_on(fd: &OwnedFd, addr: &SocketAddr, opts: &ListenOptions) -> io::Result<()> {
    if opts.reuse_addr {
        socket::setsockopt(fd, sockopt::ReuseAddr, &true)?;
    }
    if opts.reuse_port {
        socket::setsockopt(fd, sockopt::ReusePort, &true)?;
    }
    if let (Some(only), SocketAddr::V6(_)) = (opts.only_v6, addr) {
        socket::setsockopt(fd, sockopt::Ipv6V6Only, &only)?;
    }
    bind(fd, addr)?;
    listen(fd, opts.backlog)
}

/// `listen(2)`. A backlog beyond `SOMAXCONN` (which `nix` refuses) becomes -1, which Linux
/// caps at `net.core.somaxconn`, as it caps any backlog: the documented behaviour.
pub(crate) fn listen(fd: &OwnedFd, backlog: u32) -> io::Result<()> {
    let backlog = i32::try_from(backlog)
        .ok()
        .and_then(|b| Backlog::new(b).ok())
        .unwrap_or(Backlog::MAXALLOWABLE);
    Ok(socket::listen(fd, backlog)?)
}

pub(crate) fn bind(fd: &OwnedFd, addr: &SocketAddr) -> io::Result<()> {
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(*addr))?;
    Ok(())
}

fn to_std(storage: SockaddrStorage) -> io::Result<SocketAddr> {
    if let Some(v4) = storage.as_sockaddr_in() {
        return Ok(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    if let Some(v6) = storage.as_sockaddr_in6() {
        return Ok(SocketAddr::V6(SocketAddrV6::from(*v6)));
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "not an IP socket address",
    ))
}

pub(crate) fn local_addr(fd: &impl AsRawFd) -> io::Result<SocketAddr> {
    to_std(socket::getsockname::<SockaddrStorage>(fd.as_raw_fd())?)
}

pub(crate) fn peer_addr(fd: &impl AsRawFd) -> io::Result<SocketAddr> {
    to_std(socket::getpeername::<SockaddrStorage>(fd.as_raw_fd())?)
}

pub(crate) fn shutdown(fd: &impl AsRawFd, how: std::net::Shutdown) -> io::Result<()> {
    let how = match how {
        std::net::Shutdown::Read => socket::Shutdown::Read,
        std::net::Shutdown::Write => socket::Shutdown::Write,
        std::net::Shutdown::Both => socket::Shutdown::Both,
    };
    Ok(socket::shutdown(fd.as_raw_fd(), how)?)
}

/// Shuts down the writing side, as a relay or an adapter does when its input ends. A peer that
/// already closed the connection leaves no writing side (`ENOTCONN`): that is what was asked
/// for, not an error (tokio answers the same).
pub(crate) fn shutdown_write(fd: &impl AsRawFd) -> io::Result<()> {
    match shutdown(fd, std::net::Shutdown::Write) {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    }
}

pub(crate) fn set_nodelay(fd: &impl AsFd, on: bool) -> io::Result<()> {
    Ok(socket::setsockopt(fd, sockopt::TcpNoDelay, &on)?)
}

pub(crate) fn nodelay(fd: &impl AsFd) -> io::Result<bool> {
    Ok(socket::getsockopt(fd, sockopt::TcpNoDelay)?)
}

/// `IP_TTL`, as `std` sets it (IPv4 packets; an IPv6 socket takes it for v4-mapped peers).
pub(crate) fn set_ttl(fd: &impl AsFd, ttl: u32) -> io::Result<()> {
    let ttl = i32::try_from(ttl)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "TTL out of range"))?;
    Ok(socket::setsockopt(fd, sockopt::Ipv4Ttl, &ttl)?)
}

pub(crate) fn ttl(fd: &impl AsFd) -> io::Result<u32> {
    Ok(socket::getsockopt(fd, sockopt::Ipv4Ttl)? as u32)
}

/// `SO_LINGER`: `Some(d)` makes `close` wait up to `d` for unsent data (`Some(ZERO)`: reset the
/// connection at once, discarding it); `None` is the default background close.
pub(crate) fn set_linger(fd: &impl AsFd, linger: Option<std::time::Duration>) -> io::Result<()> {
    let value = libc::linger {
        l_onoff: i32::from(linger.is_some()),
        l_linger: linger.map_or(0, |d| i32::try_from(d.as_secs()).unwrap_or(i32::MAX)),
    };
    Ok(socket::setsockopt(fd, sockopt::Linger, &value)?)
}

pub(crate) fn linger(fd: &impl AsFd) -> io::Result<Option<std::time::Duration>> {
    let value = socket::getsockopt(fd, sockopt::Linger)?;
    Ok((value.l_onoff != 0)
        .then(|| std::time::Duration::from_secs(u64::try_from(value.l_linger).unwrap_or(0))))
}

pub(crate) fn set_broadcast(fd: &impl AsFd, on: bool) -> io::Result<()> {
    Ok(socket::setsockopt(fd, sockopt::Broadcast, &on)?)
}

pub(crate) fn broadcast(fd: &impl AsFd) -> io::Result<bool> {
    Ok(socket::getsockopt(fd, sockopt::Broadcast)?)
}

/// Resolves `addr` (blocking for host names: pass IP addresses on a hot path).
pub(crate) fn resolve(addr: impl std::net::ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        ));
    }
    Ok(addrs)
}
