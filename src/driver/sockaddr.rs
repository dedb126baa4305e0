//! `SockAddrBuf`: a `sockaddr_storage` the kernel reads (connect, sendmsg) or writes (accept,
//! recvmsg), with conversions to and from `std::net::SocketAddr`.
//!
//! # Invariants
//!
//! - (A1) `len` never exceeds `size_of::<sockaddr_storage>()`, and the storage's family field
//!   says which `sockaddr_*` layout the first `len` bytes hold.

use std::mem::{size_of, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// A socket address in the kernel's layout.
#[derive(Clone, Copy)]
pub(crate) struct SockAddrBuf {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl Default for SockAddrBuf {
    /// An empty buffer for the kernel to fill (`len` = the whole storage).
    fn default() -> Self {
        // SAFETY: `sockaddr_storage` is plain old data; all zeroes is a valid (AF_UNSPEC) value.
        let storage = unsafe { MaybeUninit::<libc::sockaddr_storage>::zeroed().assume_init() };
        SockAddrBuf {
            storage,
            len: size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }
}

impl std::fmt::Debug for SockAddrBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SockAddrBuf")
            .field("addr", &to_std(self))
            .finish()
    }
}

impl SockAddrBuf {
    /// An address the kernel wrote somewhere else (a multishot receive's buffer), as raw
    /// bytes; at most a `sockaddr_storage`'s worth is kept.
    pub(crate) fn from_bytes(name: &[u8]) -> SockAddrBuf {
        let mut buf = SockAddrBuf::default();
        let len = name.len().min(size_of::<libc::sockaddr_storage>());
        // SAFETY: (A1) at most `size_of::<sockaddr_storage>()` bytes go into the storage, which
        // is plain old data (any bytes are a value); the family field is among them.
        unsafe {
            std::ptr::copy_nonoverlapping(
                name.as_ptr(),
                (&mut buf.storage as *mut libc::sockaddr_storage).cast::<u8>(),
                len,
            );
        }
        buf.len = len as libc::socklen_t;
        buf
    }

    pub(crate) fn from_std(addr: SocketAddr) -> SockAddrBuf {
        let mut buf = SockAddrBuf::default();
        let storage = &mut buf.storage as *mut libc::sockaddr_storage;
        match addr {
            SocketAddr::V4(v4) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: v4.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(v4.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: (A1) sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe { storage.cast::<libc::sockaddr_in>().write(sin) };
                buf.len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            }
            SocketAddr::V6(v6) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: v6.port().to_be(),
                    sin6_flowinfo: v6.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: v6.ip().octets(),
                    },
                    sin6_scope_id: v6.scope_id(),
                };
                // SAFETY: (A1) sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe { storage.cast::<libc::sockaddr_in6>().write(sin6) };
                buf.len = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            }
        }
        buf
    }

    /// A Unix socket path address (`sockaddr_un`); `None` if the path is too long.
    pub(crate) fn from_unix_path(path: &[u8]) -> Option<SockAddrBuf> {
        let mut buf = SockAddrBuf::default();
        // SAFETY: sockaddr_un is plain old data; all zeroes is valid.
        let mut sun = unsafe { MaybeUninit::<libc::sockaddr_un>::zeroed().assume_init() };
        if path.len() >= sun.sun_path.len() {
            return None;
        }
        sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (dst, src) in sun.sun_path.iter_mut().zip(path) {
            *dst = *src as libc::c_char;
        }
        let storage = &mut buf.storage as *mut libc::sockaddr_storage;
        // SAFETY: (A1) sockaddr_storage is larger than and aligned for sockaddr_un.
        unsafe { storage.cast::<libc::sockaddr_un>().write(sun) };
        let header = size_of::<libc::sa_family_t>();
        buf.len = (header + path.len() + 1) as libc::socklen_t;
        Some(buf)
    }

    /// For the kernel to read: the address and its length.
    pub(crate) fn as_ptr_len(&self) -> (*const libc::sockaddr, libc::socklen_t) {
        (
            (&self.storage as *const libc::sockaddr_storage).cast(),
            self.len,
        )
    }

    /// For the kernel to write: the storage and its in/out length.
    pub(crate) fn as_mut_ptrs(&mut self) -> (*mut libc::sockaddr, *mut libc::socklen_t) {
        self.len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        (
            (&mut self.storage as *mut libc::sockaddr_storage).cast(),
            &mut self.len,
        )
    }

    /// The raw storage and length, for `msghdr`.
    pub(crate) fn raw_parts_mut(&mut self) -> (*mut libc::sockaddr_storage, &mut libc::socklen_t) {
        (&mut self.storage, &mut self.len)
    }

    /// The address family the kernel wrote.
    pub(crate) fn family(&self) -> libc::c_int {
        self.storage.ss_family as libc::c_int
    }

    /// The path of a Unix address (`None` for unnamed or abstract sockets).
    pub(crate) fn unix_path(&self) -> Option<Vec<u8>> {
        if self.family() != libc::AF_UNIX {
            return None;
        }
        let header = size_of::<libc::sa_family_t>();
        let len = (self.len as usize).min(size_of::<libc::sockaddr_un>());
        if len <= header {
            return None;
        }
        let storage = &self.storage as *const libc::sockaddr_storage;
        // SAFETY: (A1) the family is AF_UNIX, so the storage holds a sockaddr_un.
        let sun = unsafe { &*storage.cast::<libc::sockaddr_un>() };
        let raw = &sun.sun_path[..len - header];
        if raw.first() == Some(&0) {
            return None;
        }
        Some(
            raw.iter()
                .take_while(|c| **c != 0)
                .map(|c| *c as u8)
                .collect(),
        )
    }
}

/// The IP address the kernel wrote, if it is one.
pub(crate) fn to_std(buf: &SockAddrBuf) -> Option<SocketAddr> {
    let storage = &buf.storage as *const libc::sockaddr_storage;
    match buf.family() {
        libc::AF_INET if buf.len as usize >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: (A1) the family and length say the storage holds a sockaddr_in.
            let sin = unsafe { &*storage.cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if buf.len as usize >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: (A1) the family and length say the storage holds a sockaddr_in6.
            let sin6 = unsafe { &*storage.cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                port,
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_addresses_round_trip() {
        for addr in ["127.0.0.1:8080", "[::1]:9", "[fe80::1%2]:443", "0.0.0.0:0"] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(to_std(&SockAddrBuf::from_std(addr)), Some(addr));
        }
    }

    #[test]
    fn unix_paths_round_trip_and_overlong_paths_are_refused() {
        let buf = SockAddrBuf::from_unix_path(b"/tmp/sock").unwrap();
        assert_eq!(buf.unix_path().as_deref(), Some(&b"/tmp/sock"[..]));
        assert!(SockAddrBuf::from_unix_path(&[b'a'; 200]).is_none());
    }
}
