//! Signals and the shutdown switch in a shard group: a signal sent to the process reaches the
//! shard that listens for it, an unlistened Ctrl-C still ends the program, and a triggered
//! `Shutdown` releases every shard.

mod support;

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::getpid;
use ringloop::shard::{self, Shutdown};
use ringloop::signal::unix::{signal, SignalKind};

fn two_shards() -> shard::Shards {
    shard::Builder::new()
        .shards(2)
        .pin_cores(false)
        .build()
        .unwrap()
}

#[test]
fn sigint_to_the_process_reaches_the_shard_that_listens_and_shutdown_releases_the_others() {
    let name =
        "sigint_to_the_process_reaches_the_shard_that_listens_and_shutdown_releases_the_others";
    if !support::is_child() {
        let (status, out) = support::run_child(name, &[]);
        assert!(status.success(), "child failed ({status}):\n{out}");
        assert!(out.contains("shard 1 got SIGINT"), "{out}");
        return;
    }
    let shutdown = Shutdown::new();
    let results = two_shards().run({
        let shutdown = shutdown.clone();
        move |s| {
            let shutdown = shutdown.clone();
            async move {
                if s.id() == 1 {
                    let got = ringloop::time::timeout(
                        Duration::from_secs(20),
                        ringloop::signal::ctrl_c(),
                    )
                    .await;
                    shutdown.trigger();
                    got.expect("SIGINT within 20 s").expect("signalfd");
                    println!("shard 1 got SIGINT");
                } else {
                    // Sent from a shard that does not listen: the kernel may pick any thread,
                    // and every one of them blocks SIGINT, so it waits for shard 1's signalfd.
                    ringloop::time::sleep(Duration::from_millis(50)).await;
                    kill(getpid(), Signal::SIGINT).unwrap();
                    ringloop::time::timeout(Duration::from_secs(20), shutdown.wait())
                        .await
                        .expect("shutdown triggered by shard 1");
                }
            }
        }
    });
    for r in results {
        r.unwrap();
    }
}

#[test]
fn an_unlistened_sigint_still_ends_a_program_running_shards() {
    let name = "an_unlistened_sigint_still_ends_a_program_running_shards";
    if !support::is_child() {
        let started = Instant::now();
        let (status, out) = support::run_child(name, &[]);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(Signal::SIGINT as i32),
            "the child should die of SIGINT ({status}):\n{out}"
        );
        assert!(!out.contains("still running"), "{out}");
        assert!(started.elapsed() < Duration::from_secs(30));
        return;
    }
    two_shards().run(|s| async move {
        if s.id() == 0 {
            kill(getpid(), Signal::SIGINT).unwrap();
        }
        // The default action should end the process well before this.
        ringloop::time::sleep(Duration::from_secs(20)).await;
        println!("still running after 20 s");
    });
}

#[test]
fn a_signal_stream_sees_each_arrival() {
    let name = "a_signal_stream_sees_each_arrival";
    if !support::is_child() {
        let (status, out) = support::run_child(name, &[]);
        assert!(status.success(), "child failed ({status}):\n{out}");
        assert!(out.contains("3 hangups"), "{out}");
        return;
    }
    ringloop::block_on(async {
        let mut hangups = signal(SignalKind::hangup()).unwrap();
        let mut seen = 0;
        for _ in 0..3 {
            kill(getpid(), Signal::SIGHUP).unwrap();
            ringloop::time::timeout(Duration::from_secs(20), hangups.recv())
                .await
                .expect("SIGHUP within 20 s")
                .expect("signalfd");
            seen += 1;
        }
        println!("{seen} hangups");
    });
}

#[test]
fn shutdown_wakes_waiters_on_every_shard_and_on_plain_threads() {
    let shutdown = Shutdown::new();
    let watcher = std::thread::spawn({
        let shutdown = shutdown.clone();
        move || {
            let started = Instant::now();
            while !shutdown.is_triggered() {
                assert!(started.elapsed() < Duration::from_secs(20));
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    let results = two_shards().run({
        let shutdown = shutdown.clone();
        move |s| {
            let shutdown = shutdown.clone();
            async move {
                // Many waiters per shard, some dropped before the trigger.
                let mut waits = Vec::new();
                for i in 0..100 {
                    let shutdown = shutdown.clone();
                    let dropped_early = i % 3 == 0;
                    waits.push(ringloop::spawn(async move {
                        if dropped_early {
                            let _ =
                                ringloop::time::timeout(Duration::from_millis(1), shutdown.wait())
                                    .await;
                            false
                        } else {
                            shutdown.wait().await;
                            true
                        }
                    }));
                }
                if s.id() == 0 {
                    ringloop::time::sleep(Duration::from_millis(20)).await;
                    std::thread::spawn(move || shutdown.trigger());
                }
                let mut released = 0;
                for w in waits {
                    let done = ringloop::time::timeout(Duration::from_secs(20), w)
                        .await
                        .expect("every waiter released within 20 s")
                        .unwrap();
                    released += usize::from(done);
                }
                released
            }
        }
    });
    for r in results {
        assert_eq!(r.unwrap(), 66);
    }
    watcher.join().unwrap();
    // Waiting on a triggered switch completes at once.
    ringloop::block_on(Shutdown::clone(&shutdown).wait());
}

#[test]
fn every_listener_of_a_signal_sees_it_even_when_other_threads_block_it() {
    let name = "every_listener_of_a_signal_sees_it_even_when_other_threads_block_it";
    if !support::is_child() {
        let (status, out) = support::run_child(name, &[]);
        assert!(status.success(), "child failed ({status}):\n{out}");
        assert!(out.contains("both listeners saw SIGUSR1"), "{out}");
        return;
    }
    // A thread of the program that blocks it, as a signalfd user would.
    let mut usr1 = nix::sys::signal::SigSet::empty();
    usr1.add(Signal::SIGUSR1);
    let blocked = std::thread::spawn(move || {
        usr1.thread_block().unwrap();
        std::thread::sleep(Duration::from_millis(300));
    });
    let results = two_shards().run(|_| async move {
        let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
        ringloop::time::sleep(Duration::from_millis(100)).await;
        kill(getpid(), Signal::SIGUSR1).unwrap();
        ringloop::time::timeout(Duration::from_secs(20), usr1.recv())
            .await
            .expect("SIGUSR1 within 20 s")
            .expect("listener");
    });
    for r in results {
        r.unwrap();
    }
    blocked.join().unwrap();
    println!("both listeners saw SIGUSR1");
}
