//! `File`: positional reads and writes, sync and close, each one io_uring operation.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use crate::buf::{IoBuf, IoBufExt, IoBufMut};
use crate::driver::fd::SharedFd;
use crate::driver::op::fsync::Fsync;
use crate::driver::op::open::Open;
use crate::driver::op::read_at::ReadAt;
use crate::driver::op::write_at::WriteAt;
use crate::driver::op::Op;
use crate::driver::Driver;
use crate::runtime::current_driver;

/// An open file. Reads and writes are positional (`pread`/`pwrite` style) and go through the
/// ring; buffers are passed by value and returned with the result.
///
/// Dropping a `File` closes it once every operation still in flight on it has finished;
/// [`close`](File::close) does the same and reports the error, if any.
///
/// # Examples
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// ringloop::block_on(async {
///     let file = ringloop::fs::File::create("/tmp/ringloop-file-doc").await?;
///     let (res, _) = file.write_all_at(b"hello world".to_vec(), 0).await;
///     res?;
///     file.sync_all().await?;
///
///     let (res, buf) = file.read_at(vec![0; 5], 6).await;
///     assert_eq!(&buf[..res?], b"world");
///     file.close().await
/// })
/// # }
/// ```
#[derive(Debug)]
pub struct File {
    fd: SharedFd,
    driver: Rc<Driver>,
}

pub(super) fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "file path contains an interior NUL byte",
        )
    })
}

impl File {
    /// Opens a file read-only (`openat` with `O_RDONLY | O_CLOEXEC`).
    ///
    /// # Errors
    ///
    /// Those of `openat(2)`: `NotFound`, `PermissionDenied`, and so on.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        Self::open_with(path.as_ref(), libc::O_RDONLY, 0).await
    }

    /// Creates a file, or truncates an existing one, for reading and writing
    /// (`O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC`, mode `0o666` before the umask).
    ///
    /// # Errors
    ///
    /// Those of `openat(2)`.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        Self::open_with(
            path.as_ref(),
            libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC,
            0o666,
        )
        .await
    }

    pub(super) async fn open_with(path: &Path, flags: i32, mode: u32) -> io::Result<File> {
        let driver = current_driver();
        let fd = Op::submit(driver.clone(), Open::new(c_path(path)?, flags, mode)).await?;
        Ok(File {
            fd: SharedFd::new(fd),
            driver,
        })
    }

    /// Wraps an open standard-library file.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn from_std(file: std::fs::File) -> File {
        File {
            fd: SharedFd::new(OwnedFd::from(file)),
            driver: current_driver(),
        }
    }

    /// Reads into `buf` from offset `pos`, filling at most `buf.bytes_total()` bytes from the
    /// start of the buffer (a `Vec`'s capacity). Returns the number of bytes read (0 at end of
    /// file) and the buffer, whose initialised length grows to cover them.
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped, the read is cancelled; the buffer stays with the runtime until
    /// the kernel is done with it and is then dropped. Bytes it may have read are lost.
    pub async fn read_at<B: IoBufMut>(&self, buf: B, pos: u64) -> (io::Result<usize>, B) {
        Op::submit(self.driver.clone(), ReadAt::new(self.fd.clone(), buf, pos)).await
    }

    /// Reads until `buf` is full (`bytes_total`, a `Vec`'s capacity) from offset `pos`,
    /// continuing after short reads, straight into the buffer.
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` if the file ends first (the buffer holds what was read).
    ///
    /// # Cancel safety
    ///
    /// As [`read_at`](Self::read_at); the bytes read so far are lost.
    pub async fn read_exact_at<B: IoBufMut>(&self, mut buf: B, pos: u64) -> (io::Result<()>, B) {
        while buf.bytes_init() < buf.bytes_total() {
            let filled = buf.bytes_init();
            let (res, slice) = self.read_at(buf.slice(filled..), pos + filled as u64).await;
            buf = slice.into_inner();
            match res {
                Ok(0) => {
                    let e = io::Error::new(io::ErrorKind::UnexpectedEof, "file ended early");
                    return (Err(e), buf);
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Writes the initialised bytes of `buf` (a `Vec`'s length) at offset `pos`. Returns how
    /// many were written, which may be fewer (see [`write_all_at`](Self::write_all_at)).
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped, the write is cancelled if it has not happened yet; whether
    /// bytes reached the file is unknown. The buffer is dropped once the kernel lets go.
    pub async fn write_at<B: IoBuf>(&self, buf: B, pos: u64) -> (io::Result<usize>, B) {
        Op::submit(self.driver.clone(), WriteAt::new(self.fd.clone(), buf, pos)).await
    }

    /// Writes all initialised bytes of `buf` at offset `pos`, continuing after short writes.
    ///
    /// # Errors
    ///
    /// The first write error; `WriteZero` if the kernel accepts no bytes.
    ///
    /// # Cancel safety
    ///
    /// As [`write_at`](Self::write_at): a prefix of the bytes may have been written.
    pub async fn write_all_at<B: IoBuf>(&self, mut buf: B, pos: u64) -> (io::Result<()>, B) {
        let total = buf.bytes_init();
        let mut written = 0;
        while written < total {
            let op = WriteAt::new(
                self.fd.clone(),
                buf.slice(written..total),
                pos + written as u64,
            );
            let (res, slice) = Op::submit(self.driver.clone(), op).await;
            buf = slice.into_inner();
            match res {
                Ok(0) => {
                    let e = io::Error::new(io::ErrorKind::WriteZero, "the file accepted no bytes");
                    return (Err(e), buf);
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Flushes data and metadata to the device (`fsync`).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the wait, not necessarily the flush.
    pub async fn sync_all(&self) -> io::Result<()> {
        Op::submit(self.driver.clone(), Fsync::new(self.fd.clone(), false)).await
    }

    /// Flushes data, and only the metadata needed to read it back (`fdatasync`).
    ///
    /// # Cancel safety
    ///
    /// As [`sync_all`](Self::sync_all).
    pub async fn sync_data(&self) -> io::Result<()> {
        Op::submit(self.driver.clone(), Fsync::new(self.fd.clone(), true)).await
    }

    /// The file's metadata (`statx(2)` on the open file).
    ///
    /// # Errors
    ///
    /// Those of `statx(2)`.
    pub async fn metadata(&self) -> io::Result<super::Metadata> {
        let stat = Op::submit(
            self.driver.clone(),
            crate::driver::op::statx::Statx::fd(self.fd.clone()),
        )
        .await?;
        Ok(super::Metadata::new(stat))
    }

    /// Waits until the file is readable (`POLLIN`), through the ring.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        let poll = crate::driver::op::poll::Poll::new(self.fd.clone(), libc::POLLIN);
        Op::submit(self.driver.clone(), poll).await.map(drop)
    }

    /// Closes the file through the ring, after every operation still in flight on it.
    ///
    /// # Errors
    ///
    /// Those of `close(2)` (for example a deferred write error on some file systems).
    pub async fn close(self) -> io::Result<()> {
        self.fd.close(self.driver).await
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}
