//! Shared helpers for the integration tests: a watchdog, fd counting, drop counters, pipes.
// Each test binary uses a different subset of these, and `pub` is how they share them.
#![allow(dead_code, unreachable_pub)]

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Aborts the test process if `body` runs longer than `limit`: a hang becomes a failure with a
/// message instead of a stuck CI job.
pub fn watchdog<T>(name: &str, limit: Duration, body: impl FnOnce() -> T) -> T {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let name = name.to_owned();
    let dog = std::thread::spawn(move || {
        if done_rx.recv_timeout(limit) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
            eprintln!("watchdog: test `{name}` still running after {limit:?}; aborting");
            std::process::abort();
        }
    });
    let out = body();
    drop(done_tx);
    dog.join().expect("watchdog thread");
    out
}

/// Number of open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// A pipe: (read end, write end), both blocking, close-on-exec.
pub fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2")
}

/// A buffer that counts how many of its kind are alive, to prove the runtime frees each
/// buffer exactly once and only after the kernel let go.
#[derive(Debug)]
pub struct CountedBuf {
    pub buf: Vec<u8>,
    alive: Arc<AtomicUsize>,
}

impl CountedBuf {
    pub fn new(len: usize, alive: &Arc<AtomicUsize>) -> CountedBuf {
        alive.fetch_add(1, Ordering::SeqCst);
        CountedBuf {
            buf: vec![0; len],
            alive: alive.clone(),
        }
    }
}

impl Drop for CountedBuf {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

// SAFETY: delegates to the inner Vec, whose heap memory does not move with the struct.
unsafe impl ringloop::IoBuf for CountedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.buf.stable_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.buf.bytes_init()
    }
    fn bytes_total(&self) -> usize {
        self.buf.bytes_total()
    }
}

// SAFETY: delegates to the inner Vec.
unsafe impl ringloop::IoBufMut for CountedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.buf.stable_mut_ptr()
    }
    unsafe fn set_init(&mut self, init: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.buf.set_init(init) }
    }
}

/// A future that counts its polls and its drop.
pub struct Counted<F> {
    pub inner: F,
    pub polls: Arc<AtomicUsize>,
    pub drops: Arc<AtomicUsize>,
}

impl<F: std::future::Future + Unpin> std::future::Future for Counted<F> {
    type Output = F::Output;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        std::pin::Pin::new(&mut self.inner).poll(cx)
    }
}

impl<F> Drop for Counted<F> {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Runs the current test binary again as a child with `filter` as the only test and `env` set,
/// and returns its exit status and combined output. The child sees `RINGLOOP_CHILD=1`.
pub fn run_child(filter: &str, env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let exe = std::env::current_exe().expect("current test binary");
    let mut cmd = std::process::Command::new(exe);
    cmd.args([filter, "--exact", "--nocapture", "--test-threads=1"])
        .env("RINGLOOP_CHILD", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("spawn child test process");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, text)
}

/// Whether this process is a child started by [`run_child`].
pub fn is_child() -> bool {
    std::env::var_os("RINGLOOP_CHILD").is_some()
}

/// Runs `body` alone in a child process (this test binary, filtered to `test_name`), so that
/// process-wide counts such as open fds are not disturbed by tests running in parallel.
/// `test_name` must be the test function's name.
pub fn isolated(test_name: &str, body: impl FnOnce()) {
    if is_child() {
        body();
        return;
    }
    let (status, output) = run_child(test_name, &[]);
    assert!(
        status.success(),
        "isolated test `{test_name}` failed in its child process ({status}):\n{output}"
    );
    assert!(
        output.contains("1 passed"),
        "child ran no test named `{test_name}`:\n{output}"
    );
}
