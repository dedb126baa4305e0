//! ringloop: an event-driven, thread-per-core async runtime for Linux, built on io_uring.
//!
//! Every task runs only because an event woke it: an I/O completion, a timer, another task.
//! One [`Runtime`] is one thread, one ring, one task slab and one timer wheel.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! fn main() -> std::io::Result<()> {
//!     let rt = ringloop::Runtime::new()?;
//!     rt.block_on(async {
//!         // Tasks need not be `Send`: they never leave this thread.
//!         let h = ringloop::spawn(async { 40 + 2 });
//!         assert_eq!(h.await.unwrap(), 42);
//!
//!         ringloop::time::sleep(Duration::from_micros(300)).await;
//!
//!         // Buffers go to the kernel by value and come back with the result.
//!         let file = ringloop::fs::File::create("/tmp/ringloop-doc").await?;
//!         let (res, _buf) = file.write_all_at(b"hello".to_vec(), 0).await;
//!         res?;
//!         let (res, buf) = file.read_at(vec![0u8; 5], 0).await;
//!         assert_eq!(&buf[..res?], b"hello");
//!         file.close().await
//!     })
//! }
//! ```
//!
//! # Layers
//!
//! Arrows point down only: the surface ([`fs`], [`net`], [`io`], [`process`], [`signal`],
//! [`time`], [`task`], [`sync`], [`event`]) → [`runtime`](Runtime) →
//! {task slab, timer wheel, driver} → `io-uring` / `nix` / `libc`. The driver never sees a task,
//! only `Waker`s; the wheel and the task slab know nothing of io_uring. `unsafe` lives only in
//! `task/`, `driver/` and `buf.rs`.

mod blocking;
mod buf;
mod driver;
pub mod event;
pub mod fs;
pub mod io;
pub mod net;
pub mod process;
mod runtime;
pub mod shard;
pub mod signal;
mod stdio;
pub mod sync;
pub mod task;
pub mod time;

#[cfg(feature = "_compat")]
pub mod compat;
pub use blocking::spawn_blocking;
pub use buf::{IoBuf, IoBufExt, IoBufMut, Slice};
pub use runtime::{
    block_on, Builder, ClassStats, Handle, Latency, Runtime, RuntimeStats, TaskClass,
};
pub use task::{
    spawn, spawn_in, try_spawn, try_spawn_in, JoinError, JoinHandle, RemoteJoinHandle, SpawnError,
};

/// Runs an `async fn main` on a ringloop runtime built on this thread (feature `macros`, on by
/// default).
///
/// ```
/// #[ringloop::main]
/// async fn main() -> std::io::Result<()> {
///     let listener = ringloop::net::TcpListener::bind("127.0.0.1:0")?;
///     println!("listening on {}", listener.local_addr()?);
///     Ok(())
/// }
/// ```
///
/// Options, as `name = value` pairs: `entries = N` ([`Builder::entries`]), `event_interval = N`
/// ([`Builder::event_interval`]) and `crate = "path"` (where ringloop is, if renamed). The
/// function becomes a plain `fn` that builds the runtime and calls [`Runtime::block_on`] on
/// the body; if the runtime cannot be built, it panics with the reason before the body runs.
#[cfg(feature = "macros")]
#[doc(inline)]
pub use ringloop_macros::main;

/// Runs an `async fn` test on a fresh ringloop runtime of its own (feature `macros`, on by
/// default).
///
/// ```
/// #[ringloop::test(entries = 64)]
/// async fn echo_over_a_unix_pair() -> std::io::Result<()> {
///     let (a, b) = ringloop::net::UnixStream::pair()?;
///     let (res, _) = a.write_all(b"ping".to_vec()).await;
///     res?;
///     let (res, buf) = b.read_exact(vec![0u8; 4]).await;
///     res?;
///     assert_eq!(buf, b"ping");
///     Ok(())
/// }
/// # fn main() {}
/// ```
///
/// The options are those of [`main`]. Other attributes (`#[should_panic]`, `#[ignore]`) are
/// kept; each test gets its own runtime, dropped (with everything it still runs) when the
/// test ends.
#[cfg(feature = "macros")]
#[doc(inline)]
pub use ringloop_macros::test;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
