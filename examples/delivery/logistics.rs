//! The third-party logistics company: its line protocol, the shop's client (timeouts,
//! bounded retries with backoff, a small pool of open connections) and the built-in service
//! the demo starts on its own port.
//!
//! Protocol: one request per line, one reply line per request, in order, `\n`-terminated.
//!
//! ```text
//! DEPOT <zone>                      → DEPOT <address>|<contact>
//! ASSIGN <id> <quantity> <item>     → ASSIGNED <id> <parcel>
//! COURIER <id> <name> <contact>     → OK <id>
//! SCHEDULE <id>                     → SCHEDULED <id> <slot>
//! anything else                     → ERR <message>
//! ```

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringloop::net::{TcpListener, TcpStream};
use ringloop::time::{sleep, timeout_at};
use ringloop::IoBufExt;

use crate::metrics::Metrics;
use crate::model::{Order, ZONE_NAMES};

/// Longest reply line accepted; longer is garbage.
const MAX_LINE: usize = 1024;
/// Idle connections kept per shard: enough for every call in flight under load, so calls do
/// not pay a TCP handshake each (a profile showed connects dominating at 32).
const POOL: usize = 1024;

/// How the shop talks to the logistics company.
#[derive(Debug, Clone)]
pub(crate) struct ClientConfig {
    pub(crate) addr: SocketAddr,
    /// For one attempt: connect, send, and every reply line.
    pub(crate) timeout: Duration,
    /// Attempts after the first.
    pub(crate) retries: u32,
    /// Wait before the first retry; doubles each time.
    pub(crate) backoff: Duration,
}

struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// The client one shard uses (its pool is this shard's).
pub(crate) struct Client {
    config: ClientConfig,
    pool: RefCell<Vec<Connection>>,
    metrics: Arc<Metrics>,
}

/// What the company said when the order was handed over.
#[derive(Debug)]
pub(crate) struct Handoff {
    pub(crate) depot: String,
    pub(crate) depot_contact: String,
    pub(crate) parcel: String,
}

impl Client {
    pub(crate) fn new(config: ClientConfig, metrics: Arc<Metrics>) -> Client {
        Client {
            config,
            pool: RefCell::new(Vec::new()),
            metrics,
        }
    }

    /// Hands `order` over: asks for the zone's depot, assigns the goods, passes the courier's
    /// contact on.
    pub(crate) async fn hand_over(
        &self,
        order: &Order,
        zone: usize,
        courier: &str,
        contact: &str,
    ) -> Result<Handoff, String> {
        let item: String = order.item.chars().filter(|c| !c.is_whitespace()).collect();
        let request = format!(
            "DEPOT {zone}\nASSIGN {id} {qty} {item}\nCOURIER {id} {courier} {contact}\n",
            zone = ZONE_NAMES[zone % ZONE_NAMES.len()],
            id = order.id,
            qty = order.quantity,
        );
        let replies = self
            .with_retries("hand-over", &request, &["DEPOT ", "ASSIGNED ", "OK "])
            .await?;
        let (depot, depot_contact) = replies[0]["DEPOT ".len()..]
            .split_once('|')
            .ok_or_else(|| format!("logistics: no contact in {:?}", replies[0]))?;
        Ok(Handoff {
            depot: depot.to_owned(),
            depot_contact: depot_contact.to_owned(),
            parcel: replies[1]
                .split_whitespace()
                .nth(2)
                .unwrap_or("?")
                .to_owned(),
        })
    }

    /// Asks the company to schedule the courier; returns the slot it gave.
    pub(crate) async fn schedule(&self, id: u64) -> Result<String, String> {
        let replies = self
            .with_retries("schedule", &format!("SCHEDULE {id}\n"), &["SCHEDULED "])
            .await?;
        Ok(replies[0]
            .split_whitespace()
            .nth(2)
            .unwrap_or("?")
            .to_owned())
    }

    async fn with_retries(
        &self,
        what: &str,
        request: &str,
        expect: &[&str],
    ) -> Result<Vec<String>, String> {
        let mut backoff = self.config.backoff;
        let mut attempt = 0;
        loop {
            match self.attempt(request, expect).await {
                Ok(replies) => return Ok(replies),
                Err(e) if attempt >= self.config.retries => {
                    return Err(format!(
                        "logistics {what} failed after {} attempts: {e}",
                        attempt + 1
                    ))
                }
                Err(_) => {
                    attempt += 1;
                    self.metrics.logistics_retries.fetch_add(1, Relaxed);
                    sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
            }
        }
    }

    /// One try. An idle pooled connection is used first; if the service had closed it
    /// meanwhile (it answers nothing, not even garbage), the same try goes on with a fresh
    /// connection: a stale socket is not a failure of the service.
    async fn attempt(&self, request: &str, expect: &[&str]) -> Result<Vec<String>, String> {
        let deadline = Instant::now() + self.config.timeout;
        let pooled = self.pool.borrow_mut().pop();
        if let Some(conn) = pooled {
            match self.exchange(conn, request, expect, deadline).await {
                Err(Failure::Stale) => {}
                done => return done.map_err(Failure::into_message),
            }
        }
        let stream = TcpStream::connect_timeout(self.config.addr, self.config.timeout)
            .await
            .map_err(|e| format!("connect to {}: {e}", self.config.addr))?;
        let _ = stream.set_nodelay(true);
        let conn = Connection {
            stream,
            buf: Vec::with_capacity(512),
        };
        self.exchange(conn, request, expect, deadline)
            .await
            .map_err(Failure::into_message)
    }

    /// Sends `request` and reads one reply line per `expect` prefix. A connection that failed
    /// in any way is dropped, never reused: its stream may hold half a reply.
    async fn exchange(
        &self,
        mut conn: Connection,
        request: &str,
        expect: &[&str],
        deadline: Instant,
    ) -> Result<Vec<String>, Failure> {
        let written = timeout_at(deadline, conn.stream.write_all(request.as_bytes().to_vec()))
            .await
            .map_err(|_| Failure::Other("timed out sending".to_owned()))?;
        written.0.map_err(|_| Failure::Stale)?;
        let mut replies = Vec::with_capacity(expect.len());
        for prefix in expect {
            let line = match read_line(&mut conn, deadline).await {
                Err(Failure::Stale) if !replies.is_empty() => {
                    return Err(Failure::Other("connection closed inside the reply".into()))
                }
                line => line?,
            };
            if !line.starts_with(prefix) {
                return Err(Failure::Other(format!(
                    "unexpected reply {:?}",
                    truncate(&line, 60)
                )));
            }
            replies.push(line);
        }
        let mut pool = self.pool.borrow_mut();
        if pool.len() < POOL {
            pool.push(conn);
        }
        Ok(replies)
    }
}

/// Why an exchange failed.
enum Failure {
    /// The connection was closed or reset before any reply: on a pooled connection, the
    /// service had closed it while idle.
    Stale,
    Other(String),
}

impl Failure {
    fn into_message(self) -> String {
        match self {
            Failure::Stale => "connection closed before the reply".to_owned(),
            Failure::Other(message) => message,
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

async fn read_line(conn: &mut Connection, deadline: Instant) -> Result<String, Failure> {
    loop {
        if let Some(end) = conn.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = conn.buf.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]);
            return Ok(line.trim_end_matches('\r').to_owned());
        }
        if conn.buf.len() > MAX_LINE {
            return Err(Failure::Other(format!(
                "unexpected reply {:?} (no line end)",
                truncate(&String::from_utf8_lossy(&conn.buf), 60)
            )));
        }
        conn.buf.reserve(1024);
        let len = conn.buf.len();
        let buf = std::mem::take(&mut conn.buf);
        let (res, slice) = timeout_at(deadline, conn.stream.read(buf.slice(len..)))
            .await
            .map_err(|_| Failure::Other("timed out waiting for a reply".to_owned()))?;
        conn.buf = slice.into_inner();
        match res {
            // Closed (or reset) with nothing of a reply read.
            Ok(0) | Err(_) if conn.buf.is_empty() => return Err(Failure::Stale),
            Ok(0) => return Err(Failure::Other("connection closed inside a reply".into())),
            Ok(_) => {}
            Err(e) => return Err(Failure::Other(format!("receive: {e}"))),
        }
    }
}

/// The built-in logistics company: serves the protocol on `listener` until the process ends,
/// on its own thread and runtime (it is a separate service).
pub(crate) fn start_service(listener: std::net::TcpListener) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("logistics".into())
        .spawn(move || {
            let served: std::io::Result<()> = ringloop::block_on(async move {
                let listener = TcpListener::from_std(listener)?;
                let parcels = std::rc::Rc::new(Cell::new(0u64));
                let mut incoming = listener.incoming();
                loop {
                    match incoming.next().await {
                        Ok(stream) => drop(ringloop::spawn(serve(stream, parcels.clone()))),
                        Err(e) => eprintln!("logistics: accept failed: {e}"),
                    }
                }
            });
            if let Err(e) = served {
                eprintln!("logistics: {e}");
            }
        })
        .map(drop)
}

async fn serve(stream: TcpStream, parcels: std::rc::Rc<Cell<u64>>) {
    let _ = stream.set_nodelay(true);
    let mut conn = Connection {
        stream,
        buf: Vec::with_capacity(1024),
    };
    loop {
        // A client that stays silent this long has gone away.
        let deadline = Instant::now() + Duration::from_secs(300);
        let Ok(line) = read_line(&mut conn, deadline).await else {
            return;
        };
        let mut reply = answer(&line, &parcels);
        // Answer every request line already here in one write.
        while let Some(end) = conn.buf.iter().position(|b| *b == b'\n') {
            let next: Vec<u8> = conn.buf.drain(..=end).collect();
            reply.push_str(&answer(
                String::from_utf8_lossy(&next[..end]).trim_end(),
                &parcels,
            ));
        }
        if conn.stream.write_all(reply.into_bytes()).await.0.is_err() {
            return;
        }
    }
}

fn answer(line: &str, parcels: &Cell<u64>) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["DEPOT", zone] => match ZONE_NAMES.iter().position(|z| z == zone) {
            Some(i) => format!(
                "DEPOT Depot {}, {} Harbour Road|+1-555-01{:02}\n",
                zone,
                10 + i * 7,
                i
            ),
            None => format!("ERR unknown zone {zone}\n"),
        },
        ["ASSIGN", id, qty, _item] if id.parse::<u64>().is_ok() && qty.parse::<u32>().is_ok() => {
            parcels.set(parcels.get() + 1);
            format!("ASSIGNED {id} P{:07}\n", parcels.get())
        }
        ["COURIER", id, _name, _contact] if id.parse::<u64>().is_ok() => format!("OK {id}\n"),
        ["SCHEDULE", id] if id.parse::<u64>().is_ok() => {
            format!(
                "SCHEDULED {id} slot-{}\n",
                id.parse::<u64>().unwrap_or(0) % 48
            )
        }
        _ => format!("ERR cannot parse {:?}\n", truncate(line, 60)),
    }
}
