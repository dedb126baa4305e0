//! The echo example as a user runs it: a child process that serves, echoes, and on SIGINT
//! stops accepting, lets open connections finish within its grace period and exits cleanly
//! with its summary, on one shard or several; and its one-command demo.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// How long any step may take before the test fails: ten times what it needs, or more.
const STEP: Duration = Duration::from_secs(10);

/// A running echo server; killed by pid if the test fails before it exits.
struct Server {
    child: Child,
    /// Its stdout, line by line, read on a thread so no read can hang the test.
    lines: Receiver<String>,
    addr: String,
}

impl Server {
    fn start(bin: &std::path::Path, extra: &[&str]) -> Server {
        let mut child = Command::new(bin)
            .args(["--addr", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            lines,
            addr: String::new(),
        };
        server.addr = server
            .line_starting("listening on ")
            .trim_start_matches("listening on ")
            .to_owned();
        server
    }

    /// The next line that starts with `prefix` (earlier lines are skipped).
    fn line_starting(&self, prefix: &str) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line starting with {prefix:?} from the server: {e}"),
            }
        }
    }

    fn interrupt(&self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
    }

    /// Waits (polling, at most `limit`) for the server to exit; returns its status and the
    /// summary line.
    fn exit_within(&mut self, limit: Duration) -> (ExitStatus, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                start.elapsed() < limit,
                "still running {limit:?} after SIGINT"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        (status, self.line_starting("served "))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn connect(addr: &str) -> TcpStream {
    let conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(STEP)).unwrap();
    conn
}

fn echo_once(conn: &mut TcpStream, message: &[u8]) {
    conn.write_all(message).unwrap();
    let mut back = vec![0u8; message.len()];
    conn.read_exact(&mut back).unwrap();
    assert_eq!(back, message);
}

fn sigint_exits_cleanly_with_a_summary(shards: &str) {
    let Some(bin) = support::example_binary("echo") else {
        println!("skipped: examples/echo is not built (run `cargo test`, which builds examples)");
        return;
    };
    support::watchdog("echo example", Duration::from_secs(60), || {
        for round in 0..3 {
            let mut server = Server::start(&bin, &["--shards", shards]);
            let mut conn = connect(&server.addr);
            echo_once(&mut conn, b"hello ringloop");
            drop(conn);
            server.interrupt();
            let (status, summary) = server.exit_within(STEP);
            assert!(status.success(), "round {round}: exit {status}");
            assert!(
                summary.starts_with("served 1 connections, echoed 14 bytes, 0 cut off"),
                "round {round}: summary was {summary:?}"
            );
        }
    });
}

#[test]
fn the_echo_server_echoes_and_exits_cleanly_with_a_summary_on_sigint() {
    sigint_exits_cleanly_with_a_summary("1");
}

#[test]
fn the_sharded_echo_server_exits_cleanly_with_the_summary_of_every_shard_on_sigint() {
    sigint_exits_cleanly_with_a_summary("2");
}

#[test]
fn shutdown_with_open_connections_drains_them_within_the_grace_period() {
    let Some(bin) = support::example_binary("echo") else {
        println!("skipped: examples/echo is not built");
        return;
    };
    support::watchdog("echo drain", Duration::from_secs(60), || {
        for shards in ["1", "2"] {
            // A grace period far longer than the test: exiting well before it proves the server
            // exits when the last connection closes, not at the deadline.
            let mut server = Server::start(&bin, &["--shards", shards, "--grace", "100"]);
            let mut conn = connect(&server.addr);
            echo_once(&mut conn, b"before");
            server.interrupt();
            server.line_starting("stopping:");
            // The listeners close as their accept operations are cancelled, a ring turn or
            // two after the line above: new connections are refused soon after, never served.
            let refused_by = Instant::now() + STEP;
            while TcpStream::connect_timeout(&server.addr.parse().unwrap(), STEP).is_ok() {
                assert!(
                    Instant::now() < refused_by,
                    "{shards} shard(s): still accepting connections {STEP:?} after shutdown"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            // Mid-exchange during the grace period: the open connection is still served.
            echo_once(&mut conn, b"during grace");
            drop(conn);
            let (status, summary) = server.exit_within(STEP);
            assert!(status.success(), "{shards} shard(s): exit {status}");
            assert!(
                summary.starts_with("served 1 connections, echoed 18 bytes, 0 cut off"),
                "{shards} shard(s): summary was {summary:?}"
            );
        }
    });
}

#[test]
fn shutdown_cuts_off_a_connection_still_open_at_the_grace_deadline() {
    let Some(bin) = support::example_binary("echo") else {
        println!("skipped: examples/echo is not built");
        return;
    };
    support::watchdog("echo cut-off", Duration::from_secs(60), || {
        for shards in ["1", "2"] {
            let mut server = Server::start(&bin, &["--shards", shards, "--grace", "1"]);
            let mut conn = connect(&server.addr);
            echo_once(&mut conn, b"and then silence");
            let interrupted = Instant::now();
            server.interrupt();
            let (status, summary) = server.exit_within(STEP);
            let took = interrupted.elapsed();
            assert!(status.success(), "{shards} shard(s): exit {status}");
            assert!(
                took >= Duration::from_millis(900),
                "{shards} shard(s): exited after {took:?}, before the 1 s grace period"
            );
            assert!(
                summary.starts_with("served 1 connections, echoed 16 bytes, 1 cut off"),
                "{shards} shard(s): summary was {summary:?}"
            );
            // The server closed the connection it cut off.
            let mut rest = Vec::new();
            assert_eq!(
                conn.read_to_end(&mut rest).map(|_| rest.len()).unwrap_or(0),
                0
            );
        }
    });
}

#[test]
fn the_echo_demo_runs_server_and_client_and_verifies_every_byte() {
    let Some(bin) = support::example_binary("echo") else {
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
