//! `Metadata`: what `statx(2)` says about a file.

use std::time::{Duration, SystemTime};

/// File metadata from `statx(2)`: [`fs::metadata`](fn@super::metadata),
/// [`fs::symlink_metadata`](super::symlink_metadata), [`File::metadata`](super::File::metadata)
/// or [`DirEntry::metadata`](super::DirEntry::metadata).
#[derive(Clone)]
pub struct Metadata {
    stat: libc::statx,
}

impl std::fmt::Debug for Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metadata")
            .field("len", &self.len())
            .field("is_file", &self.is_file())
            .field("is_dir", &self.is_dir())
            .field("mode", &format_args!("{:o}", self.mode()))
            .finish_non_exhaustive()
    }
}

impl Metadata {
    pub(crate) fn new(stat: libc::statx) -> Metadata {
        Metadata { stat }
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.stat.stx_size
    }

    /// Whether the size is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn file_type(&self) -> u32 {
        u32::from(self.stat.stx_mode) & libc::S_IFMT
    }

    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.file_type() == libc::S_IFREG
    }

    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }

    /// A symbolic link (only from a call that does not follow links:
    /// [`symlink_metadata`](super::symlink_metadata),
    /// [`DirEntry::metadata`](super::DirEntry::metadata)).
    pub fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }

    /// Permission bits (`st_mode & 0o7777`).
    pub fn mode(&self) -> u32 {
        u32::from(self.stat.stx_mode) & 0o7777
    }

    /// Last modification time.
    pub fn modified(&self) -> SystemTime {
        let t = self.stat.stx_mtime;
        SystemTime::UNIX_EPOCH + Duration::new(t.tv_sec.max(0) as u64, t.tv_nsec)
    }

    /// Inode number.
    pub fn ino(&self) -> u64 {
        self.stat.stx_ino
    }
}
