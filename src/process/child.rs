//! `Child`: a spawned process, its pipes, and the waits and kills on it.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::process::{ExitStatus, Output};
use std::task::Poll;

use super::exit::{reap_orphans, Mechanism, Running, Watch};
use super::pipe::{ChildStderr, ChildStdin, ChildStdout};
use crate::runtime::current_driver;

/// A spawned child process, from [`Command::spawn`](super::Command::spawn).
///
/// The pipes asked for with `Stdio::piped()` are in the public fields; take them out
/// (`child.stdout.take()`) to read or write them while the `Child` is waited for.
///
/// Dropping a `Child` does not stop the process, unless
/// [`kill_on_drop`](super::Command::kill_on_drop) was set, which sends it `SIGKILL`. Either
/// way it is reaped in the background once it exits, so it never stays a zombie while a
/// runtime runs (see the [module documentation](super#dropping-a-child)).
///
/// # Examples
///
/// ```
/// use std::os::unix::process::ExitStatusExt;
///
/// use ringloop::process::Command;
///
/// ringloop::block_on(async {
///     let mut child = Command::new("sleep").arg("100").spawn()?;
///     assert!(child.id().is_some());
///     assert!(child.try_wait()?.is_none(), "still running");
///     child.kill().await?; // SIGKILL, then waits
///     let status = child.wait().await?;
///     assert_eq!(status.signal(), Some(libc::SIGKILL));
///     assert_eq!(child.id(), None, "reaped: the pid is no longer ours");
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Child {
    /// The writing end of the child's stdin, if it was `Stdio::piped()`. Dropping it (or
    /// [`ChildStdin::close`]) closes the pipe: the child reads end of file.
    pub stdin: Option<ChildStdin>,
    /// The reading end of the child's stdout, if it was `Stdio::piped()`.
    pub stdout: Option<ChildStdout>,
    /// The reading end of the child's stderr, if it was `Stdio::piped()`.
    pub stderr: Option<ChildStderr>,
    state: State,
}

#[derive(Debug)]
struct State {
    /// `None` once the child is reaped (or handed to the background reaper by `Drop`).
    running: Option<Running>,
    /// Set when the child is reaped.
    status: Option<ExitStatus>,
    kill_on_drop: bool,
}

impl Child {
    /// Spawns `command` on the calling thread and sets up the waits and the pipes.
    pub(super) fn spawn(
        command: &mut std::process::Command,
        kill_on_drop: bool,
        watch: Option<Mechanism>,
    ) -> io::Result<Child> {
        let driver = current_driver();
        reap_orphans();
        let mut child = command.spawn()?;
        let watch = Watch::new(&driver, child.id(), watch);
        let stdin = child
            .stdin
            .take()
            .map(|pipe| ChildStdin::new(pipe.into(), driver.clone()));
        let stdout = child
            .stdout
            .take()
            .map(|pipe| ChildStdout::new(pipe.into(), driver.clone()));
        let stderr = child
            .stderr
            .take()
            .map(|pipe| ChildStderr::new(pipe.into(), driver.clone()));
        Ok(Child {
            stdin,
            stdout,
            stderr,
            state: State {
                running: Some(Running { child, watch }),
                status: None,
                kill_on_drop,
            },
        })
    }

    /// The process id, while the child is not yet reaped; `None` after a wait has returned
    /// its exit status (the number may belong to another process by then).
    pub fn id(&self) -> Option<u32> {
        self.state.running.as_ref().map(|r| r.child.id())
    }

    /// Waits for the child to exit and returns its exit status, through the ring: the
    /// runtime's thread goes on running other tasks meanwhile. Stdin, if still here, is
    /// closed first, so a child that reads until end of file can finish.
    ///
    /// Once it has returned a status, it returns the same status again at once.
    ///
    /// # Errors
    ///
    /// If the ring's wait fails (`ECANCELED` when the runtime shuts down), or `waitpid` does
    /// (`ECHILD` if something else in the process reaped the child).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped, nothing is lost, and a later call (or
    /// [`try_wait`](Self::try_wait)) still returns the status.
    ///
    /// # Panics
    ///
    /// Outside a runtime, unless the status is already known.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::process::Command;
    ///
    /// ringloop::block_on(async {
    ///     let mut child = Command::new("sh").args(["-c", "exit 7"]).spawn()?;
    ///     let status = child.wait().await?;
    ///     assert_eq!(status.code(), Some(7));
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        if let Some(status) = self.state.status {
            return Ok(status);
        }
        let running = self
            .state
            .running
            .as_mut()
            .expect("a child without a status is running");
        let status = running.watch.wait(&mut running.child).await?;
        self.state.reaped(status);
        Ok(status)
    }

    /// The exit status if the child has exited (reaping it), `None` if it still runs. Does
    /// not wait, does not close stdin, and does not wake anything when the child exits.
    ///
    /// # Errors
    ///
    /// Those of `waitpid(2)`.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.state.status {
            return Ok(Some(status));
        }
        let running = self
            .state
            .running
            .as_mut()
            .expect("a child without a status is running");
        let status = running.child.try_wait()?;
        if let Some(status) = status {
            self.state.reaped(status);
        }
        Ok(status)
    }

    /// Sends `SIGKILL` and returns without waiting; the child stays a zombie until a
    /// [`wait`](Self::wait) or [`try_wait`](Self::try_wait) reaps it (or the `Child` is
    /// dropped, which reaps it in the background). Does nothing once the child is reaped.
    ///
    /// # Errors
    ///
    /// Those of `kill(2)`.
    pub fn start_kill(&mut self) -> io::Result<()> {
        match &mut self.state.running {
            Some(running) => running.child.kill(),
            None => Ok(()),
        }
    }

    /// Sends `SIGKILL` and waits for the child to exit ([`start_kill`](Self::start_kill),
    /// then [`wait`](Self::wait)). The exit status, a kill by `SIGKILL` unless the child
    /// exited first, is then returned by `wait` and `try_wait`.
    ///
    /// # Errors
    ///
    /// Those of `start_kill` and `wait`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the signal is sent when the future is first polled; a dropped wait loses
    /// nothing (see [`wait`](Self::wait)).
    pub async fn kill(&mut self) -> io::Result<()> {
        self.start_kill()?;
        self.wait().await.map(drop)
    }

    /// Waits for the child to exit while reading its stdout and stderr to their ends (the
    /// pipes still in `self`; an absent one gives an empty `Vec`). Stdin is closed first.
    ///
    /// # Errors
    ///
    /// The first error of the wait or of either read.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: output read so far is lost, and the `Child` is dropped (see the
    /// type's documentation).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::process::Stdio;
    ///
    /// use ringloop::process::Command;
    ///
    /// ringloop::block_on(async {
    ///     let child = Command::new("sh")
    ///         .args(["-c", "echo hi; echo oops >&2; exit 2"])
    ///         .stdout(Stdio::piped())
    ///         .stderr(Stdio::piped())
    ///         .spawn()?;
    ///     let output = child.wait_with_output().await?;
    ///     assert_eq!(output.status.code(), Some(2));
    ///     assert_eq!(output.stdout, b"hi\n");
    ///     assert_eq!(output.stderr, b"oops\n");
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub async fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let stdout = self.stdout.take();
        let stderr = self.stderr.take();
        let (status, stdout, stderr) = try_join3(
            self.wait(),
            async {
                match &stdout {
                    Some(pipe) => read_all(pipe.read_to_end(Vec::new()).await),
                    None => Ok(Vec::new()),
                }
            },
            async {
                match &stderr {
                    Some(pipe) => read_all(pipe.read_to_end(Vec::new()).await),
                    None => Ok(Vec::new()),
                }
            },
        )
        .await?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// The mechanism this child's waits use.
    #[cfg(test)]
    pub(super) fn mechanism(&self) -> Option<Mechanism> {
        self.state.running.as_ref().map(|r| r.watch.mechanism())
    }
}

fn read_all((res, buf): (io::Result<usize>, Vec<u8>)) -> io::Result<Vec<u8>> {
    res.map(|_| buf)
}

/// Runs three fallible futures concurrently; the first error ends all three.
async fn try_join3<A, B, C>(
    a: impl Future<Output = io::Result<A>>,
    b: impl Future<Output = io::Result<B>>,
    c: impl Future<Output = io::Result<C>>,
) -> io::Result<(A, B, C)> {
    let (mut a, mut b, mut c) = (pin!(a), pin!(b), pin!(c));
    let (mut ra, mut rb, mut rc) = (None, None, None);
    poll_fn(|cx| -> Poll<io::Result<()>> {
        if ra.is_none() {
            if let Poll::Ready(r) = a.as_mut().poll(cx) {
                ra = Some(r?);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(r) = b.as_mut().poll(cx) {
                rb = Some(r?);
            }
        }
        if rc.is_none() {
            if let Poll::Ready(r) = c.as_mut().poll(cx) {
                rc = Some(r?);
            }
        }
        if ra.is_some() && rb.is_some() && rc.is_some() {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    })
    .await?;
    match (ra, rb, rc) {
        (Some(a), Some(b), Some(c)) => Ok((a, b, c)),
        _ => unreachable!("all three finished"),
    }
}

impl State {
    fn reaped(&mut self, status: ExitStatus) {
        self.status = Some(status);
        // Closes the pidfd, if any; std's record of the child goes with it.
        self.running = None;
    }
}

impl Drop for State {
    fn drop(&mut self) {
        let Some(mut running) = self.running.take() else {
            reap_orphans();
            return;
        };
        if self.kill_on_drop {
            let _ = running.child.kill();
        }
        running.reap_in_background();
    }
}
