//! `select!` and `join!`: order, disabled branches, `else`, losers dropped before the handler.

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use ringloop::sync::{mpsc, oneshot, Notify};
use ringloop::time::{sleep, timeout};
use support::{run, LIMIT};

/// Sets a flag when dropped.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn the_first_ready_branch_in_written_order_wins() {
    run(async {
        let (tx, mut rx) = mpsc::channel::<u32>(4);
        tx.send(1).await.unwrap();
        let got = ringloop::select! {
            biased;
            v = std::future::ready(7) => v,
            Some(v) = rx.recv() => v,
        };
        assert_eq!(got, 7);
        let got = ringloop::select! {
            Some(v) = rx.recv() => v,
            v = std::future::ready(7) => v,
        };
        assert_eq!(got, 1);
    });
}

#[test]
fn a_pending_branch_is_woken_and_the_losers_are_dropped_before_the_handler() {
    run(async {
        let notify = Rc::new(Notify::new());
        let dropped = Rc::new(Cell::new(false));
        ringloop::spawn({
            let notify = notify.clone();
            async move { notify.notify_one() }
        });
        let flag = DropFlag(dropped.clone());
        let loser = async move {
            let _flag = flag;
            std::future::pending::<()>().await
        };
        let dropped_before = ringloop::select! {
            () = loser => unreachable!(),
            () = notify.notified() => dropped.get(),
            _ = sleep(LIMIT) => panic!("not woken"),
        };
        assert!(
            dropped_before,
            "the losing future was still alive in the handler"
        );
    });
}

#[test]
fn a_non_matching_result_disables_its_branch_and_else_runs_when_all_are_disabled() {
    run(async {
        let (tx, mut rx) = mpsc::channel::<u32>(1);
        drop(tx);
        let got = ringloop::select! {
            Some(v) = rx.recv() => v,
            Some(v) = std::future::ready(None::<u32>) => v,
            else => 99,
        };
        assert_eq!(got, 99);
        // A disabled branch does not stop the others.
        let got = ringloop::select! {
            Some(v) = rx.recv() => v,
            v = async { ringloop::task::yield_now().await; 5 } => v,
        };
        assert_eq!(got, 5);
    });
}

#[test]
fn handlers_can_break_await_and_reuse_what_the_futures_borrowed() {
    run(async {
        let (tx, mut rx) = mpsc::channel::<u32>(8);
        for i in 0..5 {
            tx.send(i).await.unwrap();
        }
        drop(tx);
        let mut seen = Vec::new();
        loop {
            ringloop::select! {
                v = rx.recv() => match v {
                    Some(v) => {
                        ringloop::task::yield_now().await;
                        seen.push(v);
                        if v == 2 {
                            // `rx` is free again here: the recv future was dropped.
                            seen.push(rx.recv().await.unwrap() + 100);
                        }
                    }
                    None => break,
                },
                _ = sleep(LIMIT) => panic!("stuck"),
            }
        }
        assert_eq!(seen, vec![0, 1, 2, 103, 4]);
    });
}

#[test]
#[should_panic(expected = "every branch is disabled")]
fn select_without_else_panics_when_every_branch_is_disabled() {
    run(async {
        ringloop::select! {
            Some(()) = std::future::ready(None) => {}
        }
    });
}

#[test]
fn join_waits_for_all_and_keeps_order() {
    run(async {
        let (tx, rx) = oneshot::channel::<u32>();
        let out = timeout(LIMIT, async {
            ringloop::join!(
                async { rx.await.unwrap() },
                async {
                    sleep(Duration::from_millis(1)).await;
                    tx.send(3).unwrap();
                    "sent"
                },
                std::future::ready(1u8),
            )
        })
        .await
        .unwrap();
        assert_eq!(out, (3, "sent", 1u8));
    });
}
