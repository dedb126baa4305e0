//! Files, through io_uring.
//!
//! Every operation takes its buffer by value and hands it back with the result:
//! `let (res, buf) = file.read_at(buf, 0).await;`. See [`File`].
#![forbid(unsafe_code)]

mod file;

pub use file::File;
