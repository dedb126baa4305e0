//! Files, through io_uring.
//!
//! Every operation takes its buffer by value and hands it back with the result:
//! `let (res, buf) = file.read_at(buf, 0).await;`. See [`File`].
#![forbid(unsafe_code)]

mod file;
mod metadata;
mod open_options;

pub use file::File;
pub use metadata::Metadata;
pub use open_options::OpenOptions;

use std::io;
use std::path::Path;

use crate::driver::op::mkdir::Mkdir;
use crate::driver::op::rename::Rename;
use crate::driver::op::statx::Statx;
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
    Op::submit(current_driver(), Unlink::new(c_path(path.as_ref())?, false)).await
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
    Op::submit(current_driver(), Unlink::new(c_path(path.as_ref())?, true)).await
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
    Op::submit(current_driver(), op).await
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
    Op::submit(current_driver(), Mkdir::new(c_path(path.as_ref())?, 0o777)).await
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
    let stat = Op::submit(current_driver(), Statx::path(c_path(path.as_ref())?)).await?;
    Ok(Metadata::new(stat))
}
