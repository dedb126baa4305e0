//! `SocketAddr`: the address of a Unix socket, a filesystem path or unnamed.

use std::ffi::OsString;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use nix::sys::socket::UnixAddr;

use crate::driver::sockaddr::SockAddrBuf;

/// The address of a Unix socket: the path it is bound to, or none (an unbound socket, or one
/// side of a pair).
///
/// Abstract addresses (Linux's namespace of names starting with a NUL byte) are reported as
/// unnamed: ringloop neither binds to nor resolves them.
///
/// # Examples
///
/// ```no_run
/// use ringloop::net::UnixListener;
///
/// ringloop::block_on(async {
///     let listener = UnixListener::bind("/tmp/ringloop.sock")?;
///     let (_stream, peer) = listener.accept().await?;
///     // A client that did not bind its socket has no address.
///     println!("peer: {:?}", peer.as_pathname());
///     assert_eq!(
///         listener.local_addr()?.as_pathname(),
///         Some(std::path::Path::new("/tmp/ringloop.sock"))
///     );
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SocketAddr {
    path: Option<PathBuf>,
}

impl SocketAddr {
    /// The path, if the socket is bound to one.
    pub fn as_pathname(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether the socket has no path.
    pub fn is_unnamed(&self) -> bool {
        self.path.is_none()
    }

    pub(super) fn unnamed() -> SocketAddr {
        SocketAddr { path: None }
    }

    /// The address a receive reported (unnamed if the sender had no path).
    pub(super) fn from_buf(buf: &SockAddrBuf) -> SocketAddr {
        SocketAddr {
            path: buf
                .unix_path()
                .map(|raw| PathBuf::from(OsString::from_vec(raw))),
        }
    }

    fn from_nix(addr: &UnixAddr) -> SocketAddr {
        SocketAddr {
            path: addr.path().map(Path::to_path_buf),
        }
    }

    /// `getsockname(2)`.
    pub(super) fn local(fd: &impl AsRawFd) -> io::Result<SocketAddr> {
        let addr = nix::sys::socket::getsockname::<UnixAddr>(fd.as_raw_fd())?;
        Ok(Self::from_nix(&addr))
    }

    /// `getpeername(2)`.
    pub(super) fn peer(fd: &impl AsRawFd) -> io::Result<SocketAddr> {
        let addr = nix::sys::socket::getpeername::<UnixAddr>(fd.as_raw_fd())?;
        Ok(Self::from_nix(&addr))
    }
}
