//! `#[ringloop::main]` and `#[ringloop::test]` used as a user would (the refusals and their
//! messages are tested on the expansion, in `macros/src/lib.rs`).

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[ringloop::test]
async fn a_test_body_runs_tasks_and_timers() {
    let start = Instant::now();
    let task = ringloop::spawn(async {
        ringloop::time::sleep(Duration::from_millis(3)).await;
        40 + 2
    });
    assert_eq!(task.await.unwrap(), 42);
    assert!(start.elapsed() >= Duration::from_millis(3));
}

/// `?` converts into the declared error type, as in a plain `fn`: the macro pins the body's
/// output to the return type, so rustc needs no annotation inside.
#[ringloop::test]
async fn question_mark_converts_into_the_declared_error() -> Result<(), Box<dyn std::error::Error>>
{
    let dir = std::env::temp_dir().join(format!("ringloop-macros-{}", std::process::id()));
    let err = ringloop::fs::File::open(dir.join("missing")).await;
    assert_eq!(
        err.err().map(|e| e.kind()),
        Some(std::io::ErrorKind::NotFound)
    );
    let n: u32 = "7".parse()?;
    assert_eq!(n, 7);
    Ok(())
}

#[ringloop::test]
#[should_panic(expected = "kept attributes still apply")]
async fn other_attributes_are_kept() {
    ringloop::task::yield_now().await;
    panic!("kept attributes still apply");
}

#[ringloop::test(entries = 8, event_interval = 4)]
async fn options_build_a_working_runtime() {
    // An 8-entry SQ and 4 polls per turn still run 100 concurrent timers to the end.
    let tasks: Vec<_> = (0..100u64)
        .map(|i| {
            ringloop::spawn(async move {
                ringloop::time::sleep(Duration::from_micros(i * 10)).await;
                i
            })
        })
        .collect();
    let mut sum = 0;
    for task in tasks {
        sum += task.await.unwrap();
    }
    assert_eq!(sum, (0..100).sum::<u64>());
}

mod reexport {
    pub(crate) use ::ringloop as runtime;
}

#[ringloop::test(crate = "reexport::runtime")]
async fn a_renamed_crate_path_is_followed() {
    assert_eq!(reexport::runtime::spawn(async { 1 }).await.unwrap(), 1);
}

/// `main` need not be called `main`: one that is not may take arguments (moved into the body),
/// and is called like any function, as a program's `main` is called by the start-up code.
#[test]
fn main_runs_its_body_on_a_runtime_of_its_own_and_drops_it_after() {
    struct SetOnDrop(Rc<Cell<bool>>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }

    #[ringloop::main]
    async fn leave_a_task_running(flag: Rc<Cell<bool>>) -> u32 {
        let guard = SetOnDrop(flag);
        // Detached and never finishing: only dropping the runtime ends it.
        drop(ringloop::spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await
        }));
        ringloop::task::yield_now().await;
        7
    }

    let dropped = Rc::new(Cell::new(false));
    assert_eq!(leave_a_task_running(dropped.clone()), 7);
    assert!(
        dropped.get(),
        "the task left running was dropped with the runtime"
    );
    // And a second call gets a fresh runtime on the same thread.
    assert_eq!(leave_a_task_running(Rc::new(Cell::new(false))), 7);
}
