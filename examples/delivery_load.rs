//! Load client for the delivery demo: places orders over N keep-alive connections, at a
//! target rate or as fast as the server takes them, follows every order to completion on the
//! server's `/events` stream, and prints accepted orders/s and placed→delivered latency
//! percentiles.
//!
//! ```text
//! cargo run --release --example delivery -- --instant --shards 1 --db /tmp/bench.db &
//! cargo run --release --example delivery_load -- --conns 64 --seconds 10           # max rate
//! cargo run --release --example delivery_load -- --conns 64 --seconds 10 --rate 10000
//! ```
//!
//! Latency runs from just before the client sends `POST /orders` to the moment the order's
//! `delivered` event arrives, so it includes both HTTP hops. `--rate 0` (default) is a closed
//! loop (each connection sends its next order when the previous one is answered); with a rate,
//! orders are sent on a fixed schedule spread over the connections.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use ringloop::net::TcpStream;
use ringloop::time::{sleep, sleep_until};
use ringloop::IoBufExt;

/// Load client for the delivery demo.
#[derive(Parser, Debug)]
#[command(about = "Places orders on the delivery demo and follows them to delivery")]
struct Args {
    /// The demo's HTTP address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Connections placing orders.
    #[arg(long, default_value_t = 32)]
    conns: usize,
    /// Orders per second over all connections; 0: as fast as they are accepted.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// How long to place orders, seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Longest wait for the last orders to finish after placing stops, seconds.
    #[arg(long, default_value_t = 30)]
    drain: u64,
    /// Item to order (must be in the catalogue with enough stock).
    #[arg(long, default_value = "book")]
    item: String,
}

/// What the run has seen so far.
#[derive(Default)]
struct Tally {
    accepted: Cell<u64>,
    rejected: Cell<u64>,
    errors: Cell<u64>,
    delivered: Cell<u64>,
    failed: Cell<u64>,
    lagged: Cell<u64>,
    /// Sent, not finished yet: when each was sent.
    in_flight: RefCell<HashMap<u64, Instant>>,
    /// Finished before its `201` reached us (it happens in `--instant` mode): when.
    early: RefCell<HashMap<u64, (Instant, bool)>>,
    latency_us: RefCell<Option<Histogram<u64>>>,
}

impl Tally {
    fn finished(&self, id: u64, at: Instant, delivered: bool) {
        match self.in_flight.borrow_mut().remove(&id) {
            Some(sent) => self.record(sent, at, delivered),
            None => drop(self.early.borrow_mut().insert(id, (at, delivered))),
        }
    }

    fn accepted(&self, id: u64, sent: Instant) {
        self.accepted.set(self.accepted.get() + 1);
        match self.early.borrow_mut().remove(&id) {
            Some((at, delivered)) => self.record(sent, at, delivered),
            None => drop(self.in_flight.borrow_mut().insert(id, sent)),
        }
    }

    fn record(&self, sent: Instant, at: Instant, delivered: bool) {
        if delivered {
            self.delivered.set(self.delivered.get() + 1);
            if let Some(h) = self.latency_us.borrow_mut().as_mut() {
                h.saturating_record(at.duration_since(sent).as_micros() as u64);
            }
        } else {
            self.failed.set(self.failed.get() + 1);
        }
    }
}

fn main() {
    let args = Args::parse();
    if let Err(e) = ringloop::block_on(run(args)) {
        eprintln!("delivery_load: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> std::io::Result<()> {
    let tally = Rc::new(Tally {
        latency_us: RefCell::new(Some(
            Histogram::new_with_bounds(1, 600_000_000, 3).map_err(std::io::Error::other)?,
        )),
        ..Tally::default()
    });
    let events = TcpStream::connect(args.addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot connect to {}: {e}", args.addr))
    })?;
    let request = format!("GET /events HTTP/1.1\r\nHost: {}\r\n\r\n", args.addr);
    events.write_all(request.into_bytes()).await.0?;
    let following = ringloop::spawn(follow(events, tally.clone()));

    let start = Instant::now();
    let end = start + Duration::from_secs(args.seconds.max(1));
    let next_slot = Rc::new(Cell::new(0u64));
    let body = serde_json::json!({ "item": args.item, "quantity": 1, "address": "1 Load Lane" })
        .to_string();
    let mut placers = Vec::new();
    for _ in 0..args.conns.max(1) {
        let stream = TcpStream::connect(args.addr).await?;
        stream.set_nodelay(true)?;
        let (tally, next_slot, body) = (tally.clone(), next_slot.clone(), body.clone());
        let (rate, addr) = (args.rate, args.addr);
        placers.push(ringloop::spawn(async move {
            let request = format!(
                "POST /orders HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes();
            let mut conn = Conn::new(stream);
            loop {
                if rate > 0 {
                    let slot = next_slot.get();
                    next_slot.set(slot + 1);
                    let due = start + Duration::from_secs_f64(slot as f64 / rate as f64);
                    if due >= end {
                        return;
                    }
                    sleep_until(due).await;
                } else if Instant::now() >= end {
                    return;
                }
                let sent = Instant::now();
                let Some((status, body)) = conn.exchange(request.clone()).await else {
                    tally.errors.set(tally.errors.get() + 1);
                    return;
                };
                let id = (status == 201)
                    .then(|| serde_json::from_slice::<serde_json::Value>(&body).ok())
                    .flatten()
                    .and_then(|v| v["id"].as_u64());
                match id {
                    Some(id) => tally.accepted(id, sent),
                    None => tally.rejected.set(tally.rejected.get() + 1),
                }
            }
        }));
    }

    let progress = ringloop::spawn({
        let tally = tally.clone();
        async move {
            loop {
                sleep(Duration::from_secs(1)).await;
                eprintln!(
                    "{:>5.1} s: accepted {}, delivered {}, failed {}, in flight {}",
                    start.elapsed().as_secs_f64(),
                    tally.accepted.get(),
                    tally.delivered.get(),
                    tally.failed.get(),
                    tally.in_flight.borrow().len()
                );
            }
        }
    });
    for placer in placers {
        let _ = placer.await;
    }
    let placing = start.elapsed();
    let drain_until = Instant::now() + Duration::from_secs(args.drain);
    while !tally.in_flight.borrow().is_empty() && Instant::now() < drain_until {
        sleep(Duration::from_millis(20)).await;
    }
    progress.abort();
    following.abort();

    let accepted = tally.accepted.get();
    println!(
        "placed for {:.1} s over {} connections{}: {} accepted ({:.0} accepted orders/s), {} rejected, {} connection errors",
        placing.as_secs_f64(),
        args.conns,
        if args.rate > 0 { format!(" at {} orders/s target", args.rate) } else { String::new() },
        accepted,
        accepted as f64 / placing.as_secs_f64(),
        tally.rejected.get(),
        tally.errors.get()
    );
    println!(
        "followed on /events: {} delivered, {} failed, {} unfinished at the end, {} events missed (lagging)",
        tally.delivered.get(),
        tally.failed.get(),
        tally.in_flight.borrow().len(),
        tally.lagged.get()
    );
    if let Some(h) = tally.latency_us.borrow().as_ref().filter(|h| !h.is_empty()) {
        println!(
            "placed→delivered latency: p50 {} µs, p90 {} µs, p99 {} µs, p99.9 {} µs, max {} µs",
            h.value_at_quantile(0.50),
            h.value_at_quantile(0.90),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max()
        );
    }
    Ok(())
}

/// Reads the `/events` stream and notes every order that finishes.
async fn follow(stream: TcpStream, tally: Rc<Tally>) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut lagged_next = false;
    loop {
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(64 * 1024);
        }
        let len = buf.len();
        let (res, slice) = stream.read(buf.slice(len..)).await;
        buf = slice.into_inner();
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let now = Instant::now();
        let mut consumed = 0;
        while let Some(end) = buf[consumed..].iter().position(|b| *b == b'\n') {
            let line = &buf[consumed..consumed + end];
            consumed += end + 1;
            if line == b"event: lagged" {
                lagged_next = true;
            } else if let Some(data) = line.strip_prefix(b"data: ") {
                let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
                    continue;
                };
                if std::mem::take(&mut lagged_next) {
                    let missed = v["missed"].as_u64().unwrap_or(0);
                    tally.lagged.set(tally.lagged.get() + missed);
                    continue;
                }
                match (v["id"].as_u64(), v["status"].as_str()) {
                    (Some(id), Some("delivered")) => tally.finished(id, now, true),
                    (Some(id), Some("failed")) => tally.finished(id, now, false),
                    _ => {}
                }
            }
        }
        buf.drain(..consumed);
    }
}

/// One keep-alive connection: sends a request, reads one response.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Status and body, or `None` if the connection failed.
    async fn exchange(&mut self, request: Vec<u8>) -> Option<(u16, Vec<u8>)> {
        self.stream.write_all(request).await.0.ok()?;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut resp = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(head)) = resp.parse(&self.buf) {
                let status = resp.code?;
                let len: usize = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                    .unwrap_or(0);
                while self.buf.len() < head + len {
                    self.fill().await?;
                }
                let body = self.buf[head..head + len].to_vec();
                self.buf.drain(..head + len);
                return Some((status, body));
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> Option<()> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(4096);
        }
        let len = self.buf.len();
        let (res, slice) = self
            .stream
            .read(std::mem::take(&mut self.buf).slice(len..))
            .await;
        self.buf = slice.into_inner();
        (res.ok()? > 0).then_some(())
    }
}
