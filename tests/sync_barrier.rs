//! `sync::Barrier`: nobody passes before `n` have arrived, each generation has one leader,
//! and the barrier starts over after each release.

use std::cell::Cell;
use std::rc::Rc;

use ringloop::sync::Barrier;

#[test]
fn nobody_passes_before_n_arrive_and_each_generation_has_one_leader() {
    ringloop::block_on(async {
        let barrier = Rc::new(Barrier::new(5));
        let passed = Rc::new(Cell::new(0));
        let spawn = |barrier: &Rc<Barrier>, passed: &Rc<Cell<usize>>| {
            let (barrier, passed) = (barrier.clone(), passed.clone());
            ringloop::spawn(async move {
                let leader = barrier.wait().await.is_leader();
                passed.set(passed.get() + 1);
                leader
            })
        };
        let mut tasks: Vec<_> = (0..4).map(|_| spawn(&barrier, &passed)).collect();
        for _ in 0..10 {
            ringloop::task::yield_now().await;
        }
        assert_eq!(passed.get(), 0, "four of five arrived: nobody passes");
        // The fifth releases the first generation; ten more make two further generations.
        tasks.extend((0..11).map(|_| spawn(&barrier, &passed)));
        let mut leaders = 0;
        for task in tasks {
            leaders += usize::from(task.await.unwrap());
        }
        assert_eq!(passed.get(), 15);
        assert_eq!(leaders, 3);
    });
}

#[test]
fn a_barrier_of_one_or_zero_never_waits() {
    ringloop::block_on(async {
        for n in [0, 1] {
            let barrier = Barrier::new(n);
            for _ in 0..3 {
                assert!(barrier.wait().await.is_leader());
            }
        }
    });
}
