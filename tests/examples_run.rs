//! The short examples of the ladder (timers, channels, shards, chat) as a user runs them: each is a
//! child process that must exit 0 within a minute, its last line of output starting `ok:`.

mod support;

use std::io::Read;

use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one example may run: each needs well under 2 s.
const LIMIT: Duration = Duration::from_secs(60);

/// Reads a child's pipe to the end on a thread, so a full pipe can never stall the child.
fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Runs `examples/<name>` (killing it by pid if it overruns [`LIMIT`]) and checks that it
/// exits 0 and that the last line it prints starts with `ok:`.
fn runs_to_completion(name: &str) {
    let Some(bin) = support::example_binary(name) else {
        println!("skipped: examples/{name} is not built (run `cargo test`, which builds examples)");
        return;
    };
    let mut child = Command::new(&bin)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the example") {
            break status;
        }
        if start.elapsed() > LIMIT {
            let pid = child.id();
            let _ = child.kill(); // SIGKILL to the child's pid
            let _ = child.wait();
            panic!("examples/{name} (pid {pid}) still running after {LIMIT:?}: killed it");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    let took = start.elapsed();
    assert!(
        status.success(),
        "examples/{name} exited with {status} after {took:?}\n--- stdout\n{stdout}--- stderr\n{stderr}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("ok:"),
        "examples/{name}: last line {last:?} does not start with `ok:`\n--- stdout\n{stdout}"
    );
}

#[test]
fn timers_example_runs_to_completion() {
    runs_to_completion("timers");
}

#[test]
fn channels_example_runs_to_completion() {
    runs_to_completion("channels");
}

#[test]
fn shards_example_runs_to_completion() {
    runs_to_completion("shards");
}

#[test]
fn chat_example_runs_to_completion() {
    runs_to_completion("chat");
}
