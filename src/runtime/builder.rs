//! `Builder`: the one home of the runtime's defaults.

use std::io;
use std::time::Duration;

use super::scheduler::{ClassConfig, Latency, TaskClass};
use super::{CoreConfig, Runtime};
use crate::driver::ring::RingConfig;

/// Default submission queue size.
const DEFAULT_ENTRIES: u32 = 256;
/// Default size limit of the `spawn_blocking` pool.
const DEFAULT_MAX_BLOCKING_THREADS: usize = 64;
/// Default time an idle blocking thread waits for work before it exits.
const DEFAULT_BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(10);
/// Default number of task polls between two looks at the ring and the timers.
const DEFAULT_EVENT_INTERVAL: u32 = 61;

/// Configures and builds a [`Runtime`].
///
/// Timers and I/O are always on; there is nothing to enable.
///
/// # Examples
///
/// ```
/// let rt = ringloop::Builder::new().entries(64).build()?;
/// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Environment
///
/// `RINGLOOP_RING_FLAGS=none` (or `coop`) turns off the optional ring setup flags by default,
/// and `RINGLOOP_FALLBACK=multishot,buf_rings,ops` (or `all`) the optional kernel features, so a
/// whole test suite can run on the fallback paths without code changes. The builder's own
/// switches override both.
#[derive(Debug, Clone)]
pub struct Builder {
    /// The ring's parameters, handed over as they are.
    ring: RingConfig,
    event_interval: u32,
    timer_spin: Duration,
    max_blocking_threads: usize,
    blocking_keep_alive: Duration,
    /// Class 0 is the default class.
    classes: Vec<ClassConfig>,
    max_tasks: Option<usize>,
    start_paused: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// The defaults: 256 SQ entries, a CQ twice that, the newest ring flags the kernel has.
    pub fn new() -> Builder {
        let flags = std::env::var("RINGLOOP_RING_FLAGS").unwrap_or_default();
        let (single_issuer, defer_taskrun, coop_taskrun) = match flags.as_str() {
            "none" => (false, false, false),
            "coop" => (false, false, true),
            _ => (true, true, true),
        };
        let fallback = std::env::var("RINGLOOP_FALLBACK").unwrap_or_default();
        let off = |feature: &str| {
            fallback
                .split(',')
                .any(|f| f.trim() == feature || f.trim() == "all")
        };
        Builder {
            ring: RingConfig {
                entries: DEFAULT_ENTRIES,
                cq_entries: None,
                single_issuer,
                defer_taskrun,
                coop_taskrun,
                multishot: !off("multishot"),
                buf_rings: !off("buf_rings"),
                newer_ops: !off("ops"),
                #[cfg(test)]
                faults: None,
            },
            event_interval: DEFAULT_EVENT_INTERVAL,
            timer_spin: Duration::ZERO,
            max_blocking_threads: DEFAULT_MAX_BLOCKING_THREADS,
            blocking_keep_alive: DEFAULT_BLOCKING_KEEP_ALIVE,
            classes: vec![ClassConfig::default_class()],
            max_tasks: None,
            start_paused: false,
        }
    }

    /// Adds a scheduling class: tasks spawned into it with [`spawn_in`](crate::spawn_in)
    /// share the CPU with other classes' ready tasks in proportion to `shares`, measured by
    /// the time their polls take. The default class ([`spawn`](crate::spawn)) has 100 shares.
    /// A [`Latency::Sensitive`] class runs at the next scheduling point once ready, ahead of
    /// `Normal` classes, within a bounded lead (2 ms of CPU) over its fair share.
    ///
    /// # Panics
    ///
    /// If `shares` is 0, or more than 255 classes are added.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::Latency;
    ///
    /// let mut builder = ringloop::Builder::new();
    /// let batch = builder.task_class("batch", 25, Latency::Normal);
    /// let ui = builder.task_class("ui", 100, Latency::Sensitive);
    /// let rt = builder.build()?;
    /// rt.block_on(async {
    ///     let report = ringloop::spawn_in(&batch, async { "crunched" });
    ///     let click = ringloop::spawn_in(&ui, async { "answered" });
    ///     assert_eq!(click.await.unwrap(), "answered");
    ///     assert_eq!(report.await.unwrap(), "crunched");
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn task_class(&mut self, name: &str, shares: u32, latency: Latency) -> TaskClass {
        assert!(shares > 0, "ringloop: task class `{name}` needs shares > 0");
        let index = u8::try_from(self.classes.len())
            .unwrap_or_else(|_| panic!("ringloop: at most 255 task classes (adding `{name}`)"));
        let name: std::sync::Arc<str> = std::sync::Arc::from(name);
        self.classes.push(ClassConfig {
            name: name.clone(),
            shares,
            latency,
            max_tasks: None,
        });
        TaskClass { index, name }
    }

    /// Admission limit: [`try_spawn`](crate::try_spawn) and
    /// [`try_spawn_in`](crate::try_spawn_in) refuse a task (handing its future back) while
    /// `max` tasks are alive in the runtime, so a server can shed load instead of queueing
    /// without bound. `spawn` itself always admits: it is for work that must run.
    pub fn max_tasks(&mut self, max: usize) -> &mut Self {
        self.max_tasks = Some(max);
        self
    }

    /// Admission limit for one class, as [`max_tasks`](Builder::max_tasks) for the runtime.
    ///
    /// # Panics
    ///
    /// If `class` was not made by this builder.
    #[track_caller]
    pub fn max_tasks_in(&mut self, class: &TaskClass, max: usize) -> &mut Self {
        let config = self
            .classes
            .get_mut(usize::from(class.index))
            .filter(|c| std::sync::Arc::ptr_eq(&c.name, &class.name))
            .unwrap_or_else(|| panic!("ringloop: task class {class:?} is not from this builder"));
        config.max_tasks = Some(max);
        self
    }

    /// Submission queue entries (rounded up to a power of two by the kernel). More operations
    /// than this may be in flight at once: a full queue is submitted and refilled.
    pub fn entries(&mut self, entries: u32) -> &mut Self {
        self.ring.entries = entries.max(1);
        self
    }

    /// Completion queue entries (default: twice `entries`; must be at least `entries`).
    /// Completions that do not fit wait in the kernel and are never lost.
    pub fn cq_entries(&mut self, entries: u32) -> &mut Self {
        self.ring.cq_entries = Some(entries);
        self
    }

    /// How many task polls run between two looks at the ring and the timers (default 61).
    pub fn event_interval(&mut self, polls: u32) -> &mut Self {
        self.event_interval = polls.max(1);
        self
    }

    /// Busy-waits the last `spin` before a timer deadline instead of sleeping in the kernel
    /// (default: zero, never spin). A sleeping thread wakes tens of microseconds late, more on
    /// a loaded or virtual machine; spinning trades up to `spin` of CPU per timer wake-up for
    /// wake-ups within a few microseconds of the deadline.
    pub fn timer_spin(&mut self, spin: Duration) -> &mut Self {
        self.timer_spin = spin;
        self
    }

    /// Starts the runtime with its clock paused (default: running), as
    /// [`time::pause`](crate::time::pause) would at the start of `block_on`: for tests of
    /// timeouts, retries and intervals that should not take their real time. See
    /// [`time::pause`](crate::time::pause) for when a paused clock moves.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ringloop::time::{self, Instant};
    ///
    /// let rt = ringloop::Builder::new().start_paused(true).build()?;
    /// rt.block_on(async {
    ///     let start = Instant::now();
    ///     // A day of retries, every hour: no real time passes.
    ///     let mut retries = time::interval(Duration::from_secs(3600));
    ///     for _ in 0..24 {
    ///         retries.tick().await;
    ///     }
    ///     assert_eq!(start.elapsed(), Duration::from_secs(23 * 3600));
    /// });
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn start_paused(&mut self, paused: bool) -> &mut Self {
        self.start_paused = paused;
        self
    }

    /// At most this many threads run [`spawn_blocking`](crate::spawn_blocking) jobs at once
    /// (default 64); more jobs wait in a queue.
    pub fn max_blocking_threads(&mut self, threads: usize) -> &mut Self {
        self.max_blocking_threads = threads.max(1);
        self
    }

    /// How long an idle blocking thread waits for work before it exits (default 10 s).
    pub fn blocking_keep_alive(&mut self, keep_alive: Duration) -> &mut Self {
        self.blocking_keep_alive = keep_alive;
        self
    }

    /// Allow `IORING_SETUP_SINGLE_ISSUER` (default: yes, where the kernel has it).
    pub fn single_issuer(&mut self, allow: bool) -> &mut Self {
        self.ring.single_issuer = allow;
        self
    }

    /// Allow `IORING_SETUP_DEFER_TASKRUN` (default: yes, where the kernel has it).
    pub fn defer_taskrun(&mut self, allow: bool) -> &mut Self {
        self.ring.defer_taskrun = allow;
        self
    }

    /// Allow `IORING_SETUP_COOP_TASKRUN` (default: yes, where the kernel has it).
    pub fn coop_taskrun(&mut self, allow: bool) -> &mut Self {
        self.ring.coop_taskrun = allow;
        self
    }

    /// Allow multishot requests (default: yes, on Linux 5.19+). Listeners keep one multishot
    /// accept armed and [`recv_pooled`](crate::net::TcpStream::recv_pooled) one multishot
    /// receive; without them, each accepted connection and each received chunk costs one
    /// request, re-armed as it completes. Nothing else changes: no connection or byte is lost
    /// either way. [`RuntimeStats::multishot`](crate::RuntimeStats::multishot) says which
    /// path a runtime is on.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringloop::Builder::new().multishot(false).build()?;
    /// assert!(!rt.stats().multishot);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn multishot(&mut self, allow: bool) -> &mut Self {
        self.ring.multishot = allow;
        self
    }

    /// Allow provided-buffer rings (default: yes, on Linux 5.19+, and if the kernel accepts
    /// the first one). A [`BufferPool`](crate::net::BufferPool) is then a ring the kernel picks
    /// a buffer from only when data arrives, so idle connections hold none. Without them the
    /// pool keeps its buffers itself and lends one to each armed receive: the same API and
    /// bytes, but an idle connection holds a buffer while it waits.
    /// [`RuntimeStats::buf_rings`](crate::RuntimeStats::buf_rings) says which path a runtime
    /// is on.
    pub fn buf_rings(&mut self, allow: bool) -> &mut Self {
        self.ring.buf_rings = allow;
        self
    }

    /// Allow the newer opcodes that have a fallback, where the kernel has them (default:
    /// yes): `FTRUNCATE` for [`File::set_len`](crate::fs::File::set_len) (Linux 6.9),
    /// `LINKAT` and `SYMLINKAT` for [`fs::hard_link`](crate::fs::hard_link) and
    /// [`fs::symlink`](crate::fs::symlink) (5.15), and `WAITID` for
    /// [`Child::wait`](crate::process::Child::wait) (6.7). Without them the file calls run on
    /// the blocking pool and a wait polls the child's pidfd, as on an older kernel.
    pub fn newer_ops(&mut self, allow: bool) -> &mut Self {
        self.ring.newer_ops = allow;
        self
    }

    /// Tests only: a ring that injects the failures of `plan`.
    #[cfg(test)]
    pub(crate) fn faults(&mut self, plan: crate::driver::faults::FaultPlan) -> &mut Self {
        self.ring.faults = Some(plan);
        self
    }

    /// Builds the runtime on the calling thread.
    ///
    /// # Errors
    ///
    /// If io_uring is unavailable (old kernel, `io_uring_disabled`, seccomp), lacks a feature
    /// ringloop needs, or resources (memory, fds) run out; the error says which.
    pub fn build(&self) -> io::Result<Runtime> {
        Runtime::with_config(
            self.ring,
            CoreConfig {
                event_interval: self.event_interval as usize,
                timer_spin: self.timer_spin,
                blocking: (self.max_blocking_threads, self.blocking_keep_alive),
                classes: self.classes.clone(),
                max_tasks: self.max_tasks,
                start_paused: self.start_paused,
            },
        )
    }
}
