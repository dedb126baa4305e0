//! A TCP echo server on ringloop: one task per connection, receiving through a shared pool of
//! kernel-selected buffers (multishot receive), so an idle connection holds no buffer.
//!
//! ```text
//! cargo run --release --example echo -- --addr 127.0.0.1:7878
//! cargo run --release --example echo_client -- --addr 127.0.0.1:7878 --conns 16 --size 1024
//! nc 127.0.0.1 7878                        # type a line, get it back
//! ```
//!
//! It prints `listening on ADDR` once it accepts connections, and on Ctrl-C or SIGTERM the
//! number of connections served and bytes echoed, then exits 0. `--plain` uses one 64 KiB
//! buffer per connection and plain `recv` instead (the same logic as `echo_tokio`).
//!
//! `--demo` runs server and a small client together on one runtime for a few seconds (16
//! connections, 1 KiB messages, every byte checked) and prints what they did:
//!
//! ```text
//! cargo run --release --example echo -- --demo
//! ```

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Parser;
use ringloop::net::{BufferPool, ListenOptions, TcpListener, TcpStream};
use ringloop::signal::{wait_any, SignalKind};
use ringloop::IoBufExt;

/// Bytes read at most per read in `--plain` mode, per connection.
const BUF_SIZE: usize = 64 * 1024;

/// TCP echo server on ringloop.
#[derive(Parser, Debug)]
#[command(about = "TCP echo server on ringloop (Ctrl-C prints a summary and exits)")]
struct Args {
    /// Address to listen on [default: 127.0.0.1:7878; with --demo, a free loopback port].
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// One 64 KiB buffer and plain `recv` per connection instead of the shared pool.
    #[arg(long)]
    plain: bool,
    /// Buffers in the shared receive pool (a power of two). The kernel hands them out in ring
    /// order, so a pool much larger than needed keeps cold memory cycling through the cache:
    /// 1024 × 16 KiB serves 1,000 busy connections and stays warm.
    #[arg(long, default_value_t = 1024)]
    pool_buffers: u16,
    /// Size of each pooled buffer, bytes.
    #[arg(long, default_value_t = 16 * 1024)]
    pool_buffer_size: usize,
    /// Run a built-in client against the server for this many seconds, print, and exit.
    #[arg(long, num_args = 0..=1, default_missing_value = "3")]
    demo: Option<u64>,
}

#[derive(Default)]
struct Counters {
    connections: Cell<u64>,
    bytes: Cell<u64>,
}

fn main() {
    let args = Args::parse();
    let rt = match ringloop::Builder::new().entries(1024).build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("echo: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(serve(args)) {
        eprintln!("echo: {e}");
        std::process::exit(1);
    }
}

async fn serve(args: Args) -> std::io::Result<()> {
    let opts = ListenOptions::new().backlog(4096);
    let default_port = if args.demo.is_some() { 0 } else { 7878 };
    let addr = args
        .addr
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], default_port)));
    let listener = TcpListener::bind_with(addr, &opts)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    let pool = if args.plain {
        None
    } else {
        Some(BufferPool::new(args.pool_buffers, args.pool_buffer_size)?)
    };
    let counters = Rc::new(Counters::default());

    let listener_addr = listener.local_addr()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {listener_addr}")?;
    out.flush()?;
    drop(out);

    let accepting = ringloop::spawn({
        let counters = counters.clone();
        async move {
            let mut incoming = listener.incoming();
            loop {
                match incoming.next().await {
                    Ok(stream) => {
                        counters.connections.set(counters.connections.get() + 1);
                        let counters = counters.clone();
                        match &pool {
                            Some(pool) => {
                                drop(ringloop::spawn(echo_pooled(stream, pool.clone(), counters)))
                            }
                            None => drop(ringloop::spawn(echo_plain(stream, counters))),
                        }
                    }
                    // Out of fds and the like: the listener pauses by itself; say so, go on.
                    Err(e) => eprintln!("echo: accept failed: {e}"),
                }
            }
        }
    });

    match args.demo {
        Some(seconds) => demo(listener_addr, Duration::from_secs(seconds.max(1))).await?,
        None => drop(wait_any(&[SignalKind::interrupt(), SignalKind::terminate()]).await?),
    }
    accepting.abort();
    println!(
        "served {} connections, echoed {} bytes",
        counters.connections.get(),
        counters.bytes.get()
    );
    Ok(())
}

/// Echoes through the pool: each received chunk goes straight back out, no copy.
async fn echo_pooled(stream: TcpStream, pool: BufferPool, counters: Rc<Counters>) {
    let _ = stream.set_nodelay(true);
    let mut rx = stream.recv_pooled(&pool);
    while let Some(Ok(chunk)) = rx.next().await {
        // Counted when received: a summary printed on Ctrl-C includes bytes on their way back.
        counters
            .bytes
            .set(counters.bytes.get() + chunk.len() as u64);
        if stream.write_all(chunk).await.0.is_err() {
            return;
        }
    }
}

/// Echoes with one buffer per connection, like the tokio server.
async fn echo_plain(stream: TcpStream, counters: Rc<Counters>) {
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
    println!("demo: {CONNS} connections x {SIZE} B messages for {length:?} (server and client share this thread)");
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
