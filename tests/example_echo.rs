//! The echo example as a user runs it: a child process that serves, echoes, and exits cleanly
//! with its summary on SIGINT; and its one-command demo.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `target/<profile>/examples/echo`, built by `cargo test` next to this test binary.
fn echo_binary() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("examples").join("echo");
    path.exists().then_some(path)
}

/// Kills the child by pid if the test fails before it exits.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_echo_server_echoes_and_exits_cleanly_with_a_summary_on_sigint() {
    let Some(bin) = echo_binary() else {
        println!("skipped: examples/echo is not built (run `cargo test`, which builds examples)");
        return;
    };
    support::watchdog("echo example", Duration::from_secs(60), || {
        for round in 0..3 {
            let child = Command::new(&bin)
                .args(["--addr", "127.0.0.1:0"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut child = Reap(child);
            let mut out = BufReader::new(child.0.stdout.take().unwrap());
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            let addr = line
                .trim()
                .strip_prefix("listening on ")
                .expect("prints its address")
                .to_owned();

            let mut conn = std::net::TcpStream::connect(&addr).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            conn.write_all(b"hello ringloop").unwrap();
            let mut back = [0u8; 14];
            conn.read_exact(&mut back).unwrap();
            assert_eq!(&back, b"hello ringloop");
            drop(conn);

            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.0.id() as i32),
                nix::sys::signal::Signal::SIGINT,
            )
            .unwrap();
            let start = Instant::now();
            let status = loop {
                if let Some(status) = child.0.try_wait().unwrap() {
                    break status;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "round {round}: still running 10 s after SIGINT"
                );
                std::thread::sleep(Duration::from_millis(10));
            };
            let mut rest = String::new();
            out.read_to_string(&mut rest).unwrap();
            assert!(status.success(), "round {round}: exit {status}");
            assert!(
                rest.contains("served 1 connections, echoed 14 bytes"),
                "round {round}: summary was {rest:?}"
            );
        }
    });
}

#[test]
fn the_echo_demo_runs_server_and_client_and_verifies_every_byte() {
    let Some(bin) = echo_binary() else {
        println!("skipped: examples/echo is not built");
        return;
    };
    support::watchdog("echo demo", Duration::from_secs(60), || {
        let out = Command::new(&bin)
            .args(["--addr", "127.0.0.1:0", "--demo", "1"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "exit {}: {text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("every byte verified"), "{text}");
    });
}
