//! Waking and cloning a task's waker allocates nothing (a counting global allocator proves it).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Poll, Waker};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded from the caller.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn waker_wake_and_clone_allocate_nothing() {
    let rt = ringloop::Runtime::new().unwrap();
    let stash: Rc<RefCell<Option<Waker>>> = Rc::default();
    rt.block_on(async {
        let stash2 = stash.clone();
        let task = ringloop::spawn(poll_fn(move |cx| {
            *stash2.borrow_mut() = Some(cx.waker().clone());
            Poll::<()>::Pending
        }));
        ringloop::task::yield_now().await;
        let waker = stash.borrow().clone().unwrap();
        // Warm up the run queue's capacity, then count.
        waker.wake_by_ref();
        ringloop::task::yield_now().await;

        let before = ALLOCATIONS.load(Ordering::SeqCst);
        for _ in 0..10_000 {
            let clone = waker.clone();
            clone.wake_by_ref();
            clone.wake();
        }
        let after = ALLOCATIONS.load(Ordering::SeqCst);
        assert_eq!(
            after - before,
            0,
            "waker clone/wake allocated {} times",
            after - before
        );
        task.abort();
    });
}
