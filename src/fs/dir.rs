//! Directories: `create_dir_all`, `remove_dir_all`, `read_dir` with its `ReadDir` and `DirEntry`.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::fs::FileType;
use std::future::{poll_fn, Future};
use std::io;
use std::os::unix::fs::DirEntryExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{blocking, create_dir, join_error, metadata, symlink_metadata, Metadata};
use crate::task::JoinHandle;

/// Entries [`ReadDir`] reads per trip to the blocking pool (as tokio).
const BATCH: usize = 32;

/// Creates the directory `path` and every missing parent, as `tokio::fs::create_dir_all` and
/// `std::fs::create_dir_all`: each with `mkdirat(2)` through the ring, mode `0o777` before the
/// umask.
///
/// Succeeds if `path` already is a directory, and if another process creates any of the
/// directories at the same time. An empty path succeeds and does nothing.
///
/// # Errors
///
/// `AlreadyExists` if `path` (or a parent) exists and is not a directory; `NotADirectory` if
/// a parent is a file; `PermissionDenied`, `ReadOnlyFilesystem`, … Directories created before
/// the error stay.
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
///     let dir = std::env::temp_dir().join(format!("ringloop-doc-cda-{}", std::process::id()));
///     fs::create_dir_all(dir.join("a/b/c")).await?;
///     fs::create_dir_all(dir.join("a/b")).await?; // exists: fine
///     assert!(fs::metadata(dir.join("a/b/c")).await?.is_dir());
///     fs::remove_dir_all(&dir).await
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    // Walk up until a directory is created or found, remembering the missing ones; then create
    // those downwards. Each level is tried once on the way up and once on the way down.
    let mut missing = Vec::new();
    let mut at = path;
    loop {
        if at.as_os_str().is_empty() {
            break; // the relative path's base, the current directory
        }
        match create_dir(at).await {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing.push(at);
                match at.parent() {
                    Some(parent) => at = parent,
                    None => return Err(io::Error::other("failed to create whole tree")),
                }
            }
            Err(e) => {
                if is_dir(at).await {
                    break;
                }
                return Err(e);
            }
        }
    }
    for dir in missing.into_iter().rev() {
        if let Err(e) = create_dir(dir).await {
            if !is_dir(dir).await {
                return Err(e);
            }
        }
    }
    Ok(())
}

async fn is_dir(path: &Path) -> bool {
    metadata(path).await.is_ok_and(|m| m.is_dir())
}

/// Removes `path` and everything under it, as `tokio::fs::remove_dir_all` and
/// `std::fs::remove_dir_all`, whose implementation it runs on the
/// [blocking pool](crate::spawn_blocking): std's walk opens each directory relative to its
/// parent's fd and never follows a symlink, so a symlink swapped in during the walk cannot
/// redirect it outside the tree (CVE-2022-21658); io_uring has no directory listing to walk
/// with. A symlink inside the tree (or `path` itself, if a symlink) is removed, not followed.
///
/// # Errors
///
/// `NotFound` if `path` does not exist; `NotADirectory` if it is a file; `PermissionDenied`,
/// … What was removed before an error stays removed.
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
///     let dir = std::env::temp_dir().join(format!("ringloop-doc-rda-{}", std::process::id()));
///     fs::create_dir_all(dir.join("nested/deeper")).await?;
///     fs::write(dir.join("nested/file"), "x").await?;
///     fs::remove_dir_all(&dir).await?;
///     let err = fs::metadata(&dir).await.unwrap_err();
///     assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub async fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    blocking(move || std::fs::remove_dir_all(path)).await
}

/// Lists the directory `path`: a [`ReadDir`] whose
/// [`next_entry`](ReadDir::next_entry) yields each [`DirEntry`] (`.` and `..` excepted, in
/// the file system's order), as `tokio::fs::read_dir`.
///
/// The listing runs on the [blocking pool](crate::spawn_blocking) (io_uring has no
/// `getdents`), 32 entries per trip. `ReadDir` is a stream rather than a `Vec` so that a
/// directory of a million entries costs memory for 32 at a time and the first entries arrive
/// before the last are read, and so that code written for tokio's `ReadDir` ports unchanged.
///
/// # Errors
///
/// `NotFound`, `NotADirectory`, `PermissionDenied`, … from opening the directory; errors while
/// listing come from [`next_entry`](ReadDir::next_entry).
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
///     let dir = std::env::temp_dir().join(format!("ringloop-doc-rd-{}", std::process::id()));
///     fs::create_dir_all(dir.join("sub")).await?;
///     fs::write(dir.join("file"), "x").await?;
///
///     let mut names = Vec::new();
///     let mut entries = fs::read_dir(&dir).await?;
///     while let Some(entry) = entries.next_entry().await? {
///         let kind = if entry.file_type().await?.is_dir() { "dir" } else { "file" };
///         names.push((entry.file_name().into_string().unwrap(), kind));
///     }
///     names.sort();
///     assert_eq!(names, [("file".to_string(), "file"), ("sub".to_string(), "dir")]);
///     fs::remove_dir_all(&dir).await
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let path = path.as_ref().to_owned();
    // Open and read the first batch in one trip.
    let (iter, batch) = blocking(move || Ok(next_batch(std::fs::read_dir(path)?))).await?;
    Ok(ReadDir {
        state: State::Idle { iter, batch },
    })
}

type Batch = (Option<std::fs::ReadDir>, VecDeque<io::Result<DirEntry>>);

/// Reads up to [`BATCH`] entries; the iterator comes back unless it ended.
fn next_batch(mut iter: std::fs::ReadDir) -> Batch {
    let mut batch = VecDeque::with_capacity(BATCH);
    while batch.len() < BATCH {
        match iter.next() {
            Some(entry) => batch.push_back(entry.map(DirEntry::from_std)),
            None => return (None, batch),
        }
    }
    (Some(iter), batch)
}

/// The entries of a directory, from [`read_dir`].
pub struct ReadDir {
    state: State,
}

enum State {
    /// Entries read and not yet returned; `iter` is `None` once the listing has ended.
    Idle {
        iter: Option<std::fs::ReadDir>,
        batch: VecDeque<io::Result<DirEntry>>,
    },
    /// A batch being read on the blocking pool.
    Reading(JoinHandle<Batch>),
}

impl fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Idle { iter: Some(_), .. } => "idle",
            State::Idle { iter: None, .. } => "ended",
            State::Reading(_) => "reading",
        };
        f.debug_struct("ReadDir")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl ReadDir {
    /// The next entry, or `None` once every entry has been returned.
    ///
    /// # Errors
    ///
    /// An error reading the directory (`readdir(3)`); the listing ends after it.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a batch being read when the future is dropped is kept for the next call,
    /// so no entry is lost.
    pub async fn next_entry(&mut self) -> io::Result<Option<DirEntry>> {
        poll_fn(|cx| self.poll_next_entry(cx)).await
    }

    /// The polling form of [`next_entry`](Self::next_entry), for a `Stream` adapter: `Ready`
    /// with the next entry, `None` at the end or an error; `Pending` while a batch is read,
    /// after which `cx`'s waker is woken.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn poll_next_entry(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<DirEntry>>> {
        loop {
            match &mut self.state {
                State::Idle { iter, batch } => {
                    if let Some(entry) = batch.pop_front() {
                        return Poll::Ready(entry.map(Some));
                    }
                    let Some(iter) = iter.take() else {
                        return Poll::Ready(Ok(None));
                    };
                    let job = crate::spawn_blocking(move || next_batch(iter));
                    self.state = State::Reading(job);
                }
                State::Reading(job) => {
                    let (iter, batch) = match std::task::ready!(Pin::new(job).poll(cx)) {
                        Ok(batch) => batch,
                        Err(e) => {
                            self.state = State::Idle {
                                iter: None,
                                batch: VecDeque::new(),
                            };
                            return Poll::Ready(Err(join_error(e)));
                        }
                    };
                    self.state = State::Idle { iter, batch };
                }
            }
        }
    }
}

/// One entry of a directory listing, from [`ReadDir::next_entry`]. Its name, path, inode
/// number and (almost always) type were read with the listing, so they cost nothing more.
#[derive(Debug)]
pub struct DirEntry {
    path: PathBuf,
    name: OsString,
    ino: u64,
    /// `None` if the type had to be looked up (`DT_UNKNOWN`) and the lookup failed.
    file_type: Option<FileType>,
}

impl DirEntry {
    fn from_std(entry: std::fs::DirEntry) -> DirEntry {
        DirEntry {
            path: entry.path(),
            name: entry.file_name(),
            ino: entry.ino(),
            file_type: entry.file_type().ok(),
        }
    }

    /// The entry's full path: the path given to [`read_dir`] joined with
    /// [`file_name`](Self::file_name).
    pub fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The entry's name in its directory, without any leading path.
    pub fn file_name(&self) -> OsString {
        self.name.clone()
    }

    /// The inode number from the directory entry.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The entry's type, not following symlinks (a symlink is a symlink), as
    /// `tokio::fs::DirEntry::file_type`. Read with the listing (`d_type`), so this does not
    /// wait, except on file systems that leave the type out and when looking it up then failed:
    /// it is looked up again, with `lstat` on the blocking pool.
    ///
    /// # Errors
    ///
    /// Only from that second look-up: `NotFound` if the entry has been removed since, …
    ///
    /// # Panics
    ///
    /// Outside a runtime, in the rare case above.
    pub async fn file_type(&self) -> io::Result<FileType> {
        if let Some(file_type) = self.file_type {
            return Ok(file_type);
        }
        let path = self.path.clone();
        blocking(move || std::fs::symlink_metadata(path).map(|m| m.file_type())).await
    }

    /// The entry's metadata, not following symlinks: [`symlink_metadata`]
    /// on its path, through the ring.
    ///
    /// # Errors
    ///
    /// Those of [`symlink_metadata`]: `NotFound` if the entry has been
    /// removed since it was listed, …
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub async fn metadata(&self) -> io::Result<Metadata> {
        symlink_metadata(&self.path).await
    }
}
