//! The task waker: a vtable over a packed (runtime, slot, generation) triple.
//!
//! The waker's data pointer is not a pointer: it is the integer
//! `runtime << 52 | generation << 26 | key`, carried without provenance and never dereferenced.
//! Cloning copies the integer and dropping does nothing, so neither allocates nor touches a
//! reference count. Waking hands the triple to [`crate::runtime::wake`], the one place `task/`
//! calls up into `runtime/`: it schedules the task directly when called on the runtime's own
//! thread and goes through the runtime's remote queue otherwise. A stale triple (task finished,
//! slot reused, runtime gone) matches no live task and is ignored there.
//!
//! # Invariants
//!
//! - (W1) every vtable function only reads the integer in `data`; none dereferences it, so all
//!   four are sound for any value, on any thread, any number of times.

use std::ptr;
use std::task::{RawWaker, RawWakerVTable, Waker};

use super::TaskId;

/// Bits of the slot key; the slab never grows past `1 << KEY_BITS` tasks.
pub(crate) const KEY_BITS: u32 = 26;
/// Bits of the slot generation; generations wrap modulo `1 << GEN_BITS`.
pub(crate) const GEN_BITS: u32 = 26;
/// Bits of the runtime id; at most `1 << RUNTIME_BITS` runtimes are alive at once.
pub(crate) const RUNTIME_BITS: u32 = 12;

const _: () = assert!(KEY_BITS + GEN_BITS + RUNTIME_BITS == usize::BITS);

const KEY_MASK: usize = (1 << KEY_BITS) - 1;
const GEN_MASK: usize = (1 << GEN_BITS) - 1;

/// A task's address as a waker carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WakeTarget {
    pub(crate) runtime: u16,
    pub(crate) task: TaskId,
}

impl WakeTarget {
    fn pack(self) -> usize {
        (self.runtime as usize) << (KEY_BITS + GEN_BITS)
            | (self.task.generation as usize & GEN_MASK) << KEY_BITS
            | (self.task.key as usize & KEY_MASK)
    }

    fn unpack(data: *const ()) -> WakeTarget {
        let bits = data.addr();
        WakeTarget {
            runtime: (bits >> (KEY_BITS + GEN_BITS)) as u16,
            task: TaskId {
                key: (bits & KEY_MASK) as u32,
                generation: ((bits >> KEY_BITS) & GEN_MASK) as u32,
            },
        }
    }
}

/// Builds the waker for `task` of runtime `runtime`. Does not allocate.
pub(crate) fn waker(runtime: u16, task: TaskId) -> Waker {
    let data = ptr::without_provenance(WakeTarget { runtime, task }.pack());
    // SAFETY: (W1) the vtable never dereferences `data` and every function is thread-safe,
    // which is the whole contract of `RawWaker`.
    unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) }
}

/// Keeps `waker` in `slot` for a later wake, unless the one there already wakes the same task
/// (a future may be polled by another task than last time, so it always stores the newest).
pub(crate) fn register(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(old) if old.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

/// The task a ringloop task waker wakes; `None` for any other waker.
pub(crate) fn target(waker: &Waker) -> Option<WakeTarget> {
    is_task_waker(waker).then(|| WakeTarget::unpack(waker.data()))
}

/// Whether `waker` is a ringloop task waker. Waking one runs no user code (it only queues a
/// task id), so the driver may wake it while its own state is borrowed.
pub(crate) fn is_task_waker(waker: &Waker) -> bool {
    ptr::eq(waker.vtable(), &VTABLE)
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop);

fn clone(data: *const ()) -> RawWaker {
    RawWaker::new(data, &VTABLE)
}

fn wake(data: *const ()) {
    crate::runtime::wake(WakeTarget::unpack(data));
}

fn drop(_: *const ()) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips_at_the_field_limits() {
        for (runtime, key, generation) in [
            (0, 0, 0),
            (4095, KEY_MASK as u32, GEN_MASK as u32),
            (7, 12345, 678),
        ] {
            let target = WakeTarget {
                runtime,
                task: TaskId { key, generation },
            };
            assert_eq!(
                WakeTarget::unpack(ptr::without_provenance(target.pack())),
                target
            );
        }
    }

    #[test]
    fn waker_clone_is_the_same_waker() {
        let w = waker(
            3,
            TaskId {
                key: 5,
                generation: 9,
            },
        );
        assert!(w.will_wake(&w.clone()));
        assert!(is_task_waker(&w));
        assert_eq!(target(&w).map(|t| (t.runtime, t.task.key)), Some((3, 5)));
        assert!(!is_task_waker(std::task::Waker::noop()));
        assert!(!w.will_wake(&waker(
            3,
            TaskId {
                key: 5,
                generation: 10
            }
        )));
    }
}
