//! The delivery web page in headless Chromium: the page fills in and submits its own order
//! form (`/?selftest=1` calls `requestSubmit()`, so the normal submit handler runs), and the
//! test watches, through the DevTools protocol, the order's card reach the "delivered" column
//! of the live board (fed by `/events`). It saves a screenshot to
//! `target/delivery-browser.png`.
//!
//! Needs Debian's `chromium` (`.ci/run` installs it). Without it the test says it skipped,
//! unless `CI=true`, where it fails.

mod delivery_support;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use delivery_support::{binary, Server, TempDir};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Chromium, killed by pid on drop.
struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_order_placed_with_the_page_form_reaches_delivered_on_the_live_board() {
    if !Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{CHROMIUM} is missing under CI: .ci/run should have installed it"
        );
        println!("skipped: {CHROMIUM} is not installed (`apt-get install chromium`)");
        return;
    }
    let Some(bin) = binary() else {
        println!("skipped: examples/delivery is not built (run `cargo test`)");
        return;
    };
    support::watchdog("browser", Duration::from_secs(120), || {
        let dir = TempDir::new("browser");
        let flags = [
            "--shards",
            "2",
            "--courier-delay-ms",
            "150",
            "--travel-ms",
            "300",
            "--courier-ignore-percent",
            "0",
        ];
        let server = Server::start(&bin, &dir.db(), &flags);
        let profile = dir.0.join("chromium-profile");
        let child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1200,900",
                "--remote-debugging-port=0",
                &format!("--user-data-dir={}", profile.display()),
                &format!("http://{}/?selftest=1", server.addr),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let mut browser = Browser(child);
        let port = devtools_port(&mut browser.0);
        let mut page = DevTools::connect(port, "selftest=1");

        let start = Instant::now();
        let id = loop {
            let state = page.evaluate("document.body.dataset.selftest || ''");
            if let Some(id) = state.as_str().and_then(|s| s.strip_prefix("delivered:")) {
                break id.to_owned();
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the page's order did not reach delivered: {state}; page text: {}",
                page.evaluate("document.body.innerText")
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let in_column = page.evaluate(&format!(
            "!!document.querySelector('.column[data-status=delivered] #order-{id}')"
        ));
        assert_eq!(
            in_column,
            serde_json::json!(true),
            "card #{id} in the delivered column"
        );
        let count = page.evaluate(
            "document.querySelector('.column[data-status=delivered] .count').textContent",
        );
        assert_eq!(
            count,
            serde_json::json!("1"),
            "the delivered column counts it"
        );

        let png = page.screenshot();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let path = screenshot_path();
        std::fs::write(&path, png).expect("save the screenshot");
        println!("screenshot: {}", path.display());

        // The order really is delivered on the server, placed through the form.
        let mut c = server.client();
        let order = c.get(&format!("/orders/{id}")).json();
        assert_eq!(order["status"], "delivered");
        assert_eq!(order["address"], "1 Selftest Street");
    });
}

/// `target/delivery-browser.png`.
fn screenshot_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> → target/
    exe.ancestors()
        .nth(3)
        .expect("inside target/")
        .join("delivery-browser.png")
}

/// Reads Chromium's stderr until it says where DevTools listens.
fn devtools_port(child: &mut Child) -> u16 {
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("DevTools listening on ws://127.0.0.1:").nth(1) {
                let port = rest.split('/').next().and_then(|p| p.parse::<u16>().ok());
                let _ = tx.send(port);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("chromium announced its DevTools port")
        .expect("a numeric port")
}

/// A minimal DevTools-protocol client: one WebSocket to one page.
struct DevTools {
    ws: TcpStream,
    next_id: u64,
}

impl DevTools {
    /// Connects to the page whose URL contains `url_part` (waiting for it to appear).
    fn connect(port: u16, url_part: &str) -> DevTools {
        let start = Instant::now();
        let ws_url = loop {
            let list = http_get(port, "/json/list");
            let pages: serde_json::Value = serde_json::from_str(&list).unwrap_or_default();
            let found = pages.as_array().and_then(|pages| {
                pages
                    .iter()
                    .find(|p| p["url"].as_str().is_some_and(|u| u.contains(url_part)))
                    .and_then(|p| p["webSocketDebuggerUrl"].as_str().map(str::to_owned))
            });
            if let Some(url) = found {
                break url;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "no page: {list}");
            std::thread::sleep(Duration::from_millis(50));
        };
        let path = ws_url
            .splitn(4, '/')
            .nth(3)
            .map(|p| format!("/{p}"))
            .expect("a ws:// URL with a path");
        let mut ws = TcpStream::connect(("127.0.0.1", port)).expect("connect to DevTools");
        ws.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            ws,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        // The handshake answer ends with an empty line; read it byte by byte so no frame
        // bytes are swallowed.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            ws.read_exact(&mut byte).expect("handshake answer");
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        DevTools { ws, next_id: 1 }
    }

    /// Sends a command and returns its `result`.
    fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = serde_json::json!({ "id": id, "method": method, "params": params }).to_string();
        self.send_text(msg.as_bytes());
        loop {
            let reply: serde_json::Value =
                serde_json::from_slice(&self.read_message()).expect("a JSON message");
            if reply["id"].as_u64() == Some(id) {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    fn evaluate(&mut self, expression: &str) -> serde_json::Value {
        let result = self.call(
            "Runtime.evaluate",
            serde_json::json!({ "expression": expression, "returnByValue": true }),
        );
        result["result"]["value"].clone()
    }

    fn screenshot(&mut self) -> Vec<u8> {
        let result = self.call(
            "Page.captureScreenshot",
            serde_json::json!({ "format": "png" }),
        );
        base64_decode(result["data"].as_str().expect("base64 data"))
    }

    /// One masked text frame (clients must mask).
    fn send_text(&mut self, payload: &[u8]) {
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        let mut frame = vec![0x81u8];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.ws.write_all(&frame).expect("send to DevTools");
    }

    /// One whole message (joining continuation frames).
    fn read_message(&mut self) -> Vec<u8> {
        let mut message = Vec::new();
        loop {
            let mut head = [0u8; 2];
            self.ws
                .read_exact(&mut head)
                .expect("a frame from DevTools");
            let len = match head[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    self.ws.read_exact(&mut b).unwrap();
                    u64::from(u16::from_be_bytes(b))
                }
                127 => {
                    let mut b = [0u8; 8];
                    self.ws.read_exact(&mut b).unwrap();
                    u64::from_be_bytes(b)
                }
                n => u64::from(n),
            };
            let mut payload = vec![0u8; len as usize];
            self.ws.read_exact(&mut payload).unwrap();
            message.extend_from_slice(&payload);
            if head[0] & 0x80 != 0 {
                return message;
            }
        }
    }
}

/// A plain GET to DevTools' HTTP side; the body.
fn http_get(port: u16, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = text
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c) << (18 - 6 * i);
        }
        let n = chunk.len() * 6 / 8;
        out.extend_from_slice(&acc.to_be_bytes()[1..1 + n]);
    }
    out
}
