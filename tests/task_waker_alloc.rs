//! Waking and cloning a task's waker allocates nothing (a counting global allocator proves it).

mod support;

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use support::{allocations, CountingAlloc};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

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

        let before = allocations();
        for _ in 0..10_000 {
            let clone = waker.clone();
            clone.wake_by_ref();
            clone.wake();
        }
        let after = allocations();
        assert_eq!(
            after - before,
            0,
            "waker clone/wake allocated {} times",
            after - before
        );
        task.abort();
    });
}
