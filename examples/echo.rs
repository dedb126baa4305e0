//! A TCP echo server on ringloop: one task per connection, receiving through a shared pool of
//! kernel-selected buffers (multishot receive), so an idle connection holds no buffer, and
//! sending each received buffer back through a `SendQueue`, whose writes complete in the
//! reactor without waking the task (one wake per message instead of two).
//!
//! ```text
//! cargo run --release --example echo -- --addr 127.0.0.1:7878
//! cargo run --release --example echo -- --addr 127.0.0.1:7878 --shards 2   # one shard per core
//! cargo run --release --example echo_client -- --addr 127.0.0.1:7878 --conns 16 --size 1024
//! nc 127.0.0.1 7878                        # type a line, get it back
//! ```
//!
//! It prints `listening on ADDR` once it accepts connections. `--plain` uses one 64 KiB buffer
//! per connection, plain `recv` and an awaited `write_all` instead (the same logic as
//! `echo_tokio`).
//!
//! `--shards N` runs N shards (threads, each with its own runtime), pinned one per CPU when
//! there are enough CPUs (`--no-pin` leaves them unpinned). Each shard binds its own listener
//! on the same address with `SO_REUSEPORT`, so the kernel spreads connections over them, and
//! has its own buffer pool; nothing is shared between shards while they serve. The default,
//! one shard, is a single runtime on the main thread.
//!
//! On Ctrl-C or SIGTERM every shard stops accepting (its listener is closed), and open
//! connections get `--grace` seconds (default 5) to finish: the server exits as soon as the
//! last one closes, or at the deadline, cutting off those still open. It then prints
//! `served N connections, echoed B bytes, K cut off at the grace deadline` and exits 0.
//!
//! `--demo` runs server and a small client together for a few seconds (16 connections, 1 KiB
//! messages, every byte checked; the client runs on shard 0) and prints what they did:
//!
//! ```text
//! cargo run --release --example echo -- --demo
//! ```

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use clap::Parser;
use ringloop::net::{BufferPool, ListenOptions, TcpListener, TcpStream};
use ringloop::shard::Shutdown;
use ringloop::signal::{wait_any, SignalKind};
use ringloop::IoBufExt;

/// Bytes read at most per read in `--plain` mode, per connection.
const BUF_SIZE: usize = 64 * 1024;
/// Received chunks a connection may have queued for sending before it stops receiving.
const SEND_DEPTH: usize = 2;
/// How long a shard waits for the others to bind before giving up.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// TCP echo server on ringloop.
#[derive(Parser, Debug, Clone)]
#[command(about = "TCP echo server on ringloop (Ctrl-C drains connections, prints a summary)")]
struct Args {
    /// Address to listen on [default: 127.0.0.1:7878; with --demo, a free loopback port].
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Shards (threads with a runtime and a listener each, sharing the port with SO_REUSEPORT).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    shards: u16,
    /// With --shards: leave the shards unpinned (by default shard i is pinned to the i-th CPU
    /// when there are at least as many CPUs as shards).
    #[arg(long)]
    no_pin: bool,
    /// Seconds open connections get to finish after Ctrl-C / SIGTERM before they are cut off.
    #[arg(long, default_value_t = 5.0)]
    grace: f64,
    /// One 64 KiB buffer and plain `recv` per connection instead of the shared pool.
    #[arg(long)]
    plain: bool,
    /// Buffers in each shard's receive pool (a power of two): 1024 × 16 KiB serves 1,000 busy
    /// connections. Only a warm set of them (512 KiB) cycles through the kernel while traffic
    /// allows, so a large pool costs memory, not cache.
    #[arg(long, default_value_t = 1024)]
    pool_buffers: u16,
    /// Size of each pooled buffer, bytes.
    #[arg(long, default_value_t = 16 * 1024)]
    pool_buffer_size: usize,
    /// Run a built-in client against the server for this many seconds, print, and exit.
    #[arg(long, num_args = 0..=1, default_missing_value = "3")]
    demo: Option<u64>,
}

/// What one shard did, counted without sharing (a shared atomic bumped per message would bounce
/// between the cores); the shards' counts are added up at the end.
#[derive(Default)]
struct Counters {
    connections: Cell<u64>,
    bytes: Cell<u64>,
}

/// The whole server's counts, added to once by each shard as it finishes.
#[derive(Default)]
struct Totals {
    connections: AtomicU64,
    bytes: AtomicU64,
    cut_off: AtomicU64,
}

fn main() {
    let args = Args::parse();
    if !(0.0..=86_400.0).contains(&args.grace) {
        eprintln!("echo: --grace takes 0 to 86400 seconds");
        std::process::exit(2);
    }
    // Blocked here, before any other thread exists, so that every thread inherits the mask:
    // a Ctrl-C that arrives before shard 0 listens for it stays pending instead of killing
    // the process, and then goes to shard 0 (listening unblocks it in that thread only).
    let mut signals = nix::sys::signal::SigSet::empty();
    signals.add(nix::sys::signal::Signal::SIGINT);
    signals.add(nix::sys::signal::Signal::SIGTERM);
    if let Err(e) = signals.thread_block() {
        eprintln!("echo: cannot block SIGINT and SIGTERM: {e}");
        std::process::exit(1);
    }
    match run(Arc::new(args)) {
        Ok(totals) => println!(
            "served {} connections, echoed {} bytes, {} cut off at the grace deadline",
            totals.connections.load(Relaxed),
            totals.bytes.load(Relaxed),
            totals.cut_off.load(Relaxed)
        ),
        Err(e) => {
            eprintln!("echo: {e}");
            std::process::exit(1);
        }
    }
}

/// Runs every shard to the end and returns what they did together.
fn run(args: Arc<Args>) -> std::io::Result<Arc<Totals>> {
    let shards = usize::from(args.shards);
    let mut runtime = ringloop::Builder::new();
    runtime.entries(1024);
    let totals = Arc::new(Totals::default());
    let startup = Arc::new(Startup::new(shards));
    let shutdown = Shutdown::new();
    if shards == 1 {
        // One shard: a plain runtime on this thread, as a single-threaded server is written.
        let rt = runtime.build()?;
        rt.block_on(serve_shard(0, 1, args, startup, shutdown, totals.clone()))?;
        return Ok(totals);
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let results = ringloop::shard::Builder::new()
        .shards(shards)
        .pin_cores(!args.no_pin && shards <= cpus)
        .runtime(runtime)
        .build()?
        .run({
            let totals = totals.clone();
            move |shard| {
                serve_shard(
                    shard.id(),
                    shard.count(),
                    args.clone(),
                    startup.clone(),
                    shutdown.clone(),
                    totals.clone(),
                )
            }
        });
    let mut failed = Vec::new();
    for (id, result) in results.into_iter().enumerate() {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed.push(format!("shard {id}: {e}")),
            Err(_) => failed.push(format!("shard {id} panicked")),
        }
    }
    if failed.is_empty() {
        Ok(totals)
    } else {
        Err(std::io::Error::other(failed.join("; ")))
    }
}

/// One shard's server: bind (sharing the port), accept and echo until shutdown, then drain.
async fn serve_shard(
    id: usize,
    count: usize,
    args: Arc<Args>,
    startup: Arc<Startup>,
    shutdown: Shutdown,
    totals: Arc<Totals>,
) -> std::io::Result<()> {
    let listener = match bind(id, count, &args, &startup) {
        Ok(listener) => listener,
        Err(e) => {
            startup.fail(format!("shard {id}: {e}"));
            return Err(e);
        }
    };
    let listener_addr = listener.local_addr()?;
    startup.bound();
    startup.wait_all_bound()?;
    if id == 0 {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {listener_addr}")?;
        out.flush()?;
    }
    let pool = if args.plain {
        None
    } else {
        Some(BufferPool::new(args.pool_buffers, args.pool_buffer_size)?)
    };
    let counters = Rc::new(Counters::default());
    let open = OpenConnections::default();

    let accepting = ringloop::spawn({
        let counters = counters.clone();
        let open = open.clone();
        async move {
            let mut incoming = listener.incoming();
            loop {
                match incoming.next().await {
                    Ok(stream) => {
                        counters.connections.set(counters.connections.get() + 1);
                        let counters = counters.clone();
                        let guard = open.add();
                        match &pool {
                            Some(pool) => drop(ringloop::spawn(echo_pooled(
                                stream,
                                pool.clone(),
                                counters,
                                guard,
                            ))),
                            None => drop(ringloop::spawn(echo_plain(stream, counters, guard))),
                        }
                    }
                    // Out of fds and the like: the listener pauses by itself; say so, go on.
                    Err(e) => eprintln!("echo: accept failed: {e}"),
                }
            }
        }
    });

    if id == 0 {
        // Shard 0 decides when the server stops; every shard (this one too) awaits the switch.
        let shutdown = shutdown.clone();
        match args.demo {
            Some(seconds) => {
                let length = Duration::from_secs(seconds.max(1));
                ringloop::spawn(async move {
                    let result = demo(listener_addr, length).await;
                    shutdown.trigger();
                    result
                })
                .await
                .map_err(std::io::Error::from)??;
            }
            None => drop(ringloop::spawn(async move {
                match wait_any(&[SignalKind::interrupt(), SignalKind::terminate()]).await {
                    Ok(_) => {}
                    Err(e) => eprintln!("echo: cannot wait for Ctrl-C ({e}); stopping"),
                }
                shutdown.trigger();
            })),
        }
    }
    shutdown.wait().await;

    // Stop accepting: the task owns the listener, so ending it closes the listening socket.
    accepting.abort();
    let _ = accepting.await;
    let grace = Duration::from_secs_f64(args.grace);
    if id == 0 {
        println!(
            "stopping: no new connections; open ones get {:.1} s to finish",
            grace.as_secs_f64()
        );
    }
    let cut_off = match ringloop::time::timeout(grace, open.all_closed()).await {
        Ok(()) => 0,
        Err(_) => open.count() as u64,
    };
    // The connections cut off are dropped with the runtime: they must not wake a waiter that
    // is gone by then.
    open.inner.waiter.borrow_mut().take();
    totals
        .connections
        .fetch_add(counters.connections.get(), Relaxed);
    totals.bytes.fetch_add(counters.bytes.get(), Relaxed);
    totals.cut_off.fetch_add(cut_off, Relaxed);
    // Connections still open are dropped with the runtime, which closes their sockets.
    Ok(())
}

/// Binds shard `id`'s listener: shard 0 on the address asked for (learning the port if it was
/// 0), the others on the address shard 0 got; all with `SO_REUSEPORT` when there are several.
fn bind(id: usize, count: usize, args: &Args, startup: &Startup) -> std::io::Result<TcpListener> {
    let opts = ListenOptions::new().backlog(4096).reuse_port(count > 1);
    let addr = if id == 0 {
        let default_port = if args.demo.is_some() { 0 } else { 7878 };
        args.addr
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], default_port)))
    } else {
        startup.first_addr()?
    };
    let listener = TcpListener::bind_with(addr, &opts)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    if id == 0 {
        startup.set_first_addr(listener.local_addr()?);
    }
    Ok(listener)
}

/// The shards' start-up rendezvous: shard 0 publishes the address it bound, the others bind
/// to it, and nobody prints or serves before every shard has its listener (or one failed).
struct Startup {
    state: Mutex<StartupState>,
    changed: Condvar,
    shards: usize,
}

#[derive(Default)]
struct StartupState {
    first_addr: Option<SocketAddr>,
    bound: usize,
    failed: Option<String>,
}

impl Startup {
    fn new(shards: usize) -> Startup {
        Startup {
            state: Mutex::new(StartupState::default()),
            changed: Condvar::new(),
            shards,
        }
    }

    fn update(&self, f: impl FnOnce(&mut StartupState)) {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
        self.changed.notify_all();
    }

    fn set_first_addr(&self, addr: SocketAddr) {
        self.update(|s| s.first_addr = Some(addr));
    }

    fn bound(&self) {
        self.update(|s| s.bound += 1);
    }

    fn fail(&self, why: String) {
        self.update(|s| {
            s.failed.get_or_insert(why);
        });
    }

    /// Blocks (briefly, at start-up, before the shard serves anything) until `ready` says
    /// yes, another shard failed, or `STARTUP_TIMEOUT` passes.
    fn wait_for<T>(&self, ready: impl Fn(&StartupState) -> Option<T>) -> std::io::Result<T> {
        let guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, STARTUP_TIMEOUT, |s| {
                ready(s).is_none() && s.failed.is_none()
            })
            .unwrap_or_else(|e| e.into_inner());
        if let Some(value) = ready(&guard) {
            return Ok(value);
        }
        Err(std::io::Error::other(match &guard.failed {
            Some(why) => format!("another shard failed to start: {why}"),
            None => format!("the shards did not all bind within {STARTUP_TIMEOUT:?}"),
        }))
    }

    fn first_addr(&self) -> std::io::Result<SocketAddr> {
        self.wait_for(|s| s.first_addr)
    }

    fn wait_all_bound(&self) -> std::io::Result<()> {
        self.wait_for(|s| (s.bound == self.shards).then_some(()))
    }
}

/// The connections a shard has open, so shutdown can wait for the last one to close.
#[derive(Clone, Default)]
struct OpenConnections {
    inner: Rc<OpenInner>,
}

#[derive(Default)]
struct OpenInner {
    count: Cell<usize>,
    /// The shutdown path waiting for `count` to reach zero.
    waiter: RefCell<Option<Waker>>,
}

/// One open connection; dropping it (the connection's task ended) may wake the shutdown path.
struct OpenGuard {
    inner: Rc<OpenInner>,
}

impl OpenConnections {
    fn add(&self) -> OpenGuard {
        self.inner.count.set(self.inner.count.get() + 1);
        OpenGuard {
            inner: self.inner.clone(),
        }
    }

    fn count(&self) -> usize {
        self.inner.count.get()
    }

    /// Completes once no connection is open.
    async fn all_closed(&self) {
        std::future::poll_fn(|cx| {
            if self.inner.count.get() == 0 {
                return Poll::Ready(());
            }
            *self.inner.waiter.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        let left = self.inner.count.get() - 1;
        self.inner.count.set(left);
        if left == 0 {
            if let Some(waker) = self.inner.waiter.borrow_mut().take() {
                waker.wake();
            }
        }
    }
}

/// Echoes through the pool: each received chunk goes straight back out, no copy.
async fn echo_pooled(
    stream: TcpStream,
    pool: BufferPool,
    counters: Rc<Counters>,
    _open: OpenGuard,
) {
    let _ = stream.set_nodelay(true);
    let mut rx = stream.recv_pooled(&pool);
    // Sends complete in the reactor without waking this task; two chunks at most wait per
    // connection, so a peer that stops reading cannot take the whole shared pool.
    let mut tx = stream.send_queue(SEND_DEPTH);
    while let Some(Ok(chunk)) = rx.next().await {
        // Counted when received: a summary printed on Ctrl-C includes bytes on their way back.
        counters
            .bytes
            .set(counters.bytes.get() + chunk.len() as u64);
        if tx.send(chunk).await.is_err() {
            return;
        }
    }
    // The peer half-closed (or the receive failed): what was received still goes back.
    let _ = tx.flush().await;
}

/// Echoes with one buffer per connection, like the tokio server.
async fn echo_plain(stream: TcpStream, counters: Rc<Counters>, _open: OpenGuard) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let (res, returned) = stream.read(buf).await;
        let n = match res {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        counters.bytes.set(counters.bytes.get() + n as u64);
        let (res, slice) = stream.write_all(returned.slice(..n)).await;
        buf = slice.into_inner();
        if res.is_err() {
            return;
        }
    }
}

/// The built-in client of `--demo`: 16 connections, one 1 KiB message in flight each, for
/// `length`; prints requests/s and latency percentiles.
async fn demo(addr: SocketAddr, length: Duration) -> std::io::Result<()> {
    const CONNS: usize = 16;
    const SIZE: usize = 1024;
    println!("demo: {CONNS} connections x {SIZE} B messages for {length:?} (the client runs on shard 0, beside its server)");
    let deadline = Instant::now() + length;
    let latencies: Rc<RefCell<Vec<u32>>> = Rc::default();
    let mut clients = Vec::new();
    for c in 0..CONNS {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let latencies = latencies.clone();
        clients.push(ringloop::spawn(async move {
            let mut msg: Vec<u8> = (0..SIZE).map(|i| (i + c) as u8).collect();
            let mut back = Vec::with_capacity(SIZE);
            while Instant::now() < deadline {
                let start = Instant::now();
                let (res, sent) = stream.write_all(msg).await;
                msg = sent;
                res?;
                back.clear();
                let (res, got) = stream.read_exact(back).await;
                back = got;
                res?;
                if back != msg {
                    return Err(std::io::Error::other(
                        "echoed bytes differ from the sent ones",
                    ));
                }
                latencies
                    .borrow_mut()
                    .push(start.elapsed().as_micros() as u32);
            }
            Ok::<_, std::io::Error>(())
        }));
    }
    for client in clients {
        client.await.map_err(std::io::Error::from)??;
    }
    let mut lat = latencies.take();
    lat.sort_unstable();
    let pct = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "demo: {} requests, {:.0} req/s, latency p50 {} µs, p99 {} µs, p99.9 {} µs, every byte verified",
        lat.len(),
        lat.len() as f64 / length.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        pct(0.999)
    );
    Ok(())
}
