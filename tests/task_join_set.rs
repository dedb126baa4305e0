//! `JoinSet`: outputs in the order tasks finish, panics and aborts as `JoinError`s, a dropped
//! `join_next` that loses nothing, and a dropped set that aborts its tasks.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use ringloop::task::{yield_now, JoinSet};
use ringloop::time::{sleep, timeout};

/// Counts drops: a future holding one was dropped (finished or aborted) when it counts.
struct DropCount(Rc<Cell<u32>>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn outputs_come_in_the_order_the_tasks_finish() {
    ringloop::block_on(async {
        let mut set = JoinSet::new();
        for i in (0..50u64).rev() {
            set.spawn(async move {
                sleep(Duration::from_millis(i % 10)).await;
                for _ in 0..i % 3 {
                    yield_now().await;
                }
                i
            });
        }
        assert_eq!(set.len(), 50);
        let mut seen = Vec::new();
        while let Some(output) = set.join_next().await {
            seen.push(output.unwrap());
        }
        assert!(set.is_empty());
        assert_eq!(set.join_next().await.map(|r| r.is_ok()), None);
        // Every output once; the tasks that slept 0 ms and never yielded (0 and 30) came
        // before every task that slept 9 ms. (Even if the machine stalls past 9 ms, the
        // timers fire in deadline order, so the quick ones are woken, and end, first.)
        let mut sorted = seen.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        let first_slow = seen.iter().position(|i| i % 10 == 9).unwrap();
        let last_quick = seen.iter().rposition(|&i| i == 0 || i == 30).unwrap();
        assert!(last_quick < first_slow, "{seen:?}");
    });
}

#[test]
fn a_panic_and_an_abort_come_back_as_join_errors_and_the_rest_completes() {
    ringloop::block_on(async {
        let mut set = JoinSet::new();
        set.spawn(async { panic!("task panic") });
        set.spawn(async {
            sleep(Duration::from_millis(2)).await;
            7u32
        });
        let (mut panics, mut values) = (0, Vec::new());
        while let Some(output) = set.join_next().await {
            match output {
                Ok(v) => values.push(v),
                Err(e) => {
                    assert!(e.is_panic());
                    panics += 1;
                }
            }
        }
        assert_eq!((panics, values), (1, vec![7]));

        let dropped = Rc::new(Cell::new(0));
        for _ in 0..5 {
            let guard = DropCount(dropped.clone());
            set.spawn(async move {
                let _guard = guard;
                std::future::pending::<u32>().await
            });
        }
        set.spawn(async { 1 });
        yield_now().await;
        set.abort_all();
        let (mut cancelled, mut finished) = (0, 0);
        while let Some(output) = set.join_next().await {
            match output {
                Ok(_) => finished += 1,
                Err(e) => {
                    assert!(e.is_cancelled());
                    cancelled += 1;
                }
            }
        }
        assert_eq!((cancelled, finished), (5, 1));
        assert_eq!(dropped.get(), 5, "every aborted future was dropped");
    });
}

#[test]
fn a_join_next_dropped_while_waiting_loses_no_output() {
    ringloop::block_on(async {
        let mut set = JoinSet::new();
        set.spawn(async {
            sleep(Duration::from_millis(20)).await;
            "late"
        });
        // Each gives up while the task still runs (as a `select!` branch that loses would).
        for _ in 0..3 {
            assert!(timeout(Duration::from_millis(1), set.join_next())
                .await
                .is_err());
        }
        assert_eq!(set.len(), 1, "the task is still in the set");
        let output = timeout(Duration::from_secs(10), set.join_next())
            .await
            .expect("a waiter that gave up left the set unable to wake the next one");
        assert_eq!(output.unwrap().unwrap(), "late");
        assert!(set.join_next().await.is_none());
    });
}

#[test]
fn dropping_the_set_aborts_its_tasks_and_detach_all_lets_them_run() {
    ringloop::block_on(async {
        let dropped = Rc::new(Cell::new(0));
        let ran_to_end = Rc::new(Cell::new(0));
        let mut set = JoinSet::new();
        for _ in 0..10 {
            let (guard, ran_to_end) = (DropCount(dropped.clone()), ran_to_end.clone());
            set.spawn(async move {
                let _guard = guard;
                sleep(Duration::from_millis(5)).await;
                ran_to_end.set(ran_to_end.get() + 1);
            });
        }
        yield_now().await;
        drop(set);
        sleep(Duration::from_millis(30)).await;
        assert_eq!(
            (dropped.get(), ran_to_end.get()),
            (10, 0),
            "aborted, not run"
        );

        let mut set = JoinSet::new();
        for _ in 0..10 {
            let ran_to_end = ran_to_end.clone();
            set.spawn(async move {
                sleep(Duration::from_millis(5)).await;
                ran_to_end.set(ran_to_end.get() + 1);
            });
        }
        set.detach_all();
        assert!(set.is_empty());
        // Reuse the set while the detached tasks' ends are still to come (stale keys, J1).
        let reused = Rc::new(Cell::new(false));
        let mark = reused.clone();
        set.spawn(async move {
            sleep(Duration::from_millis(10)).await;
            mark.set(true);
        });
        set.join_next().await.unwrap().unwrap();
        assert!(
            reused.get(),
            "join_next returned the new task, not a detached one"
        );
        assert!(set.join_next().await.is_none());
        sleep(Duration::from_millis(30)).await;
        assert_eq!(ran_to_end.get(), 10, "detached tasks ran on");

        // Detached tasks that end after their keys were reused must not stand in the queue
        // for the new tasks in those keys (J1): B, which ends first, comes out first.
        let mut set = JoinSet::new();
        for _ in 0..4 {
            set.spawn(async {
                sleep(Duration::from_millis(5)).await;
                "detached"
            });
        }
        set.detach_all();
        set.spawn(async {
            sleep(Duration::from_millis(60)).await;
            "A"
        });
        set.spawn(async {
            sleep(Duration::from_millis(20)).await;
            "B"
        });
        assert_eq!(set.join_next().await.unwrap().unwrap(), "B");
        assert_eq!(set.join_next().await.unwrap().unwrap(), "A");
        assert!(set.join_next().await.is_none());
    });
}

#[test]
fn join_all_returns_every_output_and_try_join_next_never_waits() {
    ringloop::block_on(async {
        let mut set = JoinSet::new();
        assert!(set.try_join_next().is_none());
        for i in 0..20u32 {
            set.spawn(async move { i * 2 });
        }
        assert!(set.try_join_next().is_none(), "nothing ran yet");
        yield_now().await;
        let first = set.try_join_next().expect("a task finished").unwrap();
        assert_eq!(first % 2, 0);
        let mut rest = set.join_all().await;
        rest.push(first);
        rest.sort_unstable();
        assert_eq!(rest, (0..20).map(|i| i * 2).collect::<Vec<_>>());

        let mut set = JoinSet::new();
        set.spawn(async { 1 });
        set.shutdown().await;
        assert!(set.is_empty());
    });
}
