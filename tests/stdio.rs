//! `io::{stdin, stdout, stderr}` through the ring, run in a child process whose standard
//! streams the test controls: stdin an `O_NONBLOCK` socket whose data comes late (the handle
//! must wait for it, not fail: this kernel's io_uring waits by itself; on one that answers
//! `EAGAIN`, the handle's poll-and-retry does), stdout and stderr pipes.

mod support;

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use ringloop::io::{stderr, stdin, stdout, AsyncRead, AsyncWriteExt};

const LIMIT: Duration = Duration::from_secs(60);

/// The child: reports whether its stdin is non-blocking, copies stdin to stdout upper-cased,
/// then says goodbye on stderr.
fn child_body() {
    let flags =
        OFlag::from_bits_retain(fcntl(std::io::stdin().as_fd(), FcntlArg::F_GETFL).unwrap());
    ringloop::block_on(async {
        let (input, output, errors) = (stdin(), stdout(), stderr());
        let note = format!("nonblocking={}\n", flags.contains(OFlag::O_NONBLOCK));
        let (res, _) = output.write_all(note.into_bytes()).await;
        res.unwrap();
        let mut got = Vec::new();
        for _ in 0..10_000 {
            let (res, buf) = input.read(Vec::with_capacity(7)).await;
            if res.unwrap() == 0 {
                break;
            }
            got.extend_from_slice(&buf);
        }
        let (res, _) = output
            .write_all(
                format!("got:{}", String::from_utf8(got).unwrap().to_uppercase()).into_bytes(),
            )
            .await;
        res.unwrap();
        let (res, _) = errors.write_all(b"bye on stderr\n".to_vec()).await;
        res.unwrap();
    });
}

#[test]
fn standard_streams_go_through_the_ring_even_when_stdin_is_nonblocking() {
    if support::is_child() {
        child_body();
        return;
    }
    support::watchdog("stdio", LIMIT, || {
        // std makes both ends close-on-exec: the child inherits only its stdin, and sees end
        // of input when this side shuts down.
        let (theirs, ours) = std::os::unix::net::UnixStream::pair().unwrap();
        theirs.set_nonblocking(true).unwrap();
        let read_end = std::os::fd::OwnedFd::from(theirs);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "standard_streams_go_through_the_ring_even_when_stdin_is_nonblocking",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("RINGLOOP_CHILD", "1")
            .stdin(Stdio::from(read_end))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut writer = ours;
        // Nothing to read at first: the child's first read finds none and must wait.
        std::thread::sleep(Duration::from_millis(200));
        writer.write_all(b"hello\n").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        writer.write_all(b"world\n").unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "child {pid} failed: {status}\n{out}\n{err}"
        );
        assert!(out.contains("nonblocking=true"), "{out}");
        assert!(out.contains("got:HELLO\nWORLD\n"), "{out}");
        assert!(err.contains("bye on stderr"), "{err}");
    });
}
