//! The UDP echo examples as the benchmark runs them: each server (ringloop's pooled and
//! `--plain` modes, tokio's) a child process, `udp_echo_client` against it for a second; the
//! client must report datagrams echoed and no reply that fails its check, and the server must
//! exit 0 on SIGINT with the count of datagrams it echoed.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// How long any step may take before the test fails: ten times what it needs, or more.
const STEP: Duration = Duration::from_secs(15);

/// A running child; killed by its pid if the test fails before it exits.
struct Running {
    child: Child,
    /// Its stdout, line by line, read on a thread so no read can hang the test.
    lines: Receiver<String>,
}

impl Running {
    fn start(bin: &Path, args: &[&str]) -> Running {
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
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
        Running { child, lines }
    }

    /// The next line that starts with `prefix` (earlier lines are skipped).
    fn line_starting(&self, prefix: &str) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line starting with {prefix:?}: {e}"),
            }
        }
    }

    /// Waits (polling, at most [`STEP`]) for the child to exit; returns whether it succeeded
    /// and its stderr.
    fn exit(&mut self) -> (bool, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                start.elapsed() < STEP,
                "pid {} still running after {STEP:?}",
                self.child.id()
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        (status.success(), stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill(); // SIGKILL to the child's pid
            let _ = self.child.wait();
        }
    }
}

fn client_against(name: &str, server_args: &[&str], size: &str) {
    let (Some(server_bin), Some(client_bin)) = (
        support::example_binary(name),
        support::example_binary("udp_echo_client"),
    ) else {
        println!("skipped: examples/{name} or udp_echo_client is not built (run `cargo test`)");
        return;
    };
    let mut args = vec!["--addr", "127.0.0.1:0"];
    args.extend_from_slice(server_args);
    let mut server = Running::start(&server_bin, &args);
    let addr = server
        .line_starting("listening on ")
        .trim_start_matches("listening on ")
        .to_owned();

    let mut client = Running::start(
        &client_bin,
        &[
            "--addr",
            &addr,
            "--clients",
            "16",
            "--size",
            size,
            "--duration",
            "1s",
            "--warmup",
            "200ms",
            "--json",
        ],
    );
    let json = client.line_starting("{");
    let (ok, stderr) = client.exit();
    assert!(ok, "{name} {server_args:?}: the client failed\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["failures"], 0, "{name} {server_args:?}: {json}");
    let dps = report["dps"].as_f64().unwrap();
    assert!(
        dps > 0.0,
        "{name} {server_args:?}: no datagram echoed: {json}"
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let summary = server.line_starting("echoed ");
    let (ok, stderr) = server.exit();
    assert!(ok, "{name} {server_args:?}: exit after SIGINT\n{stderr}");
    let echoed: u64 = summary
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("summary {summary:?}"));
    // Every datagram the client counted was echoed; late replies and the tail add more.
    let answered = report["total_datagrams"].as_u64().unwrap();
    assert!(
        echoed >= answered,
        "{name} {server_args:?}: echoed {echoed}, the client got {answered} back"
    );
}

#[test]
fn the_pooled_ringloop_server_echoes_every_datagram_intact() {
    support::watchdog("udp_echo pooled", Duration::from_secs(60), || {
        client_against("udp_echo", &[], "64");
        client_against("udp_echo", &[], "1024");
        // A pool of two buffers runs dry under 16 clients: the receive pauses and re-arms.
        client_against("udp_echo", &["--pool-buffers", "2"], "1024");
        // One send in flight at most: the echo waits for each send's slot.
        client_against("udp_echo", &["--depth", "1"], "1024");
    });
}

#[test]
fn the_plain_ringloop_server_echoes_every_datagram_intact() {
    support::watchdog("udp_echo --plain", Duration::from_secs(60), || {
        client_against("udp_echo", &["--plain"], "1024");
    });
}

#[test]
fn the_tokio_server_echoes_every_datagram_intact() {
    support::watchdog("udp_echo_tokio", Duration::from_secs(60), || {
        client_against("udp_echo_tokio", &[], "1024");
    });
}
