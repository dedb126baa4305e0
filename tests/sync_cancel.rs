//! `sync::CancellationToken`: a cancel reaches every waiter and every descendant, once, and
//! nothing else; the helpers built on it (`run_until_cancelled`, `drop_guard`) keep their word.

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use ringloop::sync::CancellationToken;
use support::{poll_once, watchdog};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn cancel_wakes_every_waiter_including_futures_made_before_it_but_never_polled() {
    watchdog("cancel wakes all", LIMIT, || {
        ringloop::block_on(async {
            let token = CancellationToken::new();
            let woken = Rc::new(Cell::new(0));
            let tasks: Vec<_> = (0..50)
                .map(|_| {
                    let (token, woken) = (token.clone(), woken.clone());
                    ringloop::spawn(async move {
                        token.cancelled().await;
                        woken.set(woken.get() + 1);
                    })
                })
                .collect();
            // Made before the cancel, polled only after it.
            let early = token.clone().cancelled_owned();
            ringloop::task::yield_now().await;
            assert_eq!(woken.get(), 0);
            token.cancel();
            for task in tasks {
                task.await.unwrap();
            }
            assert_eq!(woken.get(), 50);
            early.await;
            // And a future made after the cancel completes at once.
            let mut late = token.cancelled();
            assert!(poll_once(&mut late).await.is_ready());
        })
    });
}

#[test]
fn children_fall_with_their_parent_but_not_the_other_way() {
    ringloop::block_on(async {
        let root = CancellationToken::new();
        let a = root.child_token();
        let b = root.child_token();
        let a1 = a.child_token();
        a.cancel();
        assert!(a.is_cancelled() && a1.is_cancelled());
        assert!(!root.is_cancelled() && !b.is_cancelled());
        root.cancel();
        assert!(b.is_cancelled());
        // A child of a cancelled token starts cancelled.
        assert!(root.child_token().is_cancelled());
        assert!(a1.child_token().is_cancelled());
    });
}

#[test]
fn a_chain_of_a_hundred_thousand_children_cancels_without_recursion() {
    watchdog("deep chain", LIMIT, || {
        ringloop::block_on(async {
            let root = CancellationToken::new();
            let mut chain = vec![root.clone()];
            for _ in 0..100_000 {
                let next = chain.last().unwrap().child_token();
                chain.push(next);
            }
            let leaf = chain.last().unwrap().clone();
            let waiting = ringloop::spawn(leaf.clone().cancelled_owned());
            ringloop::task::yield_now().await;
            root.cancel();
            waiting.await.unwrap();
            assert!(chain.iter().all(CancellationToken::is_cancelled));
        })
    });
}

#[test]
fn many_short_lived_children_and_given_up_waits_leave_a_later_cancel_working() {
    watchdog("no leftovers", LIMIT, || {
        ringloop::block_on(async {
            let root = CancellationToken::new();
            // Many short-lived children (a connection each) and waits given up by a timeout.
            for _ in 0..20_000 {
                let child = root.child_token();
                let gave_up = ringloop::time::timeout(Duration::ZERO, child.cancelled()).await;
                assert!(gave_up.is_err());
            }
            let survivor = root.child_token();
            let woken = ringloop::spawn(survivor.clone().cancelled_owned());
            ringloop::task::yield_now().await;
            root.cancel();
            woken.await.unwrap();
            assert!(survivor.is_cancelled());
        })
    });
}

#[test]
fn run_until_cancelled_returns_the_output_or_drops_the_future() {
    struct Dropped(Rc<Cell<bool>>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }

    ringloop::block_on(async {
        let token = CancellationToken::new();
        assert_eq!(token.run_until_cancelled(async { 7 }).await, Some(7));

        let dropped = Rc::new(Cell::new(false));
        let guard = Dropped(dropped.clone());
        let canceller = ringloop::spawn({
            let token = token.clone();
            async move {
                ringloop::time::sleep(Duration::from_millis(2)).await;
                token.cancel();
            }
        });
        let result = token
            .run_until_cancelled(async move {
                let _guard = guard;
                std::future::pending::<u32>().await
            })
            .await;
        assert_eq!(result, None);
        assert!(dropped.get(), "the unfinished future was dropped");
        canceller.await.unwrap();
        // Cancelled already: the future is not polled at all.
        let polled = Cell::new(false);
        let result = token
            .run_until_cancelled(async {
                polled.set(true);
            })
            .await;
        assert_eq!(result, None);
        assert!(!polled.get());
    });
}

#[test]
fn a_drop_guard_cancels_when_dropped_unless_disarmed() {
    let token = CancellationToken::new();
    drop(token.clone().drop_guard().disarm());
    assert!(!token.is_cancelled());
    {
        let _guard = token.clone().drop_guard();
    }
    assert!(token.is_cancelled());
}
