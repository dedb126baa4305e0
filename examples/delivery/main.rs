//! delivery: an online shop's order pipeline on ringloop, thread-per-core.
//!
//! Orders come in over HTTP (a web page, or the JSON API) and flow through stages that are
//! tasks linked by queues: the shop checks and reserves stock, dispatch offers the order to
//! the zone's couriers (skipping one who does not answer in time), the courier fills in the
//! slip, the shop hands the order to a logistics company over a line protocol on TCP (with
//! timeouts and bounded retries), and the order is delivered. Every transition is stored in
//! SQLite (WAL, one fsync per batch of writes: group commit) before it is published on the
//! event bus; a `201` means the order is on disk; after a crash each order resumes from its
//! last stored stage.
//!
//! ```text
//! cargo run --release --example delivery                 # then open http://127.0.0.1:8080/
//! curl -s localhost:8080/items
//! curl -s -XPOST localhost:8080/orders -d '{"item":"book","quantity":2,"address":"1 Main St"}'
//! curl -s localhost:8080/orders/1
//! curl -sN localhost:8080/events                         # live transitions
//! cargo run --release --example delivery -- --instant --db /tmp/bench.db   # for load runs:
//! cargo run --release --example delivery_load -- --conns 64 --seconds 10   # orders/s, latency
//! ```
//!
//! Files: `http.rs` (connections, limits), `http_parse.rs` (request framing), `api.rs`
//! (routes), `api_parse.rs` (bodies and queries), `pipeline.rs` (stages),
//! `logistics.rs` (client and built-in service), `store.rs` (SQLite, group commit,
//! recovery), `metrics.rs`, `web/index.html`. Transitions travel on `ringloop::event::SharedBus`.

mod api;
mod api_parse;
mod http;
mod http_parse;
mod logistics;
mod metrics;
mod model;
mod pipeline;
mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clap::Parser;
use nix::sys::signal::{SigSet, Signal};
use ringloop::event::SharedBus;
use ringloop::net::TcpListener;
use ringloop::shard::{self, Receiver, Sender, Shutdown};
use ringloop::signal::{wait_any, SignalKind};

use crate::api::Api;
use crate::http::Limits;
use crate::logistics::ClientConfig;
use crate::metrics::Metrics;
use crate::model::{Order, Status};
use crate::pipeline::{Catalogue, Pipeline, Shared, ShopMsg, Timing};
use crate::store::Store;

/// The delivery demo: an order pipeline with an HTTP API, a web page and durable storage.
#[derive(Parser, Debug)]
#[command(about = "Order delivery pipeline on ringloop (Ctrl-C stops it cleanly)")]
struct Args {
    /// Address of the HTTP server.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// SQLite database file (created if missing).
    #[arg(long, default_value = "delivery.db")]
    db: PathBuf,
    /// Shards (threads with their own ring) [default: one per core].
    #[arg(long)]
    shards: Option<usize>,
    /// Do not pin shard threads to cores (better when other busy threads, such as a load
    /// client, share the machine's few cores).
    #[arg(long)]
    no_pin: bool,
    /// Make every simulated delay zero and couriers always answer (for benchmarks).
    #[arg(long)]
    instant: bool,
    /// Time a courier takes to answer an offer, and again to fill in the slip, ms.
    #[arg(long, default_value_t = 300)]
    courier_delay_ms: u64,
    /// An offer not answered within this goes to the next courier, ms.
    #[arg(long, default_value_t = 1000)]
    courier_timeout_ms: u64,
    /// Percent of offers a courier never answers [default: 10; 0 with --instant].
    #[arg(long)]
    courier_ignore_percent: Option<u32>,
    /// Couriers per zone (four zones) on each shard.
    #[arg(long, default_value_t = 3)]
    couriers_per_zone: usize,
    /// Travel time from hand-over to delivery, ms.
    #[arg(long, default_value_t = 1500)]
    travel_ms: u64,
    /// Use this logistics service instead of starting the built-in one.
    #[arg(long)]
    logistics_addr: Option<SocketAddr>,
    /// Port of the built-in logistics service (0: any free port).
    #[arg(long, default_value_t = 0)]
    logistics_port: u16,
    /// Time allowed for one logistics call, ms.
    #[arg(long, default_value_t = 1000)]
    logistics_timeout_ms: u64,
    /// Logistics retries after the first attempt (backoff doubles from 50 ms).
    #[arg(long, default_value_t = 3)]
    logistics_retries: u32,
    /// Largest request body, bytes (413 beyond).
    #[arg(long, default_value_t = 64 * 1024)]
    body_limit: usize,
    /// Time allowed for a request head to arrive, ms (the connection closes after it).
    #[arg(long, default_value_t = 5000)]
    header_timeout_ms: u64,
    /// Most open HTTP connections (503 beyond).
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
}

/// What each shard takes once when it starts.
struct Startup {
    listeners: Vec<Option<std::net::TcpListener>>,
    shop_rxs: Vec<Option<Receiver<ShopMsg>>>,
    ack_rxs: Vec<Option<Receiver<store::AckBatch>>>,
    pending: Vec<Vec<(Order, Status, Option<String>)>>,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("delivery: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    // Every thread inherits this mask, so a Ctrl-C that arrives before shard 0 listens waits
    // for it instead of killing the process mid-startup (listening unblocks it on shard 0).
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals
        .thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;

    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shards = args.shards.unwrap_or(cpus).max(1);
    // More shards than CPUs cannot each have a core: they run unpinned then.
    let pin = !args.no_pin && shards <= cpus;
    let metrics = Arc::new(Metrics::new(shards));
    let store::Opened {
        store,
        recovery,
        writer,
        acks,
    } = Store::open(&args.db, metrics.clone(), shards)?;
    for status in Status::ALL {
        metrics.in_state[status.index()].store(
            recovery.counts[status.index()],
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    let logistics_addr = match args.logistics_addr {
        Some(addr) => addr,
        None => {
            // A deep backlog: after a restart every resumed order connects at once, and a
            // dropped SYN costs a one-second retransmit.
            let at = SocketAddr::from(([127, 0, 0, 1], args.logistics_port));
            let listener =
                bind_listener(at, false).map_err(|e| format!("logistics service: {e}"))?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            logistics::start_service(listener).map_err(|e| format!("logistics service: {e}"))?;
            addr
        }
    };
    let listeners = listen(args.addr, shards)?;
    let addr = listeners[0].local_addr().map_err(|e| e.to_string())?;

    let instant = args.instant;
    let ms = |v: u64| {
        if instant {
            Duration::ZERO
        } else {
            Duration::from_millis(v)
        }
    };
    let timing = Timing {
        courier_delay: ms(args.courier_delay_ms),
        courier_timeout: Duration::from_millis(args.courier_timeout_ms),
        travel: ms(args.travel_ms),
        courier_ignore_percent: args
            .courier_ignore_percent
            .unwrap_or(if instant { 0 } else { 10 })
            .min(100),
        couriers_per_zone: args.couriers_per_zone.max(1),
    };
    let logistics = ClientConfig {
        addr: logistics_addr,
        timeout: Duration::from_millis(args.logistics_timeout_ms),
        retries: args.logistics_retries,
        backoff: Duration::from_millis(50),
    };
    let shared = Arc::new(Shared {
        store,
        bus: SharedBus::new(shards, 4096),
        metrics,
        catalogue: Arc::new(Catalogue::new(&recovery.items)),
        timing,
    });
    let (shop_txs, shop_rxs): (Vec<Sender<ShopMsg>>, Vec<_>) =
        (0..shards).map(|_| shard::channel(4096)).unzip();
    let shutdown = Shutdown::new();
    let mut pending = vec![Vec::new(); shards];
    let resumed = recovery.pending.len();
    for entry in recovery.pending {
        pending[(entry.0.id % shards as u64) as usize].push(entry);
    }
    let startup = Arc::new(Mutex::new(Startup {
        listeners: listeners.into_iter().map(Some).collect(),
        shop_rxs: shop_rxs.into_iter().map(Some).collect(),
        ack_rxs: acks.into_iter().map(Some).collect(),
        pending,
    }));
    let shops: Arc<[Sender<ShopMsg>]> = shop_txs.into();
    let next_id = Arc::new(AtomicU64::new(recovery.next_id));
    let limits = Limits {
        body: args.body_limit,
        header_timeout: Duration::from_millis(args.header_timeout_ms),
    };
    let connections = Arc::new(AtomicUsize::new(0));
    let max_connections = args.max_connections;

    println!("listening on http://{addr}/");
    println!(
        "delivery: {shards} shard(s){}, database {}, logistics at {logistics_addr}, {resumed} order(s) resumed{}",
        if pin { " (pinned)" } else { "" },
        args.db.display(),
        if instant { ", instant mode" } else { "" }
    );

    let results = shard::Builder::new()
        .shards(shards)
        .pin_cores(pin)
        .build()
        .map_err(|e| format!("cannot start shards: {e}"))?
        .run({
            let shared = shared.clone();
            move |info| {
                let (shared, shops, next_id, connections) = (
                    shared.clone(),
                    shops.clone(),
                    next_id.clone(),
                    connections.clone(),
                );
                let (shutdown, startup, logistics) =
                    (shutdown.clone(), startup.clone(), logistics.clone());
                async move {
                    let id = info.id();
                    let (listener, shop_rx, ack_rx, pending) = {
                        let mut take = startup.lock().unwrap_or_else(PoisonError::into_inner);
                        (
                            take.listeners[id].take().expect("one listener per shard"),
                            take.shop_rxs[id].take().expect("one shop per shard"),
                            take.ack_rxs[id].take().expect("one ack relay per shard"),
                            std::mem::take(&mut take.pending[id]),
                        )
                    };

                    drop(ringloop::spawn(store::relay_acks(ack_rx)));
                    drop(ringloop::spawn(metrics::probe_timer_lag(
                        shared.metrics.clone(),
                        id,
                    )));
                    let client = logistics::Client::new(logistics, shared.metrics.clone());
                    let pipeline =
                        Pipeline::start(id, shared.clone(), client, shops[id].clone(), shop_rx);
                    for (order, status, detail) in pending {
                        pipeline.resume(order, status, detail);
                    }
                    let api = Rc::new(Api {
                        shared,
                        shops,
                        next_id,
                        limits,
                        connections,
                        max_connections,
                    });
                    let listener = TcpListener::from_std(listener)?;
                    let accepting = ringloop::spawn(async move {
                        let mut incoming = listener.incoming();
                        loop {
                            match incoming.next().await {
                                Ok(stream) => drop(ringloop::spawn(api::serve_connection(
                                    api.clone(),
                                    stream,
                                ))),
                                // Out of fds and the like: the listener backs off by itself.
                                Err(e) => eprintln!("delivery: accept failed: {e}"),
                            }
                        }
                    });
                    if id == 0 {
                        let shutdown = shutdown.clone();
                        drop(ringloop::spawn(async move {
                            let stop = [SignalKind::interrupt(), SignalKind::terminate()];
                            if let Err(e) = wait_any(&stop).await {
                                eprintln!("delivery: waiting for signals failed: {e}");
                            }
                            shutdown.trigger();
                        }));
                    }
                    shutdown.wait().await;
                    accepting.abort();
                    drop(pipeline);
                    Ok::<(), std::io::Error>(())
                }
            }
        });
    for (id, result) in results.into_iter().enumerate() {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("shard {id}: {e}")),
            Err(_) => return Err(format!("shard {id} panicked")),
        }
    }
    // Every shard is gone, so is every task that could still write: the writer thread now
    // commits what is queued and ends.
    drop(shared);
    writer
        .join()
        .map_err(|_| "the storage thread panicked".to_owned())?;
    println!("stopped cleanly; every acknowledged order is stored");
    Ok(())
}

/// One listening socket per shard on the same address (`SO_REUSEPORT`, so the kernel spreads
/// connections over shards). The first is bound first: with port 0 the others take its port.
fn listen(addr: SocketAddr, shards: usize) -> Result<Vec<std::net::TcpListener>, String> {
    let mut listeners: Vec<std::net::TcpListener> = Vec::with_capacity(shards);
    for _ in 0..shards {
        let at = listeners
            .first()
            .map_or(Ok(addr), |first| first.local_addr())
            .map_err(|e| e.to_string())?;
        listeners.push(bind_listener(at, true).map_err(|e| format!("cannot listen on {at}: {e}"))?);
    }
    Ok(listeners)
}

/// A listening socket with a 4096-connection backlog (std's `bind` gives 128).
fn bind_listener(addr: SocketAddr, reuse_port: bool) -> nix::Result<std::net::TcpListener> {
    use nix::sys::socket::{
        bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
        SockaddrStorage,
    };
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    setsockopt(&fd, sockopt::ReusePort, &reuse_port)?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(addr),
    )?;
    listen(&fd, Backlog::new(4096).unwrap_or(Backlog::MAXCONN))?;
    Ok(std::net::TcpListener::from(fd))
}
