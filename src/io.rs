//! Owned-buffer I/O traits: one result shape, `(io::Result<T>, buffer)`, for every stream.
//!
//! [`AsyncRead`] and [`AsyncWrite`] are what a stream implements (one operation each);
//! [`AsyncReadExt::read_exact`], [`AsyncWriteExt::write_all`] and [`copy`] are written once
//! here, on top, for every stream type. [`stdin`], [`stdout`] and [`stderr`] are the
//! process's standard streams, through the ring.
#![forbid(unsafe_code)]

use std::future::Future;
use std::io;

use crate::buf::{IoBuf, IoBufExt, IoBufMut};
pub use crate::stdio::{stderr, stdin, stdout, Stderr, Stdin, Stdout};

/// A byte stream that reads into owned buffers.
pub trait AsyncRead {
    /// Reads into `buf` (up to `bytes_total`, from its start); `Ok(0)` means end of stream.
    fn read<B: IoBufMut>(&self, buf: B) -> impl Future<Output = (io::Result<usize>, B)>;
}

/// A byte stream that writes from owned buffers.
pub trait AsyncWrite {
    /// Writes some of the initialised bytes of `buf`; returns how many.
    fn write<B: IoBuf>(&self, buf: B) -> impl Future<Output = (io::Result<usize>, B)>;
}

/// The least a full buffer grows by when read to the end (`Vec` at least doubles it).
pub(crate) const MIN_GROWTH: usize = 8 * 1024;

/// Makes room for `additional` more bytes in a buffer being read into, or says it cannot.
pub(crate) fn grow(buf: &mut Vec<u8>, additional: usize) -> io::Result<()> {
    buf.try_reserve(additional)
        .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "cannot grow the read buffer"))
}

/// `read_exact` and `read_to_end` for every [`AsyncRead`].
pub trait AsyncReadExt: AsyncRead {
    /// Fills `buf` to `bytes_total` (a `Vec`'s capacity), continuing after short reads.
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` if the stream ends first (the buffer holds what arrived).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: bytes read before the future is dropped are lost.
    fn read_exact<B: IoBufMut>(&self, mut buf: B) -> impl Future<Output = (io::Result<()>, B)> {
        async move {
            while buf.bytes_init() < buf.bytes_total() {
                let from = buf.bytes_init();
                let (res, slice) = self.read(buf.slice(from..)).await;
                buf = slice.into_inner();
                match res {
                    Ok(0) => {
                        let e = io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended early");
                        return (Err(e), buf);
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return (Err(e), buf),
                }
            }
            (Ok(()), buf)
        }
    }

    /// Reads until the end of the stream, appending to `buf` (growing it as needed) and
    /// returning how many bytes were appended.
    ///
    /// # Errors
    ///
    /// The first read error (the buffer keeps what arrived); `OutOfMemory` if the buffer
    /// cannot grow.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: bytes read before the future is dropped are lost.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::io::{AsyncReadExt, AsyncWriteExt};
    /// use ringloop::net::UnixStream;
    ///
    /// ringloop::block_on(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     let (res, _) = a.write_all(vec![7u8; 100_000]).await;
    ///     res?;
    ///     a.shutdown(std::net::Shutdown::Write)?;
    ///     let (res, all) = b.read_to_end(Vec::new()).await;
    ///     assert_eq!(res?, 100_000);
    ///     assert_eq!(all, vec![7u8; 100_000]);
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    fn read_to_end(&self, mut buf: Vec<u8>) -> impl Future<Output = (io::Result<usize>, Vec<u8>)> {
        async move {
            let start = buf.len();
            loop {
                if buf.len() == buf.capacity() {
                    if let Err(e) = grow(&mut buf, MIN_GROWTH) {
                        return (Err(e), buf);
                    }
                }
                let filled = buf.len();
                let (res, slice) = self.read(buf.slice(filled..)).await;
                buf = slice.into_inner();
                match res {
                    Ok(0) => return (Ok(buf.len() - start), buf),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return (Err(e), buf),
                }
            }
        }
    }
}

impl<T: AsyncRead + ?Sized> AsyncReadExt for T {}

/// `write_all` for every [`AsyncWrite`].
pub trait AsyncWriteExt: AsyncWrite {
    /// Writes every initialised byte of `buf`, continuing after short writes.
    ///
    /// # Errors
    ///
    /// The first write error; `WriteZero` if the stream accepts no bytes.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: a prefix of the bytes may have been written.
    fn write_all<B: IoBuf>(&self, mut buf: B) -> impl Future<Output = (io::Result<()>, B)> {
        async move {
            let mut written = 0;
            let total = buf.bytes_init();
            while written < total {
                let (res, slice) = self.write(buf.slice(written..total)).await;
                buf = slice.into_inner();
                match res {
                    Ok(0) => {
                        let e = io::Error::new(
                            io::ErrorKind::WriteZero,
                            "the stream accepted no bytes",
                        );
                        return (Err(e), buf);
                    }
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return (Err(e), buf),
                }
            }
            (Ok(()), buf)
        }
    }
}

impl<T: AsyncWrite + ?Sized> AsyncWriteExt for T {}

/// The buffer [`copy`] lends to each read and write.
const COPY_BUF: usize = 64 * 1024;

/// Copies everything `reader` yields into `writer`, until the reader ends (`Ok(0)`); returns
/// how many bytes were copied. One 64 KiB buffer goes back and forth between the reads and
/// the writes. It does not shut `writer` down: see
/// [`net::copy_bidirectional`](crate::net::copy_bidirectional) for a proxy.
///
/// # Errors
///
/// The first read or write error (`Interrupted` is retried).
///
/// # Cancel safety
///
/// Not cancel safe: bytes read and not yet written are lost.
///
/// # Examples
///
/// ```no_run
/// use ringloop::net::TcpStream;
///
/// ringloop::block_on(async {
///     let from = TcpStream::connect("127.0.0.1:7000").await?;
///     let to = TcpStream::connect("127.0.0.1:7001").await?;
///     let copied = ringloop::io::copy(&from, &to).await?;
///     println!("{copied} bytes");
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub async fn copy<R, W>(reader: &R, writer: &W) -> io::Result<u64>
where
    R: AsyncRead + ?Sized,
    W: AsyncWrite + ?Sized,
{
    let mut buf = Vec::with_capacity(COPY_BUF);
    let mut copied = 0u64;
    loop {
        buf.clear();
        let (res, back) = reader.read(buf).await;
        buf = back;
        match res {
            Ok(0) => return Ok(copied),
            Ok(n) => copied += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let (res, back) = writer.write_all(buf).await;
        buf = back;
        res?;
    }
}
