//! Unix domain sockets: a listener and a stream (`SOCK_STREAM`), datagrams (`SOCK_DGRAM`), and
//! the [`SocketAddr`] they report. One public type per file; socket setup shared here.
//!
//! Sockets are created blocking (io_uring waits for them) and close-on-exec. A bound path is
//! a file: ringloop never removes it, so remove it yourself once the socket is gone.

mod addr;
mod datagram;
mod listener;
mod stream;
mod ucred;

pub use addr::SocketAddr;
pub use datagram::UnixDatagram;
pub use listener::{Incoming, UnixListener};
pub use stream::{OwnedReadHalf, OwnedWriteHalf, UnixStream};
pub use ucred::UCred;

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr};

use crate::driver::sockaddr::SockAddrBuf;
use crate::net::socket;

/// A new blocking, close-on-exec Unix socket.
fn new_socket(ty: SockType) -> io::Result<OwnedFd> {
    socket::new_socket(AddressFamily::Unix, ty)
}

/// Two connected blocking, close-on-exec Unix sockets (`socketpair(2)`).
fn new_pair(ty: SockType) -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::sys::socket::socketpair(
        AddressFamily::Unix,
        ty,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?)
}

/// `path` in the kernel's layout, for the ring to read.
///
/// # Errors
///
/// `InvalidInput` if the path does not fit in `sun_path` (107 bytes) or holds a NUL byte
/// (which the kernel would read as its end).
fn sockaddr(path: &Path) -> io::Result<SockAddrBuf> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a Unix socket path cannot contain a NUL byte",
        ));
    }
    SockAddrBuf::from_unix_path(bytes).ok_or_else(|| too_long(path))
}

/// Binds `fd` to `path` (`bind(2)`), which must not exist yet.
fn bind(fd: &OwnedFd, path: &Path) -> io::Result<()> {
    let addr = unix_addr(path)?;
    Ok(nix::sys::socket::bind(fd.as_raw_fd(), &addr)?)
}

/// Connects `fd` to `path` without the ring (`connect(2)`), for datagram sockets, where
/// connecting only records the peer.
fn connect(fd: &impl AsRawFd, path: &Path) -> io::Result<()> {
    let addr = unix_addr(path)?;
    Ok(nix::sys::socket::connect(fd.as_raw_fd(), &addr)?)
}

fn unix_addr(path: &Path) -> io::Result<UnixAddr> {
    UnixAddr::new(path).map_err(|e| match e {
        nix::errno::Errno::ENAMETOOLONG => too_long(path),
        e => e.into(),
    })
}

fn too_long(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "Unix socket path {} is longer than the 107 bytes sockaddr_un holds; use a shorter (e.g. relative) path",
            path.display()
        ),
    )
}
