//! `lookup_host`: name resolution on the blocking pool, so a slow resolver stalls no task.

use std::io;
use std::net::SocketAddr;

use crate::net::socket;

/// Resolves `host` — `"example.com:443"`, `"localhost:8080"`, `"[::1]:80"` — to its socket
/// addresses with the system resolver, on the runtime's blocking pool: the resolver may take
/// seconds (a slow DNS server, a timeout), and the runtime's thread keeps running its other
/// tasks meanwhile. An IP address with a port is parsed at once, without the trip to the pool.
///
/// [`TcpStream::connect`](crate::net::TcpStream::connect) and the other `impl ToSocketAddrs`
/// entry points resolve on the calling thread, blocking it; resolve names here first and pass
/// them the addresses.
///
/// # Errors
///
/// `InvalidInput` if `host` has no port or resolves to nothing; the resolver's error (for
/// example "failed to lookup address information") if the name is unknown.
///
/// # Panics
///
/// Outside a runtime.
///
/// # Examples
///
/// ```no_run
/// use ringloop::net::{lookup_host, TcpStream};
///
/// ringloop::block_on(async {
///     let addrs = lookup_host("localhost:7878").await?;
///     let stream = TcpStream::connect(&addrs[..]).await?;
///     # drop(stream);
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub async fn lookup_host(host: impl Into<String>) -> io::Result<Vec<SocketAddr>> {
    let host = host.into();
    if let Ok(addr) = host.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    crate::spawn_blocking(move || socket::resolve(host.as_str()))
        .await
        .map_err(|e| io::Error::other(format!("the name lookup failed: {e}")))?
}
