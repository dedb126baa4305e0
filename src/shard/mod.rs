//! Thread-per-core shards: N threads, each with its own [`Runtime`](crate::Runtime),
//! optionally pinned to a CPU, sharing nothing by default.
//!
//! [`Shards::run`] (from [`Builder::build`]) runs one future per shard, made by a closure that
//! gets the shard's [`Shard`] info, and returns each shard's output, or its panic, once all
//! are done.
//! [`spawn_on`] sends a `Send` future to another shard through that shard's [`Handle`],
//! which wakes its ring.
#![forbid(unsafe_code)]

mod channel;
mod shutdown;

pub use channel::{channel, Receiver, SendError, Sender, TrySendError};
pub use shutdown::{Shutdown, Triggered};

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::sync::{Arc, OnceLock};

use crate::runtime::{Builder as RuntimeBuilder, Handle};
use crate::task::RemoteJoinHandle;

/// Where a future runs: its shard's index and how many shards there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    id: usize,
    count: usize,
}

impl Shard {
    /// This shard's index, `0..count()`.
    pub fn id(&self) -> usize {
        self.id
    }

    /// How many shards run.
    pub fn count(&self) -> usize {
        self.count
    }
}

thread_local! {
    /// The handles of every shard of the group this thread belongs to.
    static GROUP: RefCell<Option<Arc<[Handle]>>> = const { RefCell::new(None) };
}

/// Configures a group of shards.
///
/// # Examples
///
/// ```
/// let outputs = ringloop::shard::Builder::new()
///     .shards(2)
///     .pin_cores(false)
///     .build()?
///     .run(|shard| async move { shard.id() * 10 });
/// let outputs: Vec<usize> = outputs.into_iter().map(|r| r.unwrap()).collect();
/// assert_eq!(outputs, vec![0, 10]);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    shards: usize,
    pin: bool,
    runtime: RuntimeBuilder,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// One shard per CPU this process may run on, pinned.
    pub fn new() -> Builder {
        Builder {
            shards: allowed_cpus().len().max(1),
            pin: true,
            runtime: RuntimeBuilder::new(),
        }
    }

    /// How many shards (threads) to run.
    pub fn shards(&mut self, shards: usize) -> &mut Self {
        self.shards = shards;
        self
    }

    /// Pin shard `i` to the `i`-th CPU this process may run on (default: yes).
    pub fn pin_cores(&mut self, pin: bool) -> &mut Self {
        self.pin = pin;
        self
    }

    /// The settings each shard's runtime is built with.
    pub fn runtime(&mut self, runtime: RuntimeBuilder) -> &mut Self {
        self.runtime = runtime;
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for zero shards, or for pinning more shards than the CPUs this process
    /// may use (run unpinned, or fewer shards).
    pub fn build(&self) -> io::Result<Shards> {
        if self.shards == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "shard::Builder: zero shards",
            ));
        }
        let cpus = allowed_cpus();
        if self.pin && self.shards > cpus.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "shard::Builder: {} pinned shards but this process may use {} CPUs; \
                     use fewer shards or pin_cores(false)",
                    self.shards,
                    cpus.len()
                ),
            ));
        }
        Ok(Shards {
            config: self.clone(),
            cpus,
        })
    }
}

/// A checked shard configuration, ready to [`run`](Shards::run).
#[derive(Debug)]
pub struct Shards {
    config: Builder,
    cpus: Vec<usize>,
}

/// A shard's result: its future's output, or the payload of its panic (or of a failure to
/// start its runtime, as an `io::Error` payload).
pub type ShardResult<T> = Result<T, Box<dyn Any + Send + 'static>>;

impl Shards {
    /// Runs `make(shard)` as the main future of every shard and waits for all of them.
    ///
    /// Each shard's future runs on its own thread and runtime; tasks it spawns stay there.
    /// Returns the outputs in shard order. A shard that panics does not stop the others.
    pub fn run<F, Fut>(&self, make: F) -> Vec<ShardResult<Fut::Output>>
    where
        F: Fn(Shard) -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let count = self.config.shards;
        let make = Arc::new(make);
        let handles: Arc<OnceLock<Arc<[Handle]>>> = Arc::new(OnceLock::new());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<(usize, Option<Handle>)>();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let go_rx = Arc::new(std::sync::Mutex::new(go_rx));
        let threads: Vec<_> = (0..count)
            .map(|id| {
                let make = make.clone();
                let handles = handles.clone();
                let ready_tx = ready_tx.clone();
                let go_rx = go_rx.clone();
                let runtime = self.config.runtime.clone();
                let cpu = self.config.pin.then(|| self.cpus[id]);
                std::thread::Builder::new()
                    .name(format!("ringloop-shard-{id}"))
                    .spawn(move || -> ShardResult<Fut::Output> {
                        let pinned = cpu.map_or(Ok(()), pin_to);
                        let rt = match pinned.and_then(|()| runtime.build()) {
                            Ok(rt) => rt,
                            Err(e) => {
                                let _ = ready_tx.send((id, None));
                                return Err(Box::new(e));
                            }
                        };
                        let _ = ready_tx.send((id, Some(rt.handle())));
                        // Wait until every shard's handle is known, so spawn_on works at once.
                        let _ = go_rx.lock().map(|rx| rx.recv());
                        let group = handles.get().cloned();
                        GROUP.with(|g| *g.borrow_mut() = group);
                        let output = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            rt.block_on(make(Shard { id, count }))
                        }));
                        GROUP.with(|g| *g.borrow_mut() = None);
                        output
                    })
            })
            .collect();
        drop(ready_tx);
        let mut slots: Vec<Option<Handle>> = vec![None; count];
        for (id, handle) in ready_rx
            .iter()
            .take(threads.iter().filter(|t| t.is_ok()).count())
        {
            slots[id] = handle;
        }
        let group: Vec<Handle> = slots.iter().flatten().cloned().collect();
        if group.len() == count {
            let _ = handles.set(group.into());
        }
        for _ in 0..count {
            let _ = go_tx.send(());
        }
        threads
            .into_iter()
            .map(|thread| match thread {
                Ok(thread) => thread.join().unwrap_or_else(Err),
                Err(e) => Err(Box::new(e) as Box<dyn Any + Send>),
            })
            .collect()
    }
}

/// Runs `future` on shard `id` of the current group (any thread of the group may call it).
///
/// # Panics
///
/// Outside a shard, or if `id` is not a shard of the group.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let done = Arc::new(AtomicBool::new(false));
/// let results = ringloop::shard::Builder::new()
///     .shards(2)
///     .pin_cores(false)
///     .build()?
///     .run(move |shard| {
///         let done = done.clone();
///         async move {
///             if shard.id() == 0 {
///                 let name = ringloop::shard::spawn_on(1, async {
///                     std::thread::current().name().map(String::from)
///                 });
///                 let name = name.await.unwrap();
///                 done.store(true, Ordering::SeqCst);
///                 name
///             } else {
///                 // Shard 1 keeps running (and serving shard 0) until shard 0 has its answer.
///                 while !done.load(Ordering::SeqCst) {
///                     ringloop::time::sleep(std::time::Duration::from_millis(1)).await;
///                 }
///                 None
///             }
///         }
///     });
/// assert_eq!(results[0].as_ref().unwrap().as_deref(), Some("ringloop-shard-1"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[track_caller]
pub fn spawn_on<F>(id: usize, future: F) -> RemoteJoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handle = GROUP.with(|g| g.borrow().as_ref().and_then(|group| group.get(id).cloned()));
    match handle {
        Some(handle) => handle.spawn(future),
        None => panic!("shard::spawn_on({id}): not inside a shard group, or no shard {id}"),
    }
}

/// The shards of the current group, as a `Send + Sync` value: hand it to a thread that is not
/// a shard (a blocking job, a thread of a library) so it can send work to the shards with
/// [`Group::spawn_on`].
///
/// # Panics
///
/// Outside a shard group.
///
/// # Examples
///
/// ```
/// use ringloop::shard::Shutdown;
///
/// let done = Shutdown::new();
/// let results = ringloop::shard::Builder::new()
///     .shards(2)
///     .pin_cores(false)
///     .build()?
///     .run(move |shard| {
///         let done = done.clone();
///         async move {
///             if shard.id() != 0 {
///                 done.wait().await; // keep serving until shard 0 has its answer
///                 return None;
///             }
///             let group = ringloop::shard::group();
///             // A plain thread, not a runtime, asks shard 1 to do something.
///             let answer = std::thread::spawn(move || group.spawn_on(1, async { 6 * 7 }))
///                 .join()
///                 .unwrap();
///             let answer = answer.await.unwrap();
///             done.trigger();
///             Some(answer)
///         }
///     });
/// assert_eq!(*results[0].as_ref().unwrap(), Some(42));
/// # Ok::<(), std::io::Error>(())
/// ```
#[track_caller]
pub fn group() -> Group {
    match GROUP.with(|g| g.borrow().clone()) {
        Some(handles) => Group { handles },
        None => panic!("shard::group(): not inside a shard group"),
    }
}

/// Every shard of a group, reachable from any thread; from [`group`].
#[derive(Debug, Clone)]
pub struct Group {
    handles: Arc<[Handle]>,
}

impl Group {
    /// How many shards the group has.
    pub fn count(&self) -> usize {
        self.handles.len()
    }

    /// Shard `id`'s runtime handle.
    pub fn handle(&self, id: usize) -> Option<&Handle> {
        self.handles.get(id)
    }

    /// Runs `future` on shard `id`, from any thread.
    ///
    /// # Panics
    ///
    /// If there is no shard `id`.
    #[track_caller]
    pub fn spawn_on<F>(&self, id: usize, future: F) -> RemoteJoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.handles.get(id) {
            Some(handle) => handle.spawn(future),
            None => panic!(
                "shard::Group::spawn_on({id}): the group has {} shards",
                self.handles.len()
            ),
        }
    }
}

/// The CPUs this process may run on, in order.
fn allowed_cpus() -> Vec<usize> {
    match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => (0..nix::sched::CpuSet::count())
            .filter(|cpu| set.is_set(*cpu).unwrap_or(false))
            .collect(),
        Err(_) => (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    }
}

fn pin_to(cpu: usize) -> io::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)?;
    Ok(())
}
