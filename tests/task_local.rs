//! `task_local!`: a value set for a future's extent is seen by that future only, across its
//! awaits, in nested scopes, and in its `Drop`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

ringloop::task_local! {
    static ID: u32;
    /// Documented keys work too.
    pub(crate) static NAME: String;
}

#[test]
fn interleaved_tasks_each_see_only_their_own_value() {
    ringloop::block_on(async {
        let tasks: Vec<_> = (0..20u32)
            .map(|i| {
                ringloop::spawn(ID.scope(i, async move {
                    let mut seen = Vec::new();
                    for round in 0..5 {
                        // Other tasks run between these reads, with their own ids set.
                        ringloop::time::sleep(Duration::from_micros(u64::from((i + round) % 7)))
                            .await;
                        seen.push(ID.get());
                    }
                    (i, seen)
                }))
            })
            .collect();
        for task in tasks {
            let (i, seen) = task.await.unwrap();
            assert_eq!(seen, vec![i; 5]);
        }
        assert!(
            ID.try_with(|_| ()).is_err(),
            "nothing leaks out of the scopes"
        );
    });
}

#[test]
fn an_inner_scope_shadows_the_outer_one_and_restores_it() {
    ringloop::block_on(ID.scope(1, async {
        assert_eq!(ID.get(), 1);
        let inner = ID.scope(2, async {
            ringloop::task::yield_now().await;
            ID.get()
        });
        assert_eq!(inner.await, 2);
        assert_eq!(ID.get(), 1);
        let sync = ID.sync_scope(3, || ID.get());
        assert_eq!(sync, 3);
        assert_eq!(ID.get(), 1);
        NAME.scope("n".to_owned(), async {
            assert_eq!((ID.get(), NAME.with(String::len)), (1, 1));
        })
        .await;
    }));
}

#[test]
fn a_future_dropped_unfinished_sees_its_value_in_its_drop() {
    struct ReadOnDrop(Rc<Cell<Option<u32>>>);
    impl Drop for ReadOnDrop {
        fn drop(&mut self) {
            self.0.set(ID.try_with(|id| *id).ok());
        }
    }

    ringloop::block_on(async {
        let seen = Rc::new(Cell::new(None));
        let guard = ReadOnDrop(seen.clone());
        let scoped = ID.scope(7, async move {
            let _guard = guard;
            std::future::pending::<()>().await
        });
        let timed_out = ringloop::time::timeout(Duration::from_millis(1), scoped).await;
        assert!(timed_out.is_err());
        assert_eq!(seen.get(), Some(7));
        assert!(ID.try_with(|_| ()).is_err());
    });
}

#[test]
fn reading_outside_a_scope_is_an_error_and_with_panics_with_it() {
    let err = ID.try_with(|_| ()).unwrap_err();
    assert!(err.to_string().contains("not set"), "{err}");
    let panicked = std::panic::catch_unwind(|| ID.with(|id| *id)).unwrap_err();
    let message = panicked.downcast_ref::<String>().unwrap();
    assert!(message.contains("not set"), "{message}");
}

#[test]
fn a_scope_whose_future_panics_leaves_the_slot_restored() {
    ringloop::block_on(async {
        let task = ringloop::spawn(ID.scope(9, async {
            ringloop::task::yield_now().await;
            panic!("inside the scope");
        }));
        assert!(task.await.unwrap_err().is_panic());
        assert!(ID.try_with(|_| ()).is_err());
        ID.scope(10, async { assert_eq!(ID.get(), 10) }).await;
    });
}
