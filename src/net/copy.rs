//! `copy_bidirectional`: relays two TCP streams into each other, as a proxy does.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::task::Poll;

use crate::net::TcpStream;

/// Copies `a` into `b` and `b` into `a` at the same time until both have ended; returns the
/// bytes copied each way, `(a to b, b to a)`. When one side ends (reads `Ok(0)`), the other
/// side's writing half is shut down, so the end of stream travels through the proxy and the
/// other direction goes on until it ends too (half-close, as `tokio::io::copy_bidirectional`).
///
/// # Errors
///
/// The first error of either direction; the other direction stops with it.
///
/// # Cancel safety
///
/// Not cancel safe: bytes read and not yet written are lost.
///
/// # Examples
///
/// A TCP proxy from port 7000 to a server on port 7001:
///
/// ```no_run
/// use ringloop::net::{copy_bidirectional, TcpListener, TcpStream};
///
/// ringloop::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:7000")?;
///     loop {
///         let (client, _) = listener.accept().await?;
///         ringloop::spawn(async move {
///             let server = TcpStream::connect("127.0.0.1:7001").await?;
///             copy_bidirectional(&client, &server).await
///         });
///     }
///     #[allow(unreachable_code)]
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub async fn copy_bidirectional(a: &TcpStream, b: &TcpStream) -> io::Result<(u64, u64)> {
    let mut a_to_b = pin!(one_way(a, b));
    let mut b_to_a = pin!(one_way(b, a));
    let (mut there, mut back) = (None, None);
    poll_fn(|cx| {
        if there.is_none() {
            if let Poll::Ready(copied) = a_to_b.as_mut().poll(cx) {
                there = Some(copied?);
            }
        }
        if back.is_none() {
            if let Poll::Ready(copied) = b_to_a.as_mut().poll(cx) {
                back = Some(copied?);
            }
        }
        match (there, back) {
            (Some(there), Some(back)) => Poll::Ready(Ok((there, back))),
            _ => Poll::Pending,
        }
    })
    .await
}

/// `from` into `to`, then `to`'s writing half shut down.
async fn one_way(from: &TcpStream, to: &TcpStream) -> io::Result<u64> {
    let copied = crate::io::copy(from, to).await?;
    crate::net::socket::shutdown_write(to)?;
    Ok(copied)
}
