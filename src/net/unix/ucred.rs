//! `UCred`: the credentials of the process at the other end of a Unix stream.

use std::io;
use std::os::fd::AsFd;

use nix::sys::socket::{getsockopt, sockopt};

/// The credentials of a Unix stream's peer, as the kernel recorded them when the connection
/// (or the pair) was made (`SO_PEERCRED`), as in tokio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UCred {
    pid: Option<i32>,
    uid: u32,
    gid: u32,
}

impl UCred {
    /// The peer's user id.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The peer's group id.
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// The peer's process id (`None` if the kernel did not say, as for a peer in another pid
    /// namespace).
    pub fn pid(&self) -> Option<i32> {
        self.pid
    }

    pub(super) fn of_peer(fd: &impl AsFd) -> io::Result<UCred> {
        let cred = getsockopt(fd, sockopt::PeerCredentials)?;
        Ok(UCred {
            pid: (cred.pid() > 0).then_some(cred.pid()),
            uid: cred.uid(),
            gid: cred.gid(),
        })
    }
}
