//! Child processes, in the shape of `tokio::process`: a [`Command`] to configure and spawn, a
//! [`Child`] to wait for or kill, and its pipes ([`ChildStdin`], [`ChildStdout`],
//! [`ChildStderr`]) read and written through the ring.
//!
//! ```
//! use ringloop::process::Command;
//!
//! ringloop::block_on(async {
//!     let output = Command::new("echo").arg("hello").output().await?;
//!     assert!(output.status.success());
//!     assert_eq!(output.stdout, b"hello\n");
//!     Ok::<_, std::io::Error>(())
//! })?;
//! # Ok::<_, std::io::Error>(())
//! ```
//!
//! # What runs where
//!
//! - **Spawning** is `std::process::Command::spawn`: `fork`/`exec` (or `posix_spawn`) on the
//!   calling thread, as in tokio. It takes well under a millisecond for a small parent, but
//!   it is not on the ring and the runtime's thread waits for it.
//! - **Waiting** goes through the ring and never blocks the thread: `IORING_OP_WAITID`
//!   (Linux 6.7+, where the kernel's probe has it), else `IORING_OP_POLL_ADD` on a pidfd
//!   (`pidfd_open`, Linux 5.3+); either way the exit status is then collected with a
//!   non-blocking `waitpid`. Where `pidfd_open` is refused (some seccomp filters), the wait
//!   falls back to checking with `waitpid` on a timer, 1 ms apart at first and backing off to
//!   50 ms.
//! - **Pipes** are read and written with `IORING_OP_READ` and `IORING_OP_WRITE`, with owned
//!   buffers, through [`io::AsyncRead`](crate::io::AsyncRead) and
//!   [`io::AsyncWrite`](crate::io::AsyncWrite). They are std's pipes, which are blocking, as
//!   io_uring needs (on an `O_NONBLOCK` fd it fails with `EAGAIN` instead of waiting).
//!
//! # Dropping a `Child`
//!
//! As in tokio, dropping a [`Child`] does not stop the process, unless
//! [`Command::kill_on_drop`] was set, which sends it `SIGKILL`. Either way the process is
//! reaped when it exits, so it does not stay a zombie: a detached task on the current runtime
//! waits for it. If there is no runtime (the `Child` is dropped outside one), or the runtime
//! is dropped before the process exits, it goes on a process-wide list that is checked, with
//! non-blocking `waitpid`s, whenever a child is spawned or dropped; a process still running
//! when the program ends is adopted by init, which reaps it.
//!
//! # Signals
//!
//! Writing to a child's stdin after the child closed it fails with
//! [`BrokenPipe`](std::io::ErrorKind::BrokenPipe); the kernel also raises `SIGPIPE`, which a
//! Rust program ignores unless it restored the default action.
#![forbid(unsafe_code)]

mod child;
mod exit;
mod pipe;
#[cfg(test)]
mod tests;

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::process::{ExitStatus, Output, Stdio};

pub use child::Child;
pub use pipe::{ChildStderr, ChildStdin, ChildStdout};

/// A process to spawn: a `std::process::Command` and [`kill_on_drop`](Self::kill_on_drop).
///
/// The builder methods are std's (they take `&mut self` and return it, to chain); the
/// settings apply to every process the `Command` spawns. By default a child inherits the
/// parent's stdin, stdout and stderr; pass [`Stdio::piped()`] to get a [`ChildStdin`],
/// [`ChildStdout`] or [`ChildStderr`] on the [`Child`].
///
/// # Examples
///
/// ```
/// use std::process::Stdio;
///
/// use ringloop::process::Command;
///
/// ringloop::block_on(async {
///     let status = Command::new("sh")
///         .args(["-c", "exit $CODE"])
///         .env("CODE", "3")
///         .stdin(Stdio::null())
///         .status()
///         .await?;
///     assert_eq!(status.code(), Some(3));
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Command {
    std: std::process::Command,
    kill_on_drop: bool,
    /// Tests only: wait with this mechanism instead of the best the kernel has.
    #[cfg(test)]
    watch: Option<exit::Mechanism>,
}

impl Command {
    /// A command to run `program`, found on `PATH` if it has no `/`, with no arguments, the
    /// parent's environment and working directory, and inherited stdin, stdout and stderr.
    pub fn new<S: AsRef<OsStr>>(program: S) -> Command {
        Command::from(std::process::Command::new(program))
    }

    /// Adds one argument.
    pub fn arg<S: AsRef<OsStr>>(&mut self, arg: S) -> &mut Command {
        self.std.arg(arg);
        self
    }

    /// Adds arguments, in order.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.std.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env<K, V>(&mut self, key: K, val: V) -> &mut Command
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.std.env(key, val);
        self
    }

    /// Sets several environment variables for the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.std.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove<K: AsRef<OsStr>>(&mut self, key: K) -> &mut Command {
        self.std.env_remove(key);
        self
    }

    /// Starts the child with an empty environment (then only what [`env`](Self::env) adds).
    pub fn env_clear(&mut self) -> &mut Command {
        self.std.env_clear();
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir<P: AsRef<Path>>(&mut self, dir: P) -> &mut Command {
        self.std.current_dir(dir);
        self
    }

    /// The child's stdin: [`Stdio::piped()`] for a [`Child::stdin`] to write to,
    /// [`Stdio::null()`], [`Stdio::inherit()`] (the default for [`spawn`](Self::spawn)), or an
    /// open file.
    pub fn stdin<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.std.stdin(cfg);
        self
    }

    /// The child's stdout: [`Stdio::piped()`] for a [`Child::stdout`] to read from, and so on
    /// (see [`stdin`](Self::stdin)).
    pub fn stdout<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.std.stdout(cfg);
        self
    }

    /// The child's stderr: [`Stdio::piped()`] for a [`Child::stderr`] to read from, and so on
    /// (see [`stdin`](Self::stdin)).
    pub fn stderr<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.std.stderr(cfg);
        self
    }

    /// Whether dropping the [`Child`] (or the future of [`output`](Self::output) or
    /// [`status`](Self::status)) before the process has exited sends it `SIGKILL`. Off by
    /// default: a dropped child runs on (and is reaped in the background when it exits).
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::process::Command;
    ///
    /// ringloop::block_on(async {
    ///     let child = Command::new("sleep").arg("100").kill_on_drop(true).spawn()?;
    ///     drop(child); // SIGKILL, then reaped in the background
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn kill_on_drop(&mut self, kill_on_drop: bool) -> &mut Command {
        self.kill_on_drop = kill_on_drop;
        self
    }

    /// The [`kill_on_drop`](Self::kill_on_drop) setting.
    pub fn get_kill_on_drop(&self) -> bool {
        self.kill_on_drop
    }

    /// The `std::process::Command` inside, for what this type does not forward (`uid`, `gid`,
    /// `process_group`, `arg0`, `pre_exec` through `std::os::unix::process::CommandExt`).
    pub fn as_std(&self) -> &std::process::Command {
        &self.std
    }

    /// The `std::process::Command` inside, mutably (see [`as_std`](Self::as_std)).
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.std
    }

    /// The `std::process::Command` inside; the `kill_on_drop` setting is lost.
    pub fn into_std(self) -> std::process::Command {
        self.std
    }

    /// Starts the process and returns its [`Child`], with the pipes asked for.
    ///
    /// This runs `fork`/`exec` (or `posix_spawn`) on the calling thread, as
    /// `std::process::Command::spawn` does (and as tokio does); only waiting and the pipes go
    /// through the ring.
    ///
    /// # Errors
    ///
    /// Those of `std::process::Command::spawn`: `NotFound` for a program that does not exist,
    /// `PermissionDenied` for one that is not executable, and so on.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::process::Stdio;
    ///
    /// use ringloop::io::AsyncWriteExt;
    /// use ringloop::process::Command;
    ///
    /// ringloop::block_on(async {
    ///     let mut child = Command::new("cat")
    ///         .stdin(Stdio::piped())
    ///         .stdout(Stdio::piped())
    ///         .spawn()?;
    ///     let stdin = child.stdin.take().expect("piped");
    ///     let (res, _) = stdin.write_all(b"ping".to_vec()).await;
    ///     res?;
    ///     drop(stdin); // EOF for cat
    ///     let output = child.wait_with_output().await?;
    ///     assert_eq!(output.stdout, b"ping");
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn spawn(&mut self) -> io::Result<Child> {
        #[cfg(test)]
        let watch = self.watch;
        #[cfg(not(test))]
        let watch = None;
        Child::spawn(&mut self.std, self.kill_on_drop, watch)
    }

    /// Runs the process to its end and collects its exit status, stdout and stderr.
    ///
    /// Stdout and stderr are piped (this changes the `Command`'s settings for later spawns
    /// too, as in tokio); stdin is as configured (inherited by default). Both pipes are read
    /// while the process runs, so a child that writes a lot does not stall on a full pipe.
    ///
    /// # Errors
    ///
    /// Those of [`spawn`](Self::spawn), and a failure to read a pipe or wait.
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped, the child is dropped: killed if
    /// [`kill_on_drop`](Self::kill_on_drop) is set, and reaped in the background either way.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::process::Command;
    ///
    /// ringloop::block_on(async {
    ///     let out = Command::new("sh").args(["-c", "echo out; echo err >&2"]).output().await?;
    ///     assert_eq!((&out.stdout[..], &out.stderr[..]), (&b"out\n"[..], &b"err\n"[..]));
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub async fn output(&mut self) -> io::Result<Output> {
        self.std.stdout(Stdio::piped());
        self.std.stderr(Stdio::piped());
        self.spawn()?.wait_with_output().await
    }

    /// Runs the process to its end and returns its exit status.
    ///
    /// The parent's ends of any pipes configured are closed at once, so the child never waits
    /// on a pipe nobody serves (it reads end of file, or its writes fail).
    ///
    /// # Errors
    ///
    /// Those of [`spawn`](Self::spawn), and a failure to wait.
    ///
    /// # Cancel safety
    ///
    /// As [`output`](Self::output).
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::process::Command;
    ///
    /// ringloop::block_on(async {
    ///     let status = Command::new("sh").args(["-c", "exit 3"]).status().await?;
    ///     assert_eq!(status.code(), Some(3));
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub async fn status(&mut self) -> io::Result<ExitStatus> {
        let mut child = self.spawn()?;
        drop(child.stdin.take());
        drop(child.stdout.take());
        drop(child.stderr.take());
        child.wait().await
    }
}

impl From<std::process::Command> for Command {
    fn from(std: std::process::Command) -> Command {
        Command {
            std,
            kill_on_drop: false,
            #[cfg(test)]
            watch: None,
        }
    }
}
