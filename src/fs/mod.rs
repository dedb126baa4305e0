//! Files, through io_uring.
//!
//! Every operation takes its buffer by value and hands it back with the result:
//! `let (res, buf) = file.read_at(buf, 0).await;`. See [`File`].
//!
//! The whole-file and directory helpers have `tokio::fs`'s names and signatures: [`read`],
//! [`read_to_string`], [`write`](fn@write) (and [`write_owned`], which takes an owned buffer
//! without a copy), [`copy`], [`create_dir_all`], [`read_dir`], [`remove_dir_all`],
//! [`canonicalize`], [`symlink_metadata`], [`hard_link`], [`symlink`]; and on [`File`],
//! [`read_to_end_at`](File::read_to_end_at) and [`set_len`](File::set_len).
//!
//! # Ring or blocking pool
//!
//! What io_uring can do goes through the ring: opening, reading, writing, closing, `statx`,
//! `renameat`, `unlinkat`, `mkdirat`, and, where the kernel has them, `linkat`, `symlinkat`
//! (5.15) and `ftruncate` (6.9) — checked against the opcode probe the runtime takes at
//! startup, with [`spawn_blocking`](crate::spawn_blocking) as the fallback on older kernels.
//! [`Builder::newer_ops(false)`](crate::Builder::newer_ops), or `RINGLOOP_FALLBACK=ops` (or
//! `all`)
//! in the environment, takes the fallback whatever the kernel has, to test it.
//!
//! What io_uring cannot do runs on the blocking pool, with the standard library's own
//! implementation: [`read_dir`] (no `getdents` opcode), [`copy`] (`copy_file_range` and
//! reflinks, which a read/write loop through the ring would forgo), [`remove_dir_all`]
//! (std's walk, which is safe against symlink races) and [`canonicalize`] (`realpath`).
#![forbid(unsafe_code)]

mod contents;
mod dir;
mod file;
mod metadata;
mod open_options;

pub use contents::{copy, read, read_to_string, write, write_owned};
pub use dir::{create_dir_all, read_dir, remove_dir_all, DirEntry, ReadDir};
pub use file::File;
pub use metadata::Metadata;
pub use open_options::OpenOptions;

use std::io;
use std::path::{Path, PathBuf};

use crate::driver::op::link::Link;
use crate::driver::op::mkdir::Mkdir;
use crate::driver::op::rename::Rename;
use crate::driver::op::statx::Statx;
use crate::driver::op::symlink::Symlink;
use crate::driver::op::unlink::Unlink;
use crate::driver::op::Op;
use crate::runtime::current_driver;
use file::c_path;

/// Removes a file (`unlinkat(2)` through the ring).
///
/// # Errors
///
/// `NotFound`, `PermissionDenied`, `IsADirectory`, …
///
/// # Panics
///
/// Outside a runtime.
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    Op::submit_file(current_driver(), Unlink::new(c_path(path.as_ref())?, false)).await
}

/// Removes an empty directory (`unlinkat(2)` with `AT_REMOVEDIR`).
///
/// # Errors
///
/// `NotFound`, `DirectoryNotEmpty`, …
///
/// # Panics
///
/// Outside a runtime.
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    Op::submit_file(current_driver(), Unlink::new(c_path(path.as_ref())?, true)).await
}

/// Renames `from` to `to`, replacing `to` if it exists (`renameat(2)`).
///
/// # Errors
///
/// Those of `renameat(2)`.
///
/// # Panics
///
/// Outside a runtime.
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let op = Rename::new(c_path(from.as_ref())?, c_path(to.as_ref())?);
    Op::submit_file(current_driver(), op).await
}

/// Creates a directory with mode `0o777` before the umask (`mkdirat(2)`).
///
/// # Errors
///
/// `AlreadyExists`, `NotFound` (missing parent), …
///
/// # Panics
///
/// Outside a runtime.
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    Op::submit_file(current_driver(), Mkdir::new(c_path(path.as_ref())?, 0o777)).await
}

/// Metadata of `path`, following symlinks (`statx(2)`).
///
/// # Errors
///
/// `NotFound`, `PermissionDenied`, …
///
/// # Panics
///
/// Outside a runtime.
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let stat = Op::submit_file(current_driver(), Statx::path(c_path(path.as_ref())?)).await?;
    Ok(Metadata::new(stat))
}

/// Metadata of `path` itself, without following a final symlink (`statx(2)` with
/// `AT_SYMLINK_NOFOLLOW`, through the ring): for a symlink, [`Metadata::is_symlink`] is true
/// and the length is that of the link's target path. As `tokio::fs::symlink_metadata`.
///
/// # Errors
///
/// `NotFound`, `PermissionDenied`, `NotADirectory` (a parent is not a directory), …
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
///     let dir = std::env::temp_dir().join(format!("ringloop-doc-lstat-{}", std::process::id()));
///     fs::create_dir_all(&dir).await?;
///     fs::write(dir.join("target"), "x").await?;
///     fs::symlink("target", dir.join("link")).await?;
///     assert!(fs::symlink_metadata(dir.join("link")).await?.is_symlink());
///     assert!(fs::metadata(dir.join("link")).await?.is_file()); // follows the link
///     fs::remove_dir_all(&dir).await
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let op = Statx::path_nofollow(c_path(path.as_ref())?);
    Ok(Metadata::new(Op::submit_file(current_driver(), op).await?))
}

/// Creates a hard link `link` to the file `original` (`linkat(2)`; a symlink `original` is
/// linked itself, not its target, as `std::fs::hard_link` does on Linux). As
/// `tokio::fs::hard_link`.
///
/// Through the ring (`IORING_OP_LINKAT`) on Linux 5.15 and newer, else on the
/// [blocking pool](crate::spawn_blocking) (see the [module](self) documentation).
///
/// # Errors
///
/// `NotFound` if `original` or `link`'s parent is missing, `AlreadyExists` if `link` exists,
/// `CrossesDevices` across file systems, `PermissionDenied`, …
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
///     let dir = std::env::temp_dir().join(format!("ringloop-doc-link-{}", std::process::id()));
///     fs::create_dir_all(&dir).await?;
///     fs::write(dir.join("a"), "shared").await?;
///     fs::hard_link(dir.join("a"), dir.join("b")).await?;
///     assert_eq!(fs::read(dir.join("b")).await?, b"shared");
///     fs::remove_dir_all(&dir).await
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub async fn hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (original, link) = (original.as_ref(), link.as_ref());
    let driver = current_driver();
    if Link::supported(&driver) {
        let op = Link::new(c_path(original)?, c_path(link)?);
        return Op::submit_file(driver, op).await;
    }
    let (original, link) = (original.to_owned(), link.to_owned());
    blocking(move || std::fs::hard_link(original, link)).await
}

/// Creates a symbolic link `link` that points to `original` (`symlinkat(2)`). `original` is
/// stored as given: a relative one is resolved from `link`'s directory when the link is
/// followed, and it need not exist. As `tokio::fs::symlink`.
///
/// Through the ring (`IORING_OP_SYMLINKAT`) on Linux 5.15 and newer, else on the
/// [blocking pool](crate::spawn_blocking) (see the [module](self) documentation).
///
/// # Errors
///
/// `AlreadyExists` if `link` exists, `NotFound` if its parent is missing, `PermissionDenied`, …
///
/// # Panics
///
/// Outside a runtime.
pub async fn symlink(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (original, link) = (original.as_ref(), link.as_ref());
    let driver = current_driver();
    if Symlink::supported(&driver) {
        let op = Symlink::new(c_path(original)?, c_path(link)?);
        return Op::submit_file(driver, op).await;
    }
    let (original, link) = (original.to_owned(), link.to_owned());
    blocking(move || std::os::unix::fs::symlink(original, link)).await
}

/// The absolute path of `path` with every symlink, `.` and `..` resolved (`realpath(3)`, on
/// the [blocking pool](crate::spawn_blocking): io_uring has no such operation). As
/// `tokio::fs::canonicalize`.
///
/// # Errors
///
/// `NotFound` if `path` or a component of it does not exist (the path must exist),
/// `PermissionDenied`, `NotADirectory`, `FilesystemLoop` (too many symlinks), …
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
///     let dir = std::env::temp_dir().join(format!("ringloop-doc-canon-{}", std::process::id()));
///     fs::create_dir_all(dir.join("sub")).await?;
///     let path = fs::canonicalize(dir.join("sub/../sub/.")).await?;
///     assert!(path.is_absolute());
///     assert_eq!(path, std::fs::canonicalize(dir.join("sub"))?);
///     fs::remove_dir_all(&dir).await
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub async fn canonicalize(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = path.as_ref().to_owned();
    blocking(move || std::fs::canonicalize(path)).await
}

/// Runs `f` on the blocking pool; a panic in `f` is resumed here.
async fn blocking<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    crate::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(join_error(e)))
}

/// A blocking job that did not return: its panic is resumed; a cancelled job (the runtime is
/// shutting down) is an error.
fn join_error(e: crate::JoinError) -> io::Error {
    if e.is_panic() {
        std::panic::resume_unwind(e.into_panic());
    }
    io::Error::other("the blocking pool dropped the job: the runtime is shutting down")
}
