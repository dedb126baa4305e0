//! Shared helpers for the integration tests: a watchdog, fd counting, drop counters, pipes.
// Each test binary uses a different subset of these, and `pub` is how they share them.
#![allow(dead_code, unreachable_pub)]

pub mod echo;

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

/// `target/<profile>/examples/<name>`, built by `cargo test` next to the test binary; `None`
/// if it was not built.
pub fn example_binary(name: &str) -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("examples").join(name);
    path.exists().then_some(path)
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

/// Polls `fut` once with the caller's context and returns what it said. An operation's
/// future submits its SQE on its first poll, so this arms an operation without awaiting it.
pub async fn poll_once<F: std::future::Future + Unpin>(fut: &mut F) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut *fut).poll(cx))).await
}

/// Inside a runtime: yields, then sleeps 1 ms at a time, until `cond` holds. Panics with
/// `what` if it still does not after `limit` (a safety net, not a sequencing device).
pub async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    let mut turns = 0u32;
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "still waiting after {limit:?}: {what}"
        );
        if turns < 64 {
            ringloop::task::yield_now().await;
        } else {
            ringloop::time::sleep(Duration::from_millis(1)).await;
        }
        turns += 1;
    }
}

/// A path in the temp directory unique to this process and `name`.
pub fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ringloop-test-{}-{name}", std::process::id()))
}

/// What a [`Witness`] saw when it was dropped.
#[derive(Debug, Default)]
pub struct WitnessLog {
    /// How many times the buffer was dropped (must end at exactly 1).
    pub drops: std::cell::Cell<u32>,
    /// The bytes the kernel had written into it (its non-zero prefix) when it was dropped.
    pub data: std::cell::RefCell<Vec<u8>>,
}

/// A zero-filled, drop-counted read buffer ([`CountedBuf`] inside) that records, when it is
/// dropped, how many times that happened and which bytes the kernel wrote into it. The tests
/// write only non-zero bytes, so a read whose future was dropped can still be seen to have won
/// (got data) or lost (cancelled) its race with the cancel.
#[derive(Debug)]
pub struct Witness {
    buf: CountedBuf,
    log: std::rc::Rc<WitnessLog>,
}

impl Witness {
    pub fn new(len: usize, alive: &Arc<AtomicUsize>) -> (Witness, std::rc::Rc<WitnessLog>) {
        let log = std::rc::Rc::new(WitnessLog::default());
        (
            Witness {
                buf: CountedBuf::new(len, alive),
                log: log.clone(),
            },
            log,
        )
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        // The non-zero prefix, found with std's (optimized) memchr: a byte loop over 64 KiB
        // buffers dominates a debug-build test that drops thousands of them.
        let buf = &self.buf.buf;
        let written =
            std::ffi::CStr::from_bytes_until_nul(buf).map_or(buf.len(), |s| s.count_bytes());
        *self.log.data.borrow_mut() = buf[..written].to_vec();
        self.log.drops.set(self.log.drops.get() + 1);
    }
}

// SAFETY: delegates to the inner CountedBuf (a Vec), whose heap memory does not move.
unsafe impl ringloop::IoBuf for Witness {
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

// SAFETY: delegates to the inner CountedBuf.
unsafe impl ringloop::IoBufMut for Witness {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.buf.stable_mut_ptr()
    }
    unsafe fn set_init(&mut self, init: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.buf.set_init(init) }
    }
}

/// Bytes waiting in a pipe or socket (`FIONREAD`).
pub fn bytes_readable(fd: std::os::fd::BorrowedFd<'_>) -> usize {
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which points to a live local.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "FIONREAD: {}", std::io::Error::last_os_error());
    n as usize
}

/// Sets or clears `O_NONBLOCK` on `fd`'s open file description.
pub fn set_nonblocking(fd: std::os::fd::BorrowedFd<'_>, nonblocking: bool) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).expect("F_GETFL"));
    let flags = if nonblocking {
        flags | OFlag::O_NONBLOCK
    } else {
        flags - OFlag::O_NONBLOCK
    };
    fcntl(fd, FcntlArg::F_SETFL(flags)).expect("F_SETFL");
}

/// Fills a pipe until a write would block, leaving its write end blocking again. Returns the
/// number of bytes written.
pub fn fill_pipe(write_end: std::os::fd::BorrowedFd<'_>) -> usize {
    set_nonblocking(write_end, true);
    let chunk = [0x5au8; 4096];
    let mut total = 0;
    loop {
        match nix::unistd::write(write_end, &chunk) {
            Ok(n) => total += n,
            Err(nix::errno::Errno::EAGAIN) => break,
            Err(e) => panic!("filling a pipe: {e}"),
        }
    }
    set_nonblocking(write_end, false);
    total
}

/// How long a test body may run under [`run`] before it fails instead of hanging.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Runs a test body on a fresh runtime, failing it (instead of hanging) after [`LIMIT`].
pub fn run<F: std::future::Future>(body: F) -> F::Output {
    ringloop::block_on(async {
        ringloop::time::timeout(LIMIT, body)
            .await
            .expect("test timed out")
    })
}

thread_local! {
    // Per thread: the code measured runs on the test's thread (ringloop's runtime is), while
    // the test harness's own thread allocates when it likes (its timers, its output) and must
    // not count. Const-initialised and without a destructor, so reading it never allocates.
    static ALLOCATIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A global allocator that counts allocations: a test binary installs it with
/// `#[global_allocator] static GLOBAL: CountingAlloc = CountingAlloc;` and reads
/// [`allocations`] around the code that must not allocate.
pub struct CountingAlloc;

// SAFETY: forwards to the system allocator, only counting.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // `try_with`: a thread being torn down has no counter left, and is not measured.
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded from the caller.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

/// Allocations so far on this thread through [`CountingAlloc`] (0 where it is not
/// installed).
pub fn allocations() -> usize {
    ALLOCATIONS.with(std::cell::Cell::get)
}
