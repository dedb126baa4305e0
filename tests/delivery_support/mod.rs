//! Helpers for the delivery demo's tests: the demo as a child process on a free port with its
//! own database, a small keep-alive HTTP/1.1 client over std's TcpStream, and polling helpers
//! bounded in time.
// Each delivery test binary uses a different subset of these.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `target/<profile>/examples/delivery`, built by `cargo test` next to this test binary.
pub fn binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("examples").join("delivery");
    path.exists().then_some(path)
}

/// A fresh directory for one test's database, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("delivery-test-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn db(&self) -> PathBuf {
        self.0.join("delivery.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The demo running as a child process; killed (by pid) on drop.
pub struct Server {
    pub child: Child,
    pub addr: String,
    /// Everything it printed after its first line, gathered by a thread.
    pub output: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    /// Starts the demo on a free loopback port with the database at `db` and `extra` flags;
    /// returns once it prints its address.
    pub fn start(bin: &Path, db: &Path, extra: &[&str]) -> Server {
        let mut args = vec![
            "--addr",
            "127.0.0.1:0",
            "--db",
            db.to_str().expect("utf-8 path"),
        ];
        args.extend_from_slice(extra);
        let mut child = Command::new(bin)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the delivery example");
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("read its first line");
        let addr = match line.trim().strip_prefix("listening on http://") {
            Some(rest) => rest.trim_end_matches('/').to_owned(),
            None => {
                let mut err = String::new();
                let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
                let _ = child.kill();
                let _ = child.wait();
                panic!("the demo did not start: {line:?} {err}");
            }
        };
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        for stream in [
            Box::new(out) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("piped stderr")),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    output.lock().unwrap().push_str(&(line + "\n"));
                }
            });
        }
        Server {
            child,
            addr,
            output,
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.addr)
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    /// Sends `signal` and waits (bounded) for the exit.
    pub fn stop_with(&mut self, signal: nix::sys::signal::Signal) -> std::process::ExitStatus {
        nix::sys::signal::kill(self.pid(), signal).expect("signal the demo");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "the demo still runs 15 s after {signal}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response: status, headers (lower-case names) and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One keep-alive connection.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).expect("connect to the demo");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.request("GET", path, None)
    }

    pub fn post(&mut self, path: &str, body: &str) -> Response {
        self.request("POST", path, Some(body))
    }

    pub fn request(&mut self, method: &str, path: &str, body: Option<&str>) -> Response {
        self.send_raw(&request_bytes(method, path, body));
        self.read_response().expect("a response")
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send the request");
    }

    /// Reads one response; `None` if the server closed first.
    pub fn read_response(&mut self) -> Option<Response> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(head)) = resp.parse(&self.buf) {
                let headers: Vec<(String, String)> = resp
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let status = resp.code.expect("a status code");
                let len: usize = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .map_or(0, |(_, v)| v.parse().expect("numeric Content-Length"));
                while self.buf.len() < head + len {
                    if !self.fill() {
                        return None;
                    }
                }
                let body = String::from_utf8_lossy(&self.buf[head..head + len]).into_owned();
                self.buf.drain(..head + len);
                return Some(Response {
                    status,
                    headers,
                    body,
                });
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// Reads more; false at end of stream or on error (a reset counts as closed).
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// True once the server has closed the connection (reads end), within `limit`.
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        self.stream.set_read_timeout(Some(limit)).unwrap();
        let mut chunk = [0u8; 1024];
        let start = Instant::now();
        while start.elapsed() < limit {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
                Err(_) => return true,
            }
        }
        false
    }
}

pub fn request_bytes(method: &str, path: &str, body: Option<&str>) -> Vec<u8> {
    let body = body.unwrap_or("");
    format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// An order body.
pub fn order(item: &str, quantity: u32, address: &str) -> String {
    serde_json::json!({ "item": item, "quantity": quantity, "address": address }).to_string()
}

/// Polls `GET /orders/{id}` until its status is `want` (or terminal), for at most `limit`;
/// returns the last order JSON.
pub fn wait_for_status(
    client: &mut Client,
    id: u64,
    want: &str,
    limit: Duration,
) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let resp = client.get(&format!("/orders/{id}"));
        assert_eq!(resp.status, 200, "GET /orders/{id}: {}", resp.body);
        let order = resp.json();
        let status = order["status"].as_str().unwrap_or("").to_owned();
        if status == want || status == "delivered" || status == "failed" {
            return order;
        }
        assert!(
            start.elapsed() < limit,
            "order {id} still {status} after {limit:?}, waiting for {want}: {order}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The statuses of an order's history, in order.
pub fn history(order: &serde_json::Value) -> Vec<String> {
    order["history"]
        .as_array()
        .expect("history is an array")
        .iter()
        .map(|h| h["status"].as_str().expect("status").to_owned())
        .collect()
}

pub const FULL_PATH: [&str; 6] = [
    "placed",
    "accepted",
    "assigned",
    "slip_filled",
    "handed_to_logistics",
    "delivered",
];
