//! The thread-local "current runtime": set while `block_on` runs (and while a runtime drops).

use std::cell::RefCell;
use std::rc::Rc;

use super::Core;

thread_local! {
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

const NO_RUNTIME: &str = "there is no ringloop runtime on this thread: call this inside \
    Runtime::block_on (or ringloop::block_on), or from a task it runs";
const NESTED: &str = "cannot start a ringloop runtime from within a runtime: block_on was \
    called while this thread is already driving a runtime; spawn a task or await instead";

/// Restores the previous context when dropped.
pub(crate) struct EnterGuard {
    _private: (),
}

/// Makes `core` the current runtime of this thread.
///
/// # Panics
///
/// If another runtime is already current (a nested `block_on`).
#[track_caller]
pub(crate) fn enter(core: Rc<Core>) -> EnterGuard {
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        assert!(current.is_none(), "{NESTED}");
        *current = Some(core);
    });
    EnterGuard { _private: () }
}

/// Like [`enter`], but does nothing if a runtime is already current. For `Drop`.
pub(crate) fn try_enter(core: Rc<Core>) -> Option<EnterGuard> {
    CURRENT
        .try_with(|current| {
            let mut current = current.try_borrow_mut().ok()?;
            if current.is_some() {
                return None;
            }
            *current = Some(core);
            Some(EnterGuard { _private: () })
        })
        .ok()
        .flatten()
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let core = CURRENT.with(|current| current.borrow_mut().take());
        // The core may be the last reference: drop it after the borrow ends.
        drop(core);
    }
}

/// Runs `f` with the current runtime, if any. Never panics (safe during thread teardown).
pub(crate) fn with_current<R>(f: impl FnOnce(&Rc<Core>) -> R) -> Option<R> {
    CURRENT
        .try_with(|current| current.try_borrow().ok().and_then(|c| c.as_ref().map(f)))
        .ok()
        .flatten()
}

/// The current runtime.
///
/// # Panics
///
/// Outside a runtime, with a message that says where to call from.
#[track_caller]
pub(crate) fn current() -> Rc<Core> {
    with_current(Rc::clone).unwrap_or_else(|| no_runtime())
}

/// Panics with the message for a call made outside any runtime.
#[track_caller]
#[cold]
pub(crate) fn no_runtime() -> ! {
    panic!("{NO_RUNTIME}")
}
