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

use std::cell::Cell;
use std::io::Write;
use std::net::SocketAddr;
use std::rc::Rc;

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
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1:7878")]
    addr: SocketAddr,
    /// One 64 KiB buffer and plain `recv` per connection instead of the shared pool.
    #[arg(long)]
    plain: bool,
    /// Buffers in the shared receive pool (a power of two).
    #[arg(long, default_value_t = 4096)]
    pool_buffers: u16,
    /// Size of each pooled buffer, bytes.
    #[arg(long, default_value_t = 16 * 1024)]
    pool_buffer_size: usize,
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
    let listener = TcpListener::bind_with(args.addr, &opts).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", args.addr))
    })?;
    let pool = if args.plain {
        None
    } else {
        Some(BufferPool::new(args.pool_buffers, args.pool_buffer_size)?)
    };
    let counters = Rc::new(Counters::default());

    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", listener.local_addr()?)?;
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

    wait_any(&[SignalKind::interrupt(), SignalKind::terminate()]).await?;
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
        let n = chunk.len() as u64;
        let (res, _chunk) = stream.write_all(chunk).await;
        if res.is_err() {
            return;
        }
        counters.bytes.set(counters.bytes.get() + n);
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
        let (res, slice) = stream.write_all(returned.slice(..n)).await;
        buf = slice.into_inner();
        if res.is_err() {
            return;
        }
        counters.bytes.set(counters.bytes.get() + n as u64);
    }
}
