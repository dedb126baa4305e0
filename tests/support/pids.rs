//! Finding a child process again by its pid: whether it still exists, whether it is a zombie,
//! waiting for it to be reaped, and killing it if a test fails while it runs. Shared by the
//! process tests inside the crate (`src/process/tests.rs`) and outside it (`tests/process.rs`),
//! which include this file by path; each provides `sleep` (the runtime's) in the parent module.

use std::time::{Duration, Instant};

pub(crate) fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether `pid` is a zombie: exited, not yet reaped.
pub(crate) fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after_name = &stat[stat.rfind(')')? + 1..];
            after_name.split_whitespace().next().map(|s| s == "Z")
        })
        .unwrap_or(false)
}

/// Waits, on the runtime, at most `limit` for `pid` to be gone (exited and reaped).
pub(crate) async fn gone_within(pid: u32, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if !exists(pid) {
            return true;
        }
        super::sleep(Duration::from_millis(5)).await;
    }
    !exists(pid)
}

/// SIGKILLs `pid` if the test panics while it still exists. Only then: once a child is
/// reaped, its pid may already belong to another test's child.
pub(crate) struct Cleanup(pub(crate) u32);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if std::thread::panicking() && exists(self.0) {
            let pid = nix::unistd::Pid::from_raw(self.0 as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}
