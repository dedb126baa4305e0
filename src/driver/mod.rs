//! The driver: one io_uring, the slots of its in-flight operations, submit, wait, reap, dispatch.
//!
//! The driver never sees a task. It stores the `Waker` an [`Op`](op::Op) left in its slot and
//! wakes it when the CQE arrives. Everything it must do that could run user code (wake a
//! waker, drop a user's buffer) happens after its `RefCell` borrow is released.
//!
//! # Invariants
//!
//! - (D1) The doorbell buffer is owned by the driver and leaked, never freed, if its read is
//!   still in flight when the driver is dropped.
//! - (D2) Resources of an operation the kernel never answered are leaked at shutdown, never
//!   freed (see [`slots::Lifecycle::Lost`]).
//! - (D3) An SQE in the backlog has not reached the kernel: the op it belongs to stays in flight
//!   until it does, and cancelling it there completes it at once with `ECANCELED` (its
//!   resources may be freed then, shutdown included).

pub(crate) mod buf_ring;
#[cfg(test)]
pub(crate) mod faults;
pub(crate) mod fd;
pub(crate) mod fifo;
pub(crate) mod op;
pub(crate) mod ring;
pub(crate) mod signal;
pub(crate) mod slots;
pub(crate) mod sockaddr;
#[cfg(feature = "tracing")]
mod trace;

use std::any::Any;
use std::cell::{Cell, RefCell, RefMut};
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue, types};

use op::{Completion, Handler, Orphan};
use ring::{Ring, RingConfig, RingFlags};
use slots::{Dispatch, Lifecycle, OpId, Slots, StreamQueue, CANCEL, DOORBELL};

/// How long shutdown waits for cancelled operations before it leaks what the kernel still owns.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Whether a reactor turn may block in the ring.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    /// Submit and reap what is already complete; never sleep.
    No,
    /// Sleep until a completion arrives or the timeout passes (`None`: no timeout).
    Until(Option<Duration>),
}

/// Driver counters, copied into `RuntimeStats`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DriverStats {
    pub(crate) enters: u64,
    pub(crate) sqes_submitted: u64,
    pub(crate) cqes_reaped: u64,
    pub(crate) cq_overflows: u64,
    pub(crate) cq_overflow_flushes: u64,
    pub(crate) cancels_submitted: u64,
    pub(crate) unknown_completions: u64,
    pub(crate) in_flight: u64,
    pub(crate) flags: RingFlags,
    pub(crate) multishot: bool,
    pub(crate) buf_rings: bool,
    pub(crate) doorbell_failures: u64,
    pub(crate) backlogged: u64,
}

struct Doorbell {
    fd: RawFd,
    /// (D1) the 8 bytes the eventfd read writes into.
    buf: Option<Box<[u8; 8]>>,
    armed: bool,
    /// Reads in a row that failed.
    failing: u32,
    /// Reads that failed since the start.
    failures: u64,
    /// After [`DOORBELL_RETRIES`] failures in a row: no read is armed before this instant,
    /// and no wait sleeps past it (cross-thread wakes are then seen by polling).
    pause_until: Option<Instant>,
}

/// Failed doorbell reads in a row that are re-armed at once; after them the doorbell pauses.
const DOORBELL_RETRIES: u32 = 3;
/// The first pause of a failing doorbell; it doubles up to [`DOORBELL_MAX_PAUSE`].
const DOORBELL_MIN_PAUSE: Duration = Duration::from_millis(1);
/// The longest a cross-thread wake can go unseen while the doorbell keeps failing.
const DOORBELL_MAX_PAUSE: Duration = Duration::from_millis(100);

impl Doorbell {
    /// The armed read completed with `result`. A read that keeps failing (an error the kernel
    /// returns at once) must not be re-armed at once forever: every turn would wake up to its
    /// failure, a spin. It pauses instead, longer each time, and recovers on the next success.
    fn completed(&mut self, result: i32) {
        self.armed = false;
        if result >= 0 || result == -libc::ECANCELED {
            self.failing = 0;
            self.pause_until = None;
            return;
        }
        self.failing += 1;
        self.failures += 1;
        #[cfg(feature = "tracing")]
        tracing::warn!(
            errno = -result,
            failing = self.failing,
            "the doorbell's read failed: cross-thread wakes wait for the next turn"
        );
        if self.failing >= DOORBELL_RETRIES {
            let doublings = (self.failing - DOORBELL_RETRIES).min(16);
            let pause = (DOORBELL_MIN_PAUSE * (1 << doublings)).min(DOORBELL_MAX_PAUSE);
            self.pause_until = Some(Instant::now() + pause);
        }
    }

    /// Whether a read may be armed now.
    fn may_arm(&mut self) -> bool {
        match self.pause_until {
            None => true,
            Some(until) if Instant::now() >= until => {
                self.pause_until = None;
                true
            }
            Some(_) => false,
        }
    }

    /// `timeout`, shortened so that a wait ends when a paused doorbell may be armed again.
    fn cap(&self, timeout: Option<Duration>) -> Option<Duration> {
        let Some(until) = self.pause_until else {
            return timeout;
        };
        let left = until.saturating_duration_since(Instant::now());
        Some(timeout.map_or(left, |t| t.min(left)))
    }
}

impl Drop for Doorbell {
    fn drop(&mut self) {
        if self.armed {
            // (D1) the kernel may still write into the buffer: leak it.
            std::mem::forget(self.buf.take());
        }
    }
}

struct Inner {
    ring: Ring,
    slots: Slots,
    doorbell: Doorbell,
    /// Cancels that did not fit in the SQ: queued, never dropped.
    pending_cancels: VecDeque<u64>,
    /// SQEs that found the SQ full while the kernel took no more (`EBUSY`, `EAGAIN`): queued
    /// in order, never dropped, and pushed ahead of newer ones by the next turn.
    backlog: VecDeque<squeue::Entry>,
    dispatch: Vec<Dispatch>,
    /// Task wakers of completed ops, handed to the runtime after the turn (see `drain_woken`).
    woken: Vec<Waker>,
    cqes_reaped: u64,
    cancels_submitted: u64,
    overflow_flushes: u64,
    backlogged: u64,
    next_buf_group: u16,
    shut_down: bool,
}

pub(crate) struct Driver {
    inner: RefCell<Inner>,
    /// Listeners and pooled receives arm multishot requests (else one request per result).
    multishot: bool,
    /// Buffer pools register provided-buffer rings (else each receive is lent one buffer).
    /// Cleared if the kernel turns the first registration down as unknown.
    buf_rings: Cell<bool>,
    /// The newer opcodes that have a fallback may be used where the kernel has them.
    newer_ops: bool,
    /// File operations whose future lives (see `Op::submit_file`).
    clock_holds: Cell<usize>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}

impl Driver {
    /// Sets up the ring; `doorbell` is an eventfd whose read stays armed so other threads can
    /// wake a sleeping turn.
    pub(crate) fn new(config: RingConfig, doorbell: RawFd) -> io::Result<Driver> {
        let ring = Ring::new(config)?;
        for (code, name) in ring::REQUIRED {
            ring.require(code, name)?;
        }
        // Both arrived in 5.19; neither can be probed (a flag, a register call) before use.
        let new_enough = ring::kernel_version().is_some_and(|v| v >= (5, 19));
        Ok(Driver {
            multishot: config.multishot && new_enough,
            buf_rings: Cell::new(config.buf_rings && new_enough),
            newer_ops: config.newer_ops,
            clock_holds: Cell::new(0),
            inner: RefCell::new(Inner {
                ring,
                slots: Slots::default(),
                doorbell: Doorbell {
                    fd: doorbell,
                    buf: Some(Box::new([0; 8])),
                    armed: false,
                    failing: 0,
                    failures: 0,
                    pause_until: None,
                },
                pending_cancels: VecDeque::new(),
                backlog: VecDeque::new(),
                dispatch: Vec::with_capacity(256),
                woken: Vec::with_capacity(256),
                cqes_reaped: 0,
                cancels_submitted: 0,
                overflow_flushes: 0,
                backlogged: 0,
                next_buf_group: 0,
                shut_down: false,
            }),
        })
    }

    /// Queues an SQE in a new slot. If it cannot be queued the slot completes with the error.
    pub(crate) fn submit(&self, sqe: squeue::Entry) -> OpId {
        self.submit_as(sqe, Lifecycle::Submitted)
    }

    /// Queues a multishot SQE: its CQEs go to the returned queue, where its stream takes them.
    /// If the SQE cannot be queued the queue ends with the error.
    pub(crate) fn submit_multishot(&self, sqe: squeue::Entry) -> (OpId, Rc<StreamQueue>) {
        let queue = Rc::new(StreamQueue::default());
        let mut inner = self.inner.borrow_mut();
        let id = inner.slots.insert(Lifecycle::Streaming(queue.clone()));
        if let Err(errno) = inner.push_op(id, sqe) {
            // No waker yet: nobody has polled the stream.
            let _ = queue.push(Completion::failed(errno));
        }
        (id, queue)
    }

    /// The stream of a multishot op took its last CQE: free the slot.
    pub(crate) fn end_stream(&self, id: OpId) {
        let mut inner = self.inner.borrow_mut();
        if matches!(inner.slots.get_lifecycle(id), Some(Lifecycle::Streaming(_))) {
            free_slot(inner, id);
        }
    }

    /// Queues an SQE whose CQE goes to `handler` instead of a waiting future, in a new slot
    /// that stays the handler's (see [`resubmit_handled`](Self::resubmit_handled)) until
    /// [`release_handled`](Self::release_handled).
    ///
    /// # Errors
    ///
    /// The errno if the SQE could not be queued (no slot is kept: the handler is not called).
    pub(crate) fn submit_handled(
        &self,
        sqe: squeue::Entry,
        handler: Rc<dyn Handler>,
    ) -> Result<OpId, i32> {
        let mut inner = self.inner.borrow_mut();
        let id = inner.slots.insert(Lifecycle::Handled {
            handler,
            armed: true,
        });
        push_or_free(inner, id, sqe)
    }

    /// Queues the next SQE of a handler whose previous op completed, in the same slot under a
    /// new generation; returns the slot's new id.
    ///
    /// # Errors
    ///
    /// The errno if the SQE could not be queued; the slot is then freed, as if released.
    #[inline]
    pub(crate) fn resubmit_handled(&self, id: OpId, sqe: squeue::Entry) -> Result<OpId, i32> {
        let mut inner = self.inner.borrow_mut();
        if inner.shut_down {
            // Shutdown already freed the slot (see `shutdown`).
            return Err(libc::ECANCELED);
        }
        let Some(id) = inner.slots.rearm_handled(id) else {
            debug_assert!(
                false,
                "resubmitted a handled slot that is gone or still armed"
            );
            return Err(libc::EBADF);
        };
        push_or_free(inner, id, sqe)
    }

    /// Frees a handler's slot; nothing may be in flight in it.
    pub(crate) fn release_handled(&self, id: OpId) {
        let mut inner = self.inner.borrow_mut();
        let old = inner.slots.remove_parked(id);
        // The handler may be dropped with it: after the borrow.
        drop(inner);
        drop(old);
    }

    /// Asks the kernel to cancel a handled op; its handler still gets the (maybe cancelled)
    /// CQE. Cancelling an op that already completed does nothing.
    pub(crate) fn cancel_handled(&self, id: OpId) {
        let mut inner = self.inner.borrow_mut();
        if matches!(
            inner.slots.get_lifecycle(id),
            Some(Lifecycle::Handled { armed: true, .. })
        ) {
            inner.cancel(id.user_data());
        }
    }

    fn submit_as(&self, sqe: squeue::Entry, lifecycle: Lifecycle) -> OpId {
        let mut inner = self.inner.borrow_mut();
        let id = inner.slots.insert(lifecycle);
        #[cfg(feature = "tracing")]
        tracing::trace!(
            op = trace::opcode_name(sqe.get_opcode()),
            user_data = id.user_data(),
            "submit"
        );
        if let Err(errno) = inner.push_op(id, sqe) {
            *inner.slots.lifecycle(id) = Lifecycle::Completed(Completion::failed(errno));
        }
        id
    }

    pub(crate) fn poll_op(&self, id: OpId, cx: &mut Context<'_>) -> Poll<Completion> {
        let mut inner = self.inner.borrow_mut();
        let lifecycle = inner.slots.lifecycle(id);
        match lifecycle {
            Lifecycle::Completed(completion) => {
                let completion = *completion;
                inner.slots.remove(id);
                Poll::Ready(completion)
            }
            Lifecycle::Submitted => {
                *lifecycle = Lifecycle::Waiting(cx.waker().clone());
                Poll::Pending
            }
            Lifecycle::Waiting(waker) => {
                if !waker.will_wake(cx.waker()) {
                    waker.clone_from(cx.waker());
                }
                Poll::Pending
            }
            // (D2) the kernel may still own this op's memory: it can never be handed back.
            Lifecycle::Lost => Poll::Pending,
            Lifecycle::Ignored(_) | Lifecycle::Streaming(_) | Lifecycle::Handled { .. } => {
                unreachable!("poll_op on an op that is not single-shot and awaited")
            }
        }
    }

    /// The op's future (or stream) was dropped: keep its resources until the kernel is done.
    pub(crate) fn abandon(&self, id: OpId, mut orphan: Box<dyn Orphan>) {
        let mut inner = self.inner.borrow_mut();
        let lifecycle = inner.slots.lifecycle(id);
        if let Lifecycle::Streaming(queue) = lifecycle {
            // Results nobody will take: close their fds, return their buffers.
            for completion in queue.take_ready() {
                orphan.release(completion);
            }
            if queue.ended() {
                inner.slots.remove(id);
                drop(inner);
                drop(orphan);
            } else {
                let old = std::mem::replace(lifecycle, Lifecycle::Ignored(orphan));
                inner.cancel(id.user_data());
                drop(inner);
                drop(old);
            }
            return;
        }
        match lifecycle {
            Lifecycle::Completed(completion) => {
                let completion = *completion;
                inner.slots.remove(id);
                drop(inner);
                orphan.release(completion);
                drop(orphan);
            }
            Lifecycle::Submitted | Lifecycle::Waiting(_) => {
                let old = std::mem::replace(lifecycle, Lifecycle::Ignored(orphan));
                inner.cancel(id.user_data());
                drop(inner);
                drop(old);
            }
            Lifecycle::Lost => {
                inner.slots.remove(id);
                // (D2) never free what the kernel may still write into.
                std::mem::forget(orphan);
            }
            Lifecycle::Ignored(_) | Lifecycle::Streaming(_) | Lifecycle::Handled { .. } => {
                unreachable!("an op is abandoned once, by the future that awaits it")
            }
        }
    }

    /// How many faults the test ring injected so far.
    #[cfg(test)]
    pub(crate) fn faults_injected(&self) -> u64 {
        let inner = self.inner.borrow();
        inner.ring.faults.as_ref().map_or(0, |f| f.injected)
    }

    /// Whether listeners and pooled receives arm multishot requests.
    #[inline]
    pub(crate) fn multishot(&self) -> bool {
        self.multishot
    }

    /// Whether ops with `opcode` may be submitted: the kernel has it (by the probe taken at
    /// setup), and it is not one of the newer opcodes switched off by the builder.
    pub(crate) fn supports(&self, opcode: u8) -> bool {
        (self.newer_ops || !ring::NEWER_OPS.contains(&opcode))
            && self.inner.borrow().ring.supports(opcode)
    }

    /// Whether buffer pools register provided-buffer rings with the kernel.
    #[inline]
    pub(crate) fn buf_rings(&self) -> bool {
        self.buf_rings.get()
    }

    /// The kernel does not know provided-buffer rings: pools from now on keep their buffers.
    pub(crate) fn disable_buf_rings(&self) {
        self.buf_rings.set(false);
    }

    /// A fresh buffer group id for a provided-buffer ring.
    pub(crate) fn next_buf_group(&self) -> u16 {
        let mut inner = self.inner.borrow_mut();
        inner.next_buf_group = inner.next_buf_group.wrapping_add(1);
        inner.next_buf_group
    }

    /// Registers a provided-buffer ring with the kernel.
    ///
    /// # Safety
    ///
    /// As [`Ring::register_buf_ring`].
    pub(crate) unsafe fn register_buf_ring(
        &self,
        addr: u64,
        entries: u16,
        group: u16,
    ) -> io::Result<()> {
        let mut inner = self.inner.borrow_mut();
        if inner.shut_down {
            return Err(io::Error::other("the runtime has shut down"));
        }
        // SAFETY: forwarded from this function's contract.
        unsafe { inner.ring.register_buf_ring(addr, entries, group) }
    }

    /// Unregisters a provided-buffer ring; an error means the kernel may still use its memory.
    pub(crate) fn unregister_buf_ring(&self, group: u16) -> io::Result<()> {
        let mut inner = self.inner.borrow_mut();
        if inner.shut_down {
            return Err(io::Error::other("the runtime has shut down"));
        }
        inner.ring.unregister_buf_ring(group)
    }

    pub(crate) fn hold_clock(&self) {
        self.clock_holds.set(self.clock_holds.get() + 1);
    }

    pub(crate) fn release_clock(&self) {
        self.clock_holds.set(self.clock_holds.get() - 1);
    }

    /// File operations in flight that a task awaits: a paused clock waits for them before it
    /// moves by itself.
    pub(crate) fn clock_holds(&self) -> usize {
        self.clock_holds.get()
    }

    /// Nothing in flight, nothing queued: a non-blocking turn would be a wasted syscall.
    pub(crate) fn is_idle(&self) -> bool {
        let mut inner = self.inner.borrow_mut();
        inner.shut_down
            || (inner.slots.active() == 0
                && inner.pending_cancels.is_empty()
                && inner.backlog.is_empty()
                && inner.dispatch.is_empty()
                && inner.ring.unsubmitted() == 0)
    }

    /// One pass over the ring: submit, maybe wait, reap, then wake and release.
    pub(crate) fn turn(&self, wait: Wait) -> io::Result<()> {
        let mut inner = self.inner.borrow_mut();
        inner.flush_cancels();
        // SQEs still waiting for room, or completions made here (ops cancelled out of the
        // backlog) waiting to be dispatched: do not sleep on them.
        let wait = if inner.flush_backlog() && inner.dispatch.is_empty() {
            wait
        } else {
            Wait::No
        };
        inner.arm_doorbell();
        let entered = match wait {
            Wait::No => {
                let has_ops = inner.slots.active() > 0;
                inner.ring.enter_nowait(has_ops)
            }
            Wait::Until(timeout) => {
                let timeout = inner.doorbell.cap(timeout);
                inner.ring.enter_wait(timeout)
            }
        };
        match entered {
            Ok(()) => {}
            // The kernel could not take SQEs now (CQ overflow backlog or memory): reap first,
            // they stay queued and go in on the next turn.
            Err(e) if is_transient(&e) => {}
            Err(e) => return Err(e),
        }
        inner.reap();
        if inner.dispatch.is_empty() {
            // Most turns: every completion was a task wake (see `drain_woken`).
            return Ok(());
        }
        drop(inner);
        if let Some(panic) = self.run_pending() {
            // Every other completion of this reap is delivered; then the user's panic goes on.
            self.drain_woken(Waker::wake);
            std::panic::resume_unwind(panic);
        }
        Ok(())
    }

    /// Wakes and releases what completions left to do, outside the driver's borrow. Returns
    /// the first panic of user code, if any (see [`run_dispatch`]).
    fn run_pending(&self) -> Option<Box<dyn Any + Send>> {
        let mut dispatch = std::mem::take(&mut self.inner.borrow_mut().dispatch);
        let panic = run_dispatch(&mut dispatch);
        self.inner.borrow_mut().dispatch = dispatch;
        panic
    }

    /// Hands each task waker of the last reap to `f` (the runtime schedules the task by its
    /// id; anything else calls `wake`). Called after every [`turn`](Self::turn).
    pub(crate) fn drain_woken(&self, mut f: impl FnMut(Waker)) {
        if self.inner.borrow().woken.is_empty() {
            return;
        }
        let mut woken = std::mem::take(&mut self.inner.borrow_mut().woken);
        for waker in woken.drain(..) {
            f(waker);
        }
        self.inner.borrow_mut().woken = woken;
    }

    /// Cancels everything in flight and waits until `deadline` at the most for the kernel to
    /// let go; whatever it still owns then is leaked, never freed.
    pub(crate) fn shutdown(&self, deadline: Instant) -> usize {
        {
            let mut inner = self.inner.borrow_mut();
            let ids: Vec<u64> = inner.slots.in_flight().map(OpId::user_data).collect();
            for user_data in ids {
                inner.cancel(user_data);
            }
            if inner.doorbell.armed {
                inner.cancel(DOORBELL);
            }
            inner.shut_down = true;
        }
        loop {
            // What the last reap, or a cancel straight out of the backlog, left to do. Shutdown
            // goes on whatever a waker or a buffer's Drop does.
            drop(self.run_pending());
            self.drain_woken(Waker::wake);
            let mut inner = self.inner.borrow_mut();
            let busy = inner.slots.in_flight().next().is_some() || inner.doorbell.armed;
            let now = Instant::now();
            if !busy || now >= deadline {
                break;
            }
            inner.flush_cancels();
            let waited = inner
                .ring
                .enter_wait(Some((deadline - now).min(Duration::from_millis(10))));
            if let Err(e) = waited {
                if !is_transient(&e) {
                    break;
                }
            }
            inner.reap();
        }
        let mut inner = self.inner.borrow_mut();
        let leaked = inner.slots.leak_in_flight();
        // Idle handler slots hold their handlers, which hold this driver: let them go.
        let idle = inner.slots.take_idle_handlers();
        inner.ring.close();
        drop(inner);
        drop(idle);
        leaked
    }

    pub(crate) fn stats(&self) -> DriverStats {
        let mut inner = self.inner.borrow_mut();
        DriverStats {
            enters: inner.ring.enters,
            sqes_submitted: inner.ring.sqes_submitted,
            cqes_reaped: inner.cqes_reaped,
            cq_overflows: inner.ring.overflow_count(),
            cq_overflow_flushes: inner.overflow_flushes,
            cancels_submitted: inner.cancels_submitted,
            unknown_completions: inner.slots.unknown_completions,
            in_flight: inner.slots.active() as u64,
            flags: inner.ring.flags,
            multishot: self.multishot,
            buf_rings: self.buf_rings.get(),
            doorbell_failures: inner.doorbell.failures,
            backlogged: inner.backlogged,
        }
    }
}

/// An `io_uring_enter` failure that passes: the kernel could not take SQEs or memory right now
/// (CQ overflow backlog, memory pressure). The SQEs stay queued for the next turn.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBUSY | libc::EAGAIN | libc::ENOMEM)
    )
}

/// Frees slot `id`; what it held (a handler, a stream's queue: user-visible `Rc`s) is dropped
/// after the driver's borrow is released.
fn free_slot(mut inner: RefMut<'_, Inner>, id: OpId) {
    let old = inner.slots.remove(id);
    drop(inner);
    drop(old);
}

/// Pushes the SQE of handler slot `id`; if it cannot be queued, frees the slot (see
/// [`free_slot`]) and returns the errno.
#[inline]
fn push_or_free(mut inner: RefMut<'_, Inner>, id: OpId, sqe: squeue::Entry) -> Result<OpId, i32> {
    match inner.push_op(id, sqe) {
        Ok(()) => Ok(id),
        Err(errno) => {
            free_slot(inner, id);
            Err(errno)
        }
    }
}

/// Turns one CQE into what must happen once the driver's borrow is released.
fn record(
    slots: &mut Slots,
    doorbell: &mut Doorbell,
    dispatch: &mut Vec<Dispatch>,
    woken: &mut Vec<Waker>,
    user_data: u64,
    completion: Completion,
) {
    #[cfg(feature = "tracing")]
    tracing::trace!(
        user_data,
        result = completion.result,
        flags = completion.flags,
        "complete"
    );
    match user_data {
        DOORBELL => doorbell.completed(completion.result),
        CANCEL => {}
        _ => match slots.record(user_data, completion) {
            // The common case, a task waiting on its op: the runtime schedules it straight
            // from its id after the turn (see `drain_woken`), no trip through the waker.
            Dispatch::Wake(waker) if crate::task::waker::is_task_waker(&waker) => {
                woken.push(waker);
            }
            Dispatch::Nothing => {}
            other => dispatch.push(other),
        },
    }
}

/// Wakes and releases, each under `catch_unwind`: a panicking waker (user code) must not cost
/// the other completions of the same reap their wake. Returns the first panic, if any.
fn run_dispatch(dispatch: &mut Vec<Dispatch>) -> Option<Box<dyn Any + Send>> {
    let mut first_panic = None;
    let mut actions = dispatch.drain(..);
    // One guard for the whole batch (not one per action); after a panic the loop resumes with
    // the action after the one that panicked.
    loop {
        let ran = catch_unwind(AssertUnwindSafe(|| {
            for action in actions.by_ref() {
                match action {
                    Dispatch::Wake(waker) => waker.wake(),
                    Dispatch::Release(mut orphan, completion) => {
                        orphan.release(completion);
                        drop(orphan);
                    }
                    Dispatch::Handle(handler, completion) => handler.complete(completion),
                    Dispatch::Nothing => {}
                }
            }
        }));
        match ran {
            Ok(()) => return first_panic,
            Err(panic) => {
                first_panic.get_or_insert(panic);
            }
        }
    }
}

impl Inner {
    /// Pushes the SQE of slot `id` (tagged with its `user_data`); a runtime that shut down
    /// takes no more (`ECANCELED`).
    #[inline]
    fn push_op(&mut self, id: OpId, sqe: squeue::Entry) -> Result<(), i32> {
        if self.shut_down {
            return Err(libc::ECANCELED);
        }
        self.push(&sqe.user_data(id.user_data()))
    }

    /// Pushes an SQE, submitting to make room when the SQ is full. If the kernel takes no
    /// more right now, the SQE waits in the backlog: an op never fails for want of room.
    #[inline]
    fn push(&mut self, sqe: &squeue::Entry) -> Result<(), i32> {
        // Queued cancels go first: they make room in the kernel and must not wait behind new ops.
        self.flush_cancels();
        // Behind the backlog, never ahead of it.
        if self.backlog.is_empty() && self.push_now(sqe)? {
            return Ok(());
        }
        self.backlog.push_back(sqe.clone());
        self.backlogged += 1;
        #[cfg(feature = "tracing")]
        tracing::debug!(
            waiting = self.backlog.len(),
            "submission queue full: the SQE waits in the backlog"
        );
        Ok(())
    }

    /// Puts `sqe` in the SQ, submitting once to make room if it is full. `Ok(false)`: the
    /// kernel takes no more right now (`EBUSY` while its CQ overflow list is non-empty, or
    /// `EAGAIN`); the next turn reaps, which lets it take SQEs again.
    #[inline]
    fn push_now(&mut self, sqe: &squeue::Entry) -> Result<bool, i32> {
        if self.ring.push(sqe).is_ok() {
            return Ok(true);
        }
        match self.ring.enter_nowait(false) {
            Ok(()) => Ok(self.ring.push(sqe).is_ok()),
            Err(e) if is_transient(&e) => Ok(false),
            Err(e) => Err(e.raw_os_error().unwrap_or(libc::EIO)),
        }
    }

    /// Moves the backlog into the SQ, submitting to make room. Returns whether it is empty.
    /// An SQE the ring refuses for good fails its op, as [`push`](Self::push) would have.
    fn flush_backlog(&mut self) -> bool {
        while let Some(sqe) = self.backlog.pop_front() {
            match self.push_now(&sqe) {
                Ok(true) => {}
                Ok(false) => {
                    self.backlog.push_front(sqe);
                    return false;
                }
                Err(errno) => self.record(sqe.get_user_data(), Completion::failed(errno)),
            }
        }
        true
    }

    /// Cancels `target`. One still in the backlog never reached the kernel: it completes
    /// with `ECANCELED` right here (its resources are released by the next turn).
    fn cancel(&mut self, target: u64) {
        if let Some(at) = self
            .backlog
            .iter()
            .position(|sqe| sqe.get_user_data() == target)
        {
            self.backlog.remove(at);
            self.record(target, Completion::failed(libc::ECANCELED));
            return;
        }
        self.pending_cancels.push_back(target);
        self.flush_cancels();
    }

    fn flush_cancels(&mut self) {
        while let Some(&target) = self.pending_cancels.front() {
            let sqe = opcode::AsyncCancel::new(target).build().user_data(CANCEL);
            if self.ring.push(&sqe).is_err() {
                return;
            }
            self.pending_cancels.pop_front();
            self.cancels_submitted += 1;
        }
    }

    fn arm_doorbell(&mut self) {
        if self.doorbell.armed || self.shut_down || !self.doorbell.may_arm() {
            return;
        }
        let buf = self
            .doorbell
            .buf
            .as_mut()
            .expect("the doorbell buffer lives until drop");
        let sqe = opcode::Read::new(types::Fd(self.doorbell.fd), buf.as_mut_ptr(), 8)
            .build()
            .user_data(DOORBELL);
        if self.ring.push(&sqe).is_ok() {
            self.doorbell.armed = true;
        }
    }

    /// Drains the CQ (and the kernel's overflow backlog) into dispatch actions.
    fn reap(&mut self) {
        self.cqes_reaped += self.reap_ring() as u64;
        // With NODROP, overflowed CQEs wait in the kernel until an enter with GETEVENTS.
        for _ in 0..64 {
            if !self.ring.cq_overflowed() {
                break;
            }
            self.overflow_flushes += 1;
            #[cfg(feature = "tracing")]
            tracing::warn!("completion queue overflowed: flushing the kernel's overflow list");
            if self.ring.enter_nowait(true).is_err() {
                break;
            }
            self.cqes_reaped += self.reap_ring() as u64;
        }
    }

    /// Records every CQE in the ring straight from its memory (no copy into a vector).
    fn reap_ring(&mut self) -> usize {
        let Inner {
            ring,
            slots,
            doorbell,
            dispatch,
            woken,
            ..
        } = self;
        ring.reap_each(|user_data, completion| {
            record(slots, doorbell, dispatch, woken, user_data, completion)
        })
    }

    /// Records a completion made here rather than by the kernel.
    fn record(&mut self, user_data: u64, completion: Completion) {
        record(
            &mut self.slots,
            &mut self.doorbell,
            &mut self.dispatch,
            &mut self.woken,
            user_data,
            completion,
        );
    }
}
