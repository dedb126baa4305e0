//! `OpenOptions`: every way to open a file, as in `std::fs::OpenOptions`.

use std::io;
use std::path::Path;

use super::File;

/// Options for opening a file, with the names and meaning of `std::fs::OpenOptions`.
///
/// # Examples
///
/// ```
/// use ringloop::fs::OpenOptions;
///
/// ringloop::block_on(async {
///     let path = std::env::temp_dir().join("ringloop-open-options-doc");
///     let file = OpenOptions::new().write(true).create(true).truncate(true).open(&path).await?;
///     let (res, _) = file.write_all_at(b"log line\n".to_vec(), 0).await;
///     res?;
///     file.close().await?;
///     ringloop::fs::remove_file(&path).await
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    mode: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl OpenOptions {
    /// All options off (set at least `read` or `write`); mode `0o666` before the umask.
    pub fn new() -> OpenOptions {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            truncate: false,
            create: false,
            create_new: false,
            mode: 0o666,
        }
    }

    /// Open for reading.
    pub fn read(&mut self, on: bool) -> &mut Self {
        self.read = on;
        self
    }

    /// Open for writing.
    pub fn write(&mut self, on: bool) -> &mut Self {
        self.write = on;
        self
    }

    /// Open for appending (`O_APPEND`; implies writing).
    pub fn append(&mut self, on: bool) -> &mut Self {
        self.append = on;
        self
    }

    /// Truncate to zero length (`O_TRUNC`; needs writing).
    pub fn truncate(&mut self, on: bool) -> &mut Self {
        self.truncate = on;
        self
    }

    /// Create the file if it does not exist (`O_CREAT`).
    pub fn create(&mut self, on: bool) -> &mut Self {
        self.create = on;
        self
    }

    /// Create the file, failing with `AlreadyExists` if it exists (`O_CREAT | O_EXCL`).
    pub fn create_new(&mut self, on: bool) -> &mut Self {
        self.create_new = on;
        self
    }

    /// Permission bits for a created file (before the umask).
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode;
        self
    }

    /// Opens `path` with these options.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a contradictory set (no access mode, or truncate/create without
    /// write); otherwise those of `openat(2)`.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        File::open_with(path.as_ref(), self.flags()?, self.mode).await
    }

    fn flags(&self) -> io::Result<i32> {
        let writing = self.write || self.append;
        let access = match (self.read, writing) {
            (true, false) => libc::O_RDONLY,
            (false, true) => libc::O_WRONLY,
            (true, true) => libc::O_RDWR,
            (false, false) => return Err(invalid("open options: set read, write or append")),
        };
        if (self.truncate || self.create || self.create_new) && !writing {
            return Err(invalid(
                "open options: truncate and create need write or append",
            ));
        }
        let mut flags = access;
        if self.append {
            flags |= libc::O_APPEND;
        }
        if self.truncate {
            flags |= libc::O_TRUNC;
        }
        if self.create_new {
            flags |= libc::O_CREAT | libc::O_EXCL;
        } else if self.create {
            flags |= libc::O_CREAT;
        }
        Ok(flags)
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.to_owned())
}
