//! Whole files at once: `read`, `read_to_string`, `write`, `write_owned`, `copy`.

use std::io;
use std::path::Path;

use super::{File, OpenOptions};
use crate::buf::IoBuf;

/// Reads the whole file at `path` into a `Vec`, as `tokio::fs::read` and `std::fs::read`.
///
/// Through the ring: open, `statx` for the size (a hint for the buffer's capacity, so a file
/// that stays put is read without reallocating), reads until one returns 0 bytes, close. The
/// size is never trusted: a file that grows while it is read is read to its new end, one that
/// shrinks ends where it ends, and files whose size says nothing (`/proc`, FIFOs) are read
/// whole. See [`File::read_to_end_at`].
///
/// # Errors
///
/// Those of opening (`NotFound`, `PermissionDenied`, `IsADirectory` on the first read of a
/// directory, …) and reading; `OutOfMemory` if the buffer cannot be allocated.
///
/// # Panics
///
/// Outside a runtime.
///
/// # Examples
///
/// ```
/// use ringloop::fs;
///
/// ringloop::block_on(async {
///     let path = std::env::temp_dir().join(format!("ringloop-doc-read-{}", std::process::id()));
///     fs::write(&path, [1u8, 2, 3]).await?;
///     assert_eq!(fs::read(&path).await?, [1, 2, 3]);
///     fs::remove_file(&path).await
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let file = File::open(path).await?;
    // As std: a failed `statx` only costs the hint.
    let hint = file.metadata().await.map_or(0, |m| m.len());
    let mut buf = Vec::new();
    buf.try_reserve_exact(usize::try_from(hint).unwrap_or(usize::MAX))
        .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "file too large for memory"))?;
    let (res, buf) = file.read_to_end_at(buf, 0).await;
    res?;
    file.close().await?;
    Ok(buf)
}

/// Reads the whole file at `path` into a `String`, as `tokio::fs::read_to_string`: [`read`],
/// then a UTF-8 check (no copy).
///
/// # Errors
///
/// Those of [`read`]; `InvalidData` if the contents are not UTF-8 (the error's source is the
/// `FromUtf8Error`, which says where).
///
/// # Panics
///
/// Outside a runtime.
///
/// # Examples
///
/// ```
/// use ringloop::fs;
///
/// ringloop::block_on(async {
///     let path = std::env::temp_dir().join(format!("ringloop-doc-rts-{}", std::process::id()));
///     fs::write(&path, "héllo").await?;
///     assert_eq!(fs::read_to_string(&path).await?, "héllo");
///
///     fs::write(&path, [0xff, 0xfe]).await?;
///     let err = fs::read_to_string(&path).await.unwrap_err();
///     assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
///     fs::remove_file(&path).await
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub async fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let bytes = read(path).await?;
    String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Writes `contents` as the whole file at `path`, creating it (mode `0o666` before the umask)
/// or truncating it first, as `tokio::fs::write` and `std::fs::write`.
///
/// `contents` is borrowed, so it is copied once into an owned buffer for the kernel (tokio
/// copies too); [`write_owned`] takes a buffer by value and hands it back, without the copy.
/// Through the ring: open, writes until every byte is written (short writes are continued),
/// close, whose error is reported. The data is not flushed to the device: open the file and
/// call [`File::sync_all`] for that.
///
/// # Errors
///
/// Those of opening (`NotFound` for a missing parent directory, `PermissionDenied`,
/// `IsADirectory`, …), writing (`StorageFull`, …; `WriteZero` if the file takes no more
/// bytes) and closing. After an error the file may hold part of `contents`.
///
/// # Panics
///
/// Outside a runtime.
///
/// # Examples
///
/// ```
/// use ringloop::fs;
///
/// ringloop::block_on(async {
///     let path = std::env::temp_dir().join(format!("ringloop-doc-write-{}", std::process::id()));
///     fs::write(&path, "a longer first version").await?;
///     fs::write(&path, b"second").await?; // truncates
///     assert_eq!(fs::read(&path).await?, b"second");
///     fs::remove_file(&path).await
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub async fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    write_owned(path, contents.as_ref().to_vec()).await.0
}

/// [`write`](fn@write) from an owned buffer: writes the initialised bytes of `buf` (a `Vec`'s
/// length) as the whole file at `path` (created or truncated) without copying them, and hands
/// the buffer back, in ringloop's owned-buffer style (`let (res, buf) = ...`).
///
/// # Errors
///
/// As [`write`](fn@write).
///
/// # Cancel safety
///
/// If the future is dropped, the file may hold any prefix of `buf`; the buffer is dropped once
/// the kernel lets go of it.
///
/// # Panics
///
/// Outside a runtime.
///
/// # Examples
///
/// ```
/// use ringloop::fs;
///
/// ringloop::block_on(async {
///     let path = std::env::temp_dir().join(format!("ringloop-doc-wo-{}", std::process::id()));
///     let data = vec![7u8; 1 << 20];
///     let (res, data) = fs::write_owned(&path, data).await;
///     res?;
///     assert_eq!(fs::read(&path).await?, data);
///     fs::remove_file(&path).await
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub async fn write_owned<B: IoBuf>(path: impl AsRef<Path>, buf: B) -> (io::Result<()>, B) {
    let opened = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .await;
    let file = match opened {
        Ok(file) => file,
        Err(e) => return (Err(e), buf),
    };
    let (res, buf) = file.write_all_at(buf, 0).await;
    if let Err(e) = res {
        return (Err(e), buf); // dropping the file closes it
    }
    (file.close().await, buf)
}

/// Copies the contents of the file `from` to `to`, creating or truncating `to`, and gives `to`
/// the permission bits of `from`; returns the number of bytes copied. As `tokio::fs::copy`,
/// and with the same implementation as `std::fs::copy`, run on the
/// [blocking pool](crate::spawn_blocking): `copy_file_range(2)` copies inside the kernel (a
/// reflink on file systems that share extents, a server-side copy on NFS), which io_uring has
/// no operation for and a read/write loop through the ring would forgo.
///
/// Other metadata (owner, timestamps, extended attributes) is not copied.
///
/// # Errors
///
/// `NotFound` if `from` (or `to`'s parent) does not exist; `InvalidInput` if `from` is not a
/// regular file (or a symlink to one); those of opening, reading and writing.
///
/// # Panics
///
/// Outside a runtime.
///
/// # Examples
///
/// ```
/// use ringloop::fs;
///
/// ringloop::block_on(async {
///     let dir = std::env::temp_dir().join(format!("ringloop-doc-copy-{}", std::process::id()));
///     fs::create_dir_all(&dir).await?;
///     fs::write(dir.join("from"), "contents").await?;
///     assert_eq!(fs::copy(dir.join("from"), dir.join("to")).await?, 8);
///     assert_eq!(fs::read(dir.join("to")).await?, b"contents");
///     fs::remove_dir_all(&dir).await
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub async fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let (from, to) = (from.as_ref().to_owned(), to.as_ref().to_owned());
    super::blocking(move || std::fs::copy(from, to)).await
}
