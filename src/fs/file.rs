//! `File`: positional reads and writes, sync and close, each one io_uring operation.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use crate::buf::{IoBuf, IoBufExt, IoBufMut};
use crate::driver::fd::SharedFd;
use crate::driver::op::fsync::Fsync;
use crate::driver::op::ftruncate::Ftruncate;
use crate::driver::op::open::Open;
use crate::driver::op::read_at::ReadAt;
use crate::driver::op::write_at::WriteAt;
use crate::driver::op::Op;
use crate::driver::Driver;
use crate::io::{grow, MIN_GROWTH};
use crate::runtime::current_driver;

/// How many bytes [`File::read_to_end_at`] asks for to learn whether a buffer that is exactly
/// full has reached the end of the file, before it grows the buffer.
const PROBE_LEN: usize = 32;

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

/// The offset that makes a read or write use (and move) the file position (`-1`).
const AT_POSITION: u64 = u64::MAX;

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
        let fd = Op::submit_file(driver.clone(), Open::new(c_path(path)?, flags, mode)).await?;
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
        Op::submit_file(self.driver.clone(), ReadAt::new(self.fd.clone(), buf, pos)).await
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

    /// Reads from offset `pos` to the end of the file, appending what it reads to `buf`'s
    /// contents (after its length). Returns how many bytes were appended, and the buffer.
    ///
    /// The end of the file is where a read returns 0 bytes: the file's size is never trusted,
    /// so a file that grows while it is read is read to its new end, and one that shrinks ends
    /// early without error. Each read fills the buffer's spare capacity; give `buf` the
    /// capacity you expect (for example the size from [`metadata`](Self::metadata)) and no
    /// reallocation happens: when a buffer is exactly full, a 32-byte read checks for the end
    /// before it is grown (then it at least doubles).
    ///
    /// # Errors
    ///
    /// The first read error other than `Interrupted` (which is retried); `OutOfMemory` if the
    /// buffer cannot grow; `InvalidInput` if the offset would pass `u64::MAX`. On error, `buf`
    /// holds its old contents followed by the bytes read before the error.
    ///
    /// # Cancel safety
    ///
    /// As [`read_at`](Self::read_at): if the future is dropped, `buf` and what was read into
    /// it are lost.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::fs::{self, File};
    ///
    /// ringloop::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ringloop-rtea-{}", std::process::id()));
    ///     fs::write(&path, "header:body").await?;
    ///     let file = File::open(&path).await?;
    ///     let (res, buf) = file.read_to_end_at(b"got ".to_vec(), 7).await;
    ///     assert_eq!(res?, 4);
    ///     assert_eq!(buf, b"got body");
    ///     file.close().await?;
    ///     fs::remove_file(&path).await
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub async fn read_to_end_at(&self, mut buf: Vec<u8>, pos: u64) -> (io::Result<usize>, Vec<u8>) {
        let start = buf.len();
        let given_capacity = buf.capacity();
        loop {
            let read = buf.len() - start;
            let Some(offset) = pos.checked_add(read as u64) else {
                let e = io::Error::new(io::ErrorKind::InvalidInput, "file offset overflow");
                return (Err(e), buf);
            };
            if buf.len() == buf.capacity() {
                if buf.capacity() == given_capacity {
                    // Perhaps exactly as large as the rest of the file: look before growing.
                    let (res, probe) = self.read_at(Vec::with_capacity(PROBE_LEN), offset).await;
                    match res {
                        Ok(0) => return (Ok(read), buf),
                        Ok(_) => {
                            if let Err(e) = grow(&mut buf, probe.len().max(MIN_GROWTH)) {
                                return (Err(e), buf);
                            }
                            buf.extend_from_slice(&probe);
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return (Err(e), buf),
                    }
                    continue;
                }
                if let Err(e) = grow(&mut buf, MIN_GROWTH) {
                    return (Err(e), buf);
                }
            }
            let filled = buf.len();
            let (res, slice) = self.read_at(buf.slice(filled..), offset).await;
            buf = slice.into_inner();
            match res {
                Ok(0) => return (Ok(buf.len() - start), buf),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
    }

    /// Writes the initialised bytes of `buf` (a `Vec`'s length) at offset `pos`. Returns how
    /// many were written, which may be fewer (see [`write_all_at`](Self::write_all_at)).
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped, the write is cancelled if it has not happened yet; whether
    /// bytes reached the file is unknown. The buffer is dropped once the kernel lets go.
    pub async fn write_at<B: IoBuf>(&self, buf: B, pos: u64) -> (io::Result<usize>, B) {
        Op::submit_file(self.driver.clone(), WriteAt::new(self.fd.clone(), buf, pos)).await
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
            let (res, slice) = Op::submit_file(self.driver.clone(), op).await;
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
        Op::submit_file(self.driver.clone(), Fsync::new(self.fd.clone(), false)).await
    }

    /// Flushes data, and only the metadata needed to read it back (`fdatasync`).
    ///
    /// # Cancel safety
    ///
    /// As [`sync_all`](Self::sync_all).
    pub async fn sync_data(&self) -> io::Result<()> {
        Op::submit_file(self.driver.clone(), Fsync::new(self.fd.clone(), true)).await
    }

    /// Truncates or extends the file to `size` bytes, as `std::fs::File::set_len`: bytes past
    /// `size` are dropped; an extension reads as zeros (a hole on most file systems).
    ///
    /// Goes through the ring (`IORING_OP_FTRUNCATE`) on Linux 6.9 and newer; on an older
    /// kernel, or with [`Builder::newer_ops(false)`](crate::Builder::newer_ops), it runs
    /// `ftruncate(2)` on a duplicate of the fd on the [blocking pool](crate::spawn_blocking).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `size` exceeds `i64::MAX`, or if the file is not open for writing or
    /// not a regular file (`EINVAL`); `FileTooLarge` past the file system's limit; the other
    /// errors of `ftruncate(2)`.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the wait, not necessarily the truncation: the length is then
    /// unknown.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::fs::{self, File};
    ///
    /// ringloop::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ringloop-len-{}", std::process::id()));
    ///     let file = File::create(&path).await?;
    ///     file.write_all_at(b"hello world".to_vec(), 0).await.0?;
    ///     file.set_len(5).await?;
    ///     assert_eq!(fs::read(&path).await?, b"hello");
    ///     file.set_len(7).await?;
    ///     assert_eq!(fs::read(&path).await?, b"hello\0\0");
    ///     file.close().await?;
    ///     fs::remove_file(&path).await
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub async fn set_len(&self, size: u64) -> io::Result<()> {
        if i64::try_from(size).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "file length larger than i64::MAX",
            ));
        }
        if Ftruncate::supported(&self.driver) {
            let op = Ftruncate::new(self.fd.clone(), size);
            return Op::submit_file(self.driver.clone(), op).await;
        }
        // The pool's thread needs an fd of its own: `SharedFd` stays on this thread.
        let fd = self.fd.as_fd().try_clone_to_owned()?;
        super::blocking(move || std::fs::File::from(fd).set_len(size)).await
    }

    /// The file's metadata (`statx(2)` on the open file).
    ///
    /// # Errors
    ///
    /// Those of `statx(2)`.
    pub async fn metadata(&self) -> io::Result<super::Metadata> {
        let stat = Op::submit_file(
            self.driver.clone(),
            crate::driver::op::statx::Statx::fd(self.fd.clone()),
        )
        .await?;
        Ok(super::Metadata::new(stat))
    }

    /// Waits until the file is readable (`POLLIN`), through the ring.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        let poll = crate::driver::op::poll::Poll::new(self.fd.clone(), libc::POLLIN);
        Op::submit_file(self.driver.clone(), poll).await.map(drop)
    }

    /// Moves the file position that [`AsyncRead`](crate::io::AsyncRead) and
    /// [`AsyncWrite`](crate::io::AsyncWrite) use, as `lseek(2)`; returns the new position.
    /// The positional calls (`read_at`, `write_at`, ...) neither use nor move it.
    ///
    /// Not `async`: moving a position never blocks.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a position before the start (or past `i64::MAX`); `ESPIPE` for a
    /// pipe or socket.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::SeekFrom;
    /// use ringloop::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// ringloop::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ringloop-seek-{}", std::process::id()));
    ///     let file = ringloop::fs::File::create(&path).await?;
    ///     let (res, _) = file.write_all(b"hello, file".to_vec()).await;
    ///     res?;
    ///     file.seek(SeekFrom::Start(7))?;
    ///     let (res, tail) = file.read_to_end(Vec::new()).await;
    ///     res?;
    ///     assert_eq!(tail, b"file");
    ///     ringloop::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn seek(&self, pos: std::io::SeekFrom) -> io::Result<u64> {
        use nix::unistd::{lseek, Whence};
        let (offset, whence) = match pos {
            std::io::SeekFrom::Start(n) => (
                i64::try_from(n).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidInput, "position past i64::MAX")
                })?,
                Whence::SeekSet,
            ),
            std::io::SeekFrom::End(n) => (n, Whence::SeekEnd),
            std::io::SeekFrom::Current(n) => (n, Whence::SeekCur),
        };
        let at = lseek(&self.fd, offset, whence)?;
        Ok(at as u64)
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

/// Reads at the file's position, which the read moves on (`read(2)`): with
/// [`AsyncReadExt`](crate::io::AsyncReadExt) and [`io::copy`](crate::io::copy), a file is a
/// stream like a socket. Concurrent reads of one `File` each take the position as they find
/// it, in no set order.
impl crate::io::AsyncRead for File {
    async fn read<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        let op = ReadAt::new(self.fd.clone(), buf, AT_POSITION);
        Op::submit_file(self.driver.clone(), op).await
    }
}

/// Writes at the file's position, which the write moves on (`write(2)`; at the end for a
/// file opened with `append`).
impl crate::io::AsyncWrite for File {
    async fn write<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        let op = WriteAt::new(self.fd.clone(), buf, AT_POSITION);
        Op::submit_file(self.driver.clone(), op).await
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}
