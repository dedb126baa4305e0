//! Poll-based I/O traits and hyper's runtime traits over ringloop (features `tokio-compat`,
//! `futures-io` and `hyper`, all off by default), for crates written against tokio's or
//! futures' I/O traits, or hyper's.
//!
//! - [`Compat`] wraps a [`TcpStream`](crate::net::TcpStream) or
//!   [`UnixStream`](crate::net::UnixStream). With `tokio-compat` it implements tokio's
//!   `AsyncRead`, `AsyncBufRead` and `AsyncWrite`; with `futures-io`, the same three of the
//!   `futures` crate; with `hyper`, `hyper::rt::Read` and `hyper::rt::Write`, so a hyper
//!   connection is served straight from it. It costs one copy each way: see [`Compat`] for
//!   how, and why flushing matters.
//! - With `hyper`: [`HyperTimer`] (hyper's `rt::Timer` on the runtime's timer wheel, for
//!   `header_read_timeout` and keep-alive timeouts) and [`HyperExecutor`] (hyper's
//!   `rt::Executor`, spawning on the current runtime).
#![forbid(unsafe_code)]

#[cfg(feature = "hyper")]
mod hyper;
mod stream;

#[cfg(feature = "hyper")]
pub use self::hyper::{HyperExecutor, HyperTimer};
pub use stream::{Compat, CompatStream};
