//! The echo server of `examples/echo.rs`, written on tokio's current_thread runtime: the
//! baseline `benches/echo.rs` measures ringloop against. `--workers N` runs it on tokio's
//! multi_thread runtime with N worker threads instead (the baseline of ringloop's
//! `--shards N`).
//!
//! Same logic as ringloop's server: one task per connection, a 64 KiB buffer per connection,
//! read → write_all until the peer closes. `TCP_NODELAY` is set on every accepted socket, and
//! the listen backlog is 4096 as in `echo.rs` (tokio's `TcpListener::bind` uses 1024), so that a
//! burst of 1,000 connects does not overflow the accept queue.
//!
//! ```text
//! cargo run --release --example echo_tokio -- --addr 127.0.0.1:7879
//! cargo run --release --example echo_client -- --addr 127.0.0.1:7879 --conns 16 --size 1024
//! cargo run --release --example echo_tokio -- --addr 127.0.0.1:7879 --workers 2
//! nc 127.0.0.1 7879                        # type a line, get it back
//! ```
//!
//! It prints `listening on ADDR` once it accepts connections, and on Ctrl-C or SIGTERM the
//! number of connections served and bytes echoed, then exits 0.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::signal::unix::{signal, SignalKind};

/// Bytes read (and written back) at most per read, per connection.
const BUF_SIZE: usize = 64 * 1024;
/// The `listen(2)` backlog, the same as `echo.rs`.
const BACKLOG: u32 = 4096;
/// A connection adds to the shared byte count once it has this many bytes to add, and when
/// it ends: the summary printed on Ctrl-C may miss less than this per open connection.
const FLUSH_BYTES: u64 = 64 * 1024;

/// TCP echo server on tokio (current_thread, or multi_thread with --workers).
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1:7879")]
    addr: SocketAddr,
    /// Run tokio's multi_thread runtime with this many worker threads [default: one
    /// current_thread runtime].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    workers: Option<u16>,
}

/// What the server did, printed on exit. Atomics so that connection tasks can be plain
/// `tokio::spawn`ed tasks, tokio's usual and fastest path; a connection adds its bytes in
/// chunks (see `FLUSH_BYTES`), so workers on several threads do not contend on every read.
#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    bytes: AtomicU64,
}

fn main() {
    let args = Args::parse();
    let mut builder = match args.workers {
        None => tokio::runtime::Builder::new_current_thread(),
        Some(workers) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(usize::from(workers));
            builder
        }
    };
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("echo_tokio: cannot build the tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(serve(args.addr)) {
        eprintln!("echo_tokio: {e}");
        std::process::exit(1);
    }
}

async fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let listener = listen(addr)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let counters = Arc::new(Counters::default());

    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", listener.local_addr()?)?;
    out.flush()?;
    drop(out);

    loop {
        tokio::select! {
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    counters.connections.fetch_add(1, Relaxed);
                    tokio::spawn(echo(stream, Arc::clone(&counters)));
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(e) => {
                    eprintln!("echo_tokio: accept failed: {e}; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }

    println!(
        "served {} connections, echoed {} bytes",
        counters.connections.load(Relaxed),
        counters.bytes.load(Relaxed)
    );
    Ok(())
}

/// Bind with `SO_REUSEADDR` (as `TcpListener::bind` does) and a backlog of `BACKLOG`.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Echo one connection until the peer closes it or an error ends it.
async fn echo(mut stream: TcpStream, counters: Arc<Counters>) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; BUF_SIZE];
    let mut unflushed = 0u64;
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            break;
        }
        unflushed += n as u64;
        if unflushed >= FLUSH_BYTES {
            counters
                .bytes
                .fetch_add(std::mem::take(&mut unflushed), Relaxed);
        }
    }
    counters.bytes.fetch_add(unflushed, Relaxed);
}
