//! Shards: one runtime per thread, pinned, with spawn_on between them.

use std::time::Duration;

use ringloop::shard;

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[test]
fn every_shard_runs_its_future_and_returns_its_output_in_order() {
    let n = cpus().min(4);
    let out = shard::Builder::new()
        .shards(n)
        .pin_cores(false)
        .build()
        .unwrap()
        .run(|s| async move {
            ringloop::time::sleep(Duration::from_millis(1)).await;
            (
                s.id(),
                s.count(),
                std::thread::current().name().map(String::from),
            )
        });
    for (i, r) in out.into_iter().enumerate() {
        let (id, count, name) = r.unwrap();
        assert_eq!((id, count), (i, n));
        assert_eq!(
            name.as_deref(),
            Some(format!("ringloop-shard-{i}").as_str())
        );
    }
}

#[test]
fn pinned_shards_run_on_their_own_cpu() {
    let n = cpus();
    let out = shard::Builder::new()
        .shards(n)
        .pin_cores(true)
        .build()
        .unwrap()
        .run(|_| async move {
            let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
            (0..nix::sched::CpuSet::count())
                .filter(|c| set.is_set(*c).unwrap())
                .collect::<Vec<_>>()
        });
    let mut seen = Vec::new();
    for r in out {
        let allowed = r.unwrap();
        assert_eq!(
            allowed.len(),
            1,
            "a pinned shard may run on exactly one CPU: {allowed:?}"
        );
        seen.push(allowed[0]);
    }
    seen.dedup();
    assert_eq!(seen.len(), n, "each shard has its own CPU");
}

#[test]
fn zero_shards_or_more_pinned_shards_than_cpus_is_a_clear_error() {
    let err = shard::Builder::new().shards(0).build().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let err = shard::Builder::new()
        .shards(cpus() + 1)
        .pin_cores(true)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("pin_cores(false)"), "{err}");
    // Unpinned, more shards than CPUs is allowed.
    let out = shard::Builder::new()
        .shards(cpus() + 1)
        .pin_cores(false)
        .build()
        .unwrap()
        .run(|s| async move { s.id() });
    assert_eq!(out.len(), cpus() + 1);
}

#[test]
fn a_panicking_shard_does_not_stop_the_others() {
    let out = shard::Builder::new()
        .shards(2)
        .pin_cores(false)
        .build()
        .unwrap()
        .run(|s| async move {
            if s.id() == 1 {
                panic!("shard one fails");
            }
            s.id()
        });
    assert_eq!(*out[0].as_ref().unwrap(), 0);
    let panic = out[1].as_ref().unwrap_err();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"shard one fails"));
}

#[test]
fn spawn_on_runs_the_future_on_the_target_shard() {
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let out = shard::Builder::new()
        .shards(2)
        .pin_cores(false)
        .build()
        .unwrap()
        .run(move |s| {
            let answered = answered.clone();
            async move {
                let other = 1 - s.id();
                let there = shard::spawn_on(other, async {
                    std::thread::current().name().map(String::from)
                })
                .await
                .unwrap();
                // Keep serving the other shard's request until both have their answer.
                answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let deadline = std::time::Instant::now() + Duration::from_secs(30);
                while answered.load(std::sync::atomic::Ordering::SeqCst) < 2
                    && std::time::Instant::now() < deadline
                {
                    ringloop::time::sleep(Duration::from_millis(1)).await;
                }
                there
            }
        });
    assert_eq!(
        out[0].as_ref().unwrap().as_deref(),
        Some("ringloop-shard-1")
    );
    assert_eq!(
        out[1].as_ref().unwrap().as_deref(),
        Some("ringloop-shard-0")
    );
}

#[test]
#[should_panic(expected = "not inside a shard group")]
fn spawn_on_outside_a_shard_group_panics_clearly() {
    drop(shard::spawn_on(0, async {}));
}

#[test]
fn spawn_on_from_a_thread_that_is_not_a_runtime_runs_on_the_target_shard() {
    let done = shard::Shutdown::new();
    let out = shard::Builder::new()
        .shards(2)
        .pin_cores(false)
        .build()
        .unwrap()
        .run(move |s| {
            let done = done.clone();
            async move {
                if s.id() == 1 {
                    let _ = ringloop::time::timeout(Duration::from_secs(30), done.wait()).await;
                    return None;
                }
                let group = shard::group();
                assert_eq!(group.count(), 2);
                // The plain thread only starts the work; the shard awaits the result.
                let pending = std::thread::spawn(move || {
                    group.spawn_on(1, async { std::thread::current().name().map(String::from) })
                })
                .join()
                .unwrap();
                let name = ringloop::time::timeout(Duration::from_secs(20), pending)
                    .await
                    .expect("answer within 20 s")
                    .unwrap();
                done.trigger();
                Some(name)
            }
        });
    assert_eq!(
        out[0].as_ref().unwrap().clone().flatten().as_deref(),
        Some("ringloop-shard-1")
    );
}
