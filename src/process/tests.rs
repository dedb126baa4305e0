//! The fallbacks forced: every way of waiting (`IORING_OP_WAITID`, a pidfd polled in the
//! ring, the timer) must reap with the right status, leave the runtime running meanwhile,
//! kill, and reap dropped children; and a child whose runtime is gone goes on the orphan list.

use std::cell::Cell;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::exit::{orphans, reap_orphans, Mechanism};
use super::Command;
use crate::time::sleep;

const MECHANISMS: [Mechanism; 3] = [Mechanism::WaitId, Mechanism::Pidfd, Mechanism::Timer];

/// Whether the ring has `IORING_OP_WAITID` (Linux 6.7+).
fn has_waitid() -> bool {
    crate::block_on(async {
        crate::runtime::current_driver().supports(crate::driver::op::waitid::CODE)
    })
}

/// The mechanisms this kernel can run.
fn mechanisms() -> Vec<Mechanism> {
    let waitid = has_waitid();
    MECHANISMS
        .into_iter()
        .filter(|m| waitid || *m != Mechanism::WaitId)
        .collect()
}

fn command(program: &str, watch: Mechanism) -> Command {
    let mut command = Command::new(program);
    command.watch = Some(watch);
    command
}

#[path = "../../tests/support/pids.rs"]
mod pids;
use pids::{exists, gone_within, is_zombie, Cleanup};

#[test]
fn a_child_waits_with_waitid_where_the_ring_has_it_else_with_a_pidfd() {
    let waitid = has_waitid();
    crate::block_on(async {
        let mut child = Command::new("true").spawn().unwrap();
        let expected = if waitid {
            Mechanism::WaitId
        } else {
            Mechanism::Pidfd
        };
        assert_eq!(child.mechanism(), Some(expected));
        assert!(child.wait().await.unwrap().success());
        assert_eq!(child.mechanism(), None, "reaped: nothing left to watch");
    });
}

#[test]
fn every_mechanism_reports_exit_codes() {
    for watch in mechanisms() {
        crate::block_on(async {
            for code in [0, 3, 255] {
                let mut child = command("sh", watch)
                    .args(["-c", &format!("exit {code}")])
                    .spawn()
                    .unwrap();
                let _cleanup = Cleanup(child.id().unwrap());
                assert_eq!(child.mechanism(), Some(watch));
                let status = child.wait().await.unwrap();
                assert_eq!(status.code(), Some(code), "{watch:?}");
                assert_eq!(child.wait().await.unwrap(), status, "the same status again");
                assert_eq!(child.try_wait().unwrap(), Some(status));
            }
        });
    }
}

#[test]
fn every_mechanism_leaves_the_runtime_running_while_it_waits() {
    for watch in mechanisms() {
        crate::block_on(async {
            let ticks = Rc::new(Cell::new(0u32));
            let ticker = crate::spawn({
                let ticks = ticks.clone();
                async move {
                    for _ in 0..1000 {
                        sleep(Duration::from_millis(10)).await;
                        ticks.set(ticks.get() + 1);
                    }
                }
            });
            let mut child = command("sleep", watch).arg("0.3").spawn().unwrap();
            let _cleanup = Cleanup(child.id().unwrap());
            let start = Instant::now();
            assert!(child.wait().await.unwrap().success());
            assert!(start.elapsed() >= Duration::from_millis(250), "{watch:?}");
            assert!(
                ticks.get() >= 10,
                "{watch:?}: only {} ticks in {:?}",
                ticks.get(),
                start.elapsed()
            );
            ticker.abort();
        });
    }
}

#[test]
fn every_mechanism_sees_a_kill() {
    for watch in mechanisms() {
        crate::block_on(async {
            let mut child = command("sleep", watch).arg("100").spawn().unwrap();
            let _cleanup = Cleanup(child.id().unwrap());
            let start = Instant::now();
            child.kill().await.unwrap();
            let status = child.wait().await.unwrap();
            assert_eq!(status.signal(), Some(libc::SIGKILL), "{watch:?}");
            assert!(start.elapsed() < Duration::from_secs(10));
            assert_eq!(child.id(), None);
            child.start_kill().unwrap(); // reaped: nothing to signal, not an error
        });
    }
}

#[test]
fn every_mechanism_reaps_concurrent_children_with_their_own_statuses() {
    for watch in mechanisms() {
        crate::block_on(async {
            let mut tasks = crate::task::JoinSet::new();
            let mut cleanups = Vec::new();
            for code in 0..20 {
                let mut child = command("sh", watch)
                    .args(["-c", &format!("sleep 0.0{}; exit {code}", code % 5)])
                    .spawn()
                    .unwrap();
                let pid = child.id().unwrap();
                cleanups.push(Cleanup(pid));
                tasks.spawn(async move { (code, pid, child.wait().await.unwrap()) });
            }
            let mut seen = 0;
            while let Some(joined) = tasks.join_next().await {
                let (code, pid, status) = joined.unwrap();
                assert_eq!(status.code(), Some(code), "{watch:?}");
                assert!(!exists(pid), "{watch:?}: {pid} reaped");
                seen += 1;
            }
            assert_eq!(seen, 20);
        });
    }
}

#[test]
fn every_mechanism_reaps_a_dropped_child_in_the_background() {
    for watch in mechanisms() {
        crate::block_on(async {
            let child = command("sleep", watch).arg("0.05").spawn().unwrap();
            let pid = child.id().unwrap();
            let _cleanup = Cleanup(pid);
            drop(child);
            assert!(
                gone_within(pid, Duration::from_secs(10)).await,
                "{watch:?}: {pid} still there (zombie: {})",
                is_zombie(pid)
            );

            let child = command("sleep", watch)
                .arg("100")
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let pid = child.id().unwrap();
            let _cleanup = Cleanup(pid);
            drop(child);
            assert!(
                gone_within(pid, Duration::from_secs(10)).await,
                "{watch:?}: {pid} killed and reaped"
            );
        });
    }
}

#[test]
fn a_child_whose_runtime_is_gone_is_reaped_from_the_orphan_list() {
    let rt = crate::Runtime::new().unwrap();
    let pid = rt.block_on(async {
        let child = Command::new("sleep")
            .arg("0.1")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        drop(child); // a reaper task now waits for it ...
        pid
    });
    let _cleanup = Cleanup(pid);
    drop(rt); // ... and is dropped with the runtime: the child is an orphan now
    assert!(exists(pid));
    assert!(orphans() >= 1);
    let until = Instant::now() + Duration::from_secs(10);
    while !is_zombie(pid) && exists(pid) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(is_zombie(pid), "{pid} exited and waits to be reaped");
    reap_orphans(); // what every spawn and every drop of a Child does
    assert!(!exists(pid), "{pid} reaped from the orphan list");
}

#[test]
fn a_child_dropped_outside_a_runtime_is_killed_and_reaped_from_the_orphan_list() {
    let child = crate::block_on(async {
        Command::new("sleep")
            .arg("100")
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    });
    let pid = child.id().unwrap();
    let _cleanup = Cleanup(pid);
    drop(child); // no runtime: SIGKILL, then the orphan list
    let until = Instant::now() + Duration::from_secs(10);
    while exists(pid) && Instant::now() < until {
        reap_orphans();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!exists(pid), "{pid} killed and reaped");
}
