//! Child processes: output and exit codes, both pipe directions at once, waits that leave the
//! runtime running, kills, drops (killed or not, never left a zombie), spawn errors, and many
//! children at once. Every child is found again by its pid: reaped when the test expects it,
//! killed if a test fails while it still runs.

mod support;

use std::cell::Cell;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ringloop::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use ringloop::process::{ChildStdout, Command};
use ringloop::time::sleep;
use support::watchdog;

const LIMIT: Duration = Duration::from_secs(60);

#[path = "support/pids.rs"]
mod pids;
use pids::{exists, gone_within, is_zombie, Cleanup};

#[test]
fn output_captures_what_echo_prints_and_its_success() {
    watchdog("echo", LIMIT, || {
        ringloop::block_on(async {
            let out = Command::new("echo")
                .args(["hello", "world"])
                .output()
                .await
                .unwrap();
            assert!(out.status.success());
            assert_eq!(out.stdout, b"hello world\n");
            assert_eq!(out.stderr, b"");

            let out = Command::new("sh")
                .args(["-c", "echo out; echo err >&2; exit 4"])
                .output()
                .await
                .unwrap();
            assert_eq!(out.status.code(), Some(4));
            assert_eq!(out.stdout, b"out\n");
            assert_eq!(out.stderr, b"err\n");
        });
    });
}

#[test]
fn exit_codes_come_back_from_wait_and_status() {
    watchdog("exit codes", LIMIT, || {
        ringloop::block_on(async {
            let mut child = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
            let pid = child.id().unwrap();
            let _cleanup = Cleanup(pid);
            let status = child.wait().await.unwrap();
            assert_eq!(status.code(), Some(3));
            assert!(!status.success());
            assert_eq!(child.id(), None, "no pid once reaped");
            assert!(!exists(pid), "reaped by wait");
            assert_eq!(child.wait().await.unwrap(), status, "the same status again");
            assert_eq!(child.try_wait().unwrap(), Some(status));

            for code in [0, 1, 42, 255] {
                let status = Command::new("sh")
                    .arg("-c")
                    .arg(format!("exit {code}"))
                    .status()
                    .await
                    .unwrap();
                assert_eq!(status.code(), Some(code));
            }
        });
    });
}

#[test]
fn try_wait_is_none_while_the_child_runs_and_the_status_after() {
    watchdog("try_wait", LIMIT, || {
        ringloop::block_on(async {
            let mut child = Command::new("sh")
                .args(["-c", "read x; exit 5"])
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            let _cleanup = Cleanup(child.id().unwrap());
            assert_eq!(child.try_wait().unwrap(), None);
            drop(child.stdin.take()); // EOF: `read` returns, the shell exits
            let until = Instant::now() + Duration::from_secs(10);
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                assert!(Instant::now() < until, "the child never exited");
                sleep(Duration::from_millis(5)).await;
            };
            assert_eq!(status.code(), Some(5));
            assert_eq!(child.wait().await.unwrap().code(), Some(5));
        });
    });
}

#[test]
fn a_mebibyte_goes_through_cat_and_back_with_both_pipes_served_at_once() {
    watchdog("cat 1 MiB", LIMIT, || {
        ringloop::block_on(async {
            let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
            let mut child = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let pid = child.id().unwrap();
            let _cleanup = Cleanup(pid);
            let stdin = child.stdin.take().unwrap();
            let stdout = child.stdout.take().unwrap();
            // 1 MiB is far beyond a pipe's 64 KiB: writing all before reading would stall
            // cat on a full stdout and us on a full stdin.
            let writer = ringloop::spawn({
                let data = data.clone();
                async move {
                    let (res, _) = stdin.write_all(data).await;
                    res.unwrap();
                    stdin.close().await.unwrap(); // EOF for cat
                }
            });
            let (res, echoed) = stdout.read_to_end(Vec::new()).await;
            assert_eq!(res.unwrap(), data.len());
            assert!(echoed == data, "cat gave back different bytes");
            writer.await.unwrap();
            assert!(child.wait().await.unwrap().success());
            assert!(!exists(pid));

            // The same within one task: join! polls the writer and the reader in turn.
            let mut child = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let _cleanup = Cleanup(child.id().unwrap());
            let stdin = child.stdin.take().unwrap();
            let stdout = child.stdout.take().unwrap();
            let (written, (res, echoed)) = ringloop::join!(
                async move {
                    let (res, _) = stdin.write_all(data.clone()).await;
                    drop(stdin);
                    res.map(|()| data)
                },
                stdout.read_to_end(Vec::with_capacity(4096)),
            );
            let data = written.unwrap();
            assert_eq!(res.unwrap(), data.len());
            assert!(echoed == data);
            assert!(child.wait().await.unwrap().success());
        });
    });
}

#[test]
fn wait_leaves_the_runtime_running_other_tasks() {
    watchdog("wait does not block", LIMIT, || {
        ringloop::block_on(async {
            let ticks = Rc::new(Cell::new(0u32));
            let ticker = ringloop::spawn({
                let ticks = ticks.clone();
                async move {
                    for _ in 0..1000 {
                        sleep(Duration::from_millis(10)).await;
                        ticks.set(ticks.get() + 1);
                    }
                }
            });
            let mut child = Command::new("sleep").arg("0.3").spawn().unwrap();
            let _cleanup = Cleanup(child.id().unwrap());
            let start = Instant::now();
            assert!(child.wait().await.unwrap().success());
            let waited = start.elapsed();
            assert!(waited >= Duration::from_millis(250), "waited {waited:?}");
            // 30 ticks if nothing else runs; a blocking wait would allow none.
            assert!(
                ticks.get() >= 10,
                "{} ticks in {waited:?}: the wait blocked the runtime",
                ticks.get()
            );
            ticker.abort();
        });
    });
}

#[test]
fn kill_ends_a_sleeping_child_and_wait_reports_the_signal() {
    watchdog("kill", LIMIT, || {
        ringloop::block_on(async {
            let mut child = Command::new("sleep").arg("100").spawn().unwrap();
            let pid = child.id().unwrap();
            let _cleanup = Cleanup(pid);
            let start = Instant::now();
            child.kill().await.unwrap();
            assert!(start.elapsed() < Duration::from_secs(10));
            let status = child.wait().await.unwrap();
            assert_eq!(status.signal(), Some(libc::SIGKILL));
            assert_eq!(status.code(), None);
            assert!(!exists(pid), "kill waits, which reaps");
            child.kill().await.unwrap(); // already reaped: nothing to do

            // start_kill does not wait: the child stays a zombie until a wait.
            let mut child = Command::new("sleep").arg("100").spawn().unwrap();
            let pid = child.id().unwrap();
            let _cleanup = Cleanup(pid);
            child.start_kill().unwrap();
            let status = child.wait().await.unwrap();
            assert_eq!(status.signal(), Some(libc::SIGKILL));
            assert!(!exists(pid));
        });
    });
}

#[test]
fn kill_on_drop_kills_the_child_and_it_is_reaped() {
    watchdog("kill_on_drop", LIMIT, || {
        ringloop::block_on(async {
            let mut command = Command::new("sleep");
            command.arg("100").kill_on_drop(true);
            assert!(command.get_kill_on_drop());
            let child = command.spawn().unwrap();
            let pid = child.id().unwrap();
            let _cleanup = Cleanup(pid);
            drop(child);
            assert!(
                gone_within(pid, Duration::from_secs(10)).await,
                "{pid} still there (zombie: {})",
                is_zombie(pid)
            );
        });
    });
}

#[test]
fn a_dropped_child_runs_on_and_is_reaped_when_it_exits() {
    watchdog("dropped child reaped", LIMIT, || {
        ringloop::block_on(async {
            let child = Command::new("sleep").arg("0.2").spawn().unwrap();
            let pid = child.id().unwrap();
            let _cleanup = Cleanup(pid);
            let dropped = Instant::now();
            drop(child);
            sleep(Duration::from_millis(50)).await;
            assert!(exists(pid) && !is_zombie(pid), "not killed: it runs on");
            assert!(
                gone_within(pid, Duration::from_secs(10)).await,
                "{pid} not reaped (zombie: {})",
                is_zombie(pid)
            );
            assert!(
                dropped.elapsed() >= Duration::from_millis(150),
                "ran to its end"
            );
        });
    });
}

#[test]
fn spawning_a_missing_program_is_not_found() {
    watchdog("not found", LIMIT, || {
        ringloop::block_on(async {
            let err = Command::new("/nonexistent/ringloop-no-such-program")
                .spawn()
                .unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
            let err = Command::new("ringloop-no-such-program-on-path")
                .output()
                .await
                .unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        });
    });
}

#[test]
fn fifty_concurrent_children_are_all_reaped_with_their_own_statuses() {
    watchdog("50 children", LIMIT, || {
        ringloop::block_on(async {
            let mut tasks = ringloop::task::JoinSet::new();
            let mut pids = Vec::new();
            let mut cleanups = Vec::new();
            for code in 0..50 {
                let mut child = Command::new("sh")
                    .arg("-c")
                    .arg(format!("sleep 0.0{}; exit {code}", code % 10))
                    .spawn()
                    .unwrap();
                let pid = child.id().unwrap();
                pids.push(pid);
                cleanups.push(Cleanup(pid));
                tasks.spawn(async move { (code, child.wait().await.unwrap()) });
            }
            let mut seen = [false; 50];
            while let Some(joined) = tasks.join_next().await {
                let (code, status) = joined.unwrap();
                assert_eq!(status.code(), Some(code));
                seen[code as usize] = true;
            }
            assert!(seen.iter().all(|s| *s));
            for pid in pids {
                assert!(!exists(pid), "{pid} not reaped");
            }
        });
    });
}

#[test]
fn wait_closes_stdin_so_a_child_reading_to_the_end_can_exit() {
    watchdog("wait closes stdin", LIMIT, || {
        ringloop::block_on(async {
            let mut child = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            let _cleanup = Cleanup(child.id().unwrap());
            let (res, _) = child.stdin.as_ref().unwrap().write_all(b"x".to_vec()).await;
            res.unwrap();
            assert!(child.wait().await.unwrap().success());
            assert!(child.stdin.is_none());
        });
    });
}

#[test]
fn environment_and_working_directory_reach_the_child() {
    watchdog("env and cwd", LIMIT, || {
        ringloop::block_on(async {
            let out = Command::new("sh")
                .args(["-c", "echo \"$A-$B-${C:-gone}\"; pwd"])
                .env("A", "1")
                .envs([("B", "2"), ("C", "3")])
                .env_remove("C")
                .current_dir("/")
                .output()
                .await
                .unwrap();
            assert_eq!(out.stdout, b"1-2-gone\n/\n");

            let out = Command::new("/bin/sh")
                .args(["-c", "echo \"${HOME:-unset}\""])
                .env_clear()
                .env("X", "1")
                .output()
                .await
                .unwrap();
            assert_eq!(out.stdout, b"unset\n");
        });
    });
}

#[test]
fn reads_see_the_end_of_the_pipe_once_the_child_exits() {
    watchdog("eof", LIMIT, || {
        ringloop::block_on(async {
            let mut child = Command::new("printf")
                .arg("abc")
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let _cleanup = Cleanup(child.id().unwrap());
            assert!(child.wait().await.unwrap().success());
            let stdout = child.stdout.take().unwrap();
            let (res, buf) = stdout.read_exact(Vec::with_capacity(3)).await;
            res.unwrap();
            assert_eq!(buf, b"abc");
            let (res, _) = AsyncRead::read(&stdout, Vec::with_capacity(8)).await;
            assert_eq!(res.unwrap(), 0, "end of file");
            stdout.close().await.unwrap();
        });
    });
}

#[test]
fn writing_to_a_child_that_closed_its_stdin_is_broken_pipe() {
    watchdog("broken pipe", LIMIT, || {
        ringloop::block_on(async {
            let mut child = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
            let _cleanup = Cleanup(child.id().unwrap());
            let stdin = child.stdin.take().unwrap();
            assert!(child.wait().await.unwrap().success());
            let (res, _) = stdin.write_all(vec![0u8; 1 << 17]).await;
            assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
        });
    });
}

#[test]
fn one_childs_stdout_copies_into_anothers_stdin() {
    watchdog("pipeline", LIMIT, || {
        ringloop::block_on(async {
            let mut producer = Command::new("sh")
                .args(["-c", "for i in 1 2 3; do echo line$i; done"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let _cleanup_producer = Cleanup(producer.id().unwrap());
            let mut consumer = Command::new("wc")
                .arg("-l")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let _cleanup_consumer = Cleanup(consumer.id().unwrap());
            let from = producer.stdout.take().unwrap();
            let to = consumer.stdin.take().unwrap();
            let copied = ringloop::io::copy(&from, &to).await.unwrap();
            assert_eq!(copied, 18);
            drop(to);
            assert!(producer.wait().await.unwrap().success());
            let out = consumer.wait_with_output().await.unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");
        });
    });
}

#[test]
fn from_std_wraps_a_std_childs_pipe_and_makes_it_blocking() {
    watchdog("from_std", LIMIT, || {
        ringloop::block_on(async {
            let mut std_child = std::process::Command::new("sh")
                .args(["-c", "sleep 0.05; echo late"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let _cleanup = Cleanup(std_child.id());
            let pipe = std_child.stdout.take().unwrap();
            // As a tokio-minded caller might leave it: io_uring would answer EAGAIN.
            let flags = nix::fcntl::fcntl(pipe.as_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap();
            let flags = nix::fcntl::OFlag::from_bits_retain(flags) | nix::fcntl::OFlag::O_NONBLOCK;
            nix::fcntl::fcntl(pipe.as_fd(), nix::fcntl::FcntlArg::F_SETFL(flags)).unwrap();
            let stdout = ChildStdout::from_std(pipe).unwrap();
            let (res, buf) = stdout.read_to_end(Vec::new()).await;
            res.unwrap();
            assert_eq!(buf, b"late\n", "the read waited for the child's write");
            assert!(std_child.wait().unwrap().success());
        });
    });
}
