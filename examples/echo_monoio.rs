//! The echo server of `examples/echo.rs`, written on monoio (io_uring, thread-per-core): the
//! second baseline, the io_uring runtime ringloop means to beat, beside tokio's
//! (`echo_tokio.rs`). `benches/echo_user_cpu.sh` measures it when `MONOIO=1` is set.
//!
//! Same logic as the other two servers: one task per connection, a 64 KiB buffer per
//! connection, read → write_all until the peer closes, `TCP_NODELAY` on every accepted socket,
//! a listen backlog of 4096. monoio's buffers are owned, as ringloop's: the buffer goes to the
//! kernel with each read or write and comes back with its result.
//!
//! ```text
//! cargo run --release --example echo_monoio -- --addr 127.0.0.1:7880
//! cargo run --release --example echo_client -- --addr 127.0.0.1:7880 --conns 16 --size 1024
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
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{ListenerOpts, TcpListener, TcpStream};
use nix::sys::signal::{SigSet, Signal};

/// Bytes read (and written back) at most per read, per connection.
const BUF_SIZE: usize = 64 * 1024;
/// The `listen(2)` backlog, the same as `echo.rs`.
const BACKLOG: i32 = 4096;
/// A connection adds to the shared byte count once it has this many bytes to add, and when
/// it ends (as in `echo_tokio.rs`).
const FLUSH_BYTES: u64 = 64 * 1024;
/// Entries of monoio's submission queue (its default is 1024, ringloop's 4096).
const RING_ENTRIES: u32 = 4096;

/// TCP echo server on monoio (one thread, io_uring driver).
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1:7880")]
    addr: SocketAddr,
}

/// What the server did, printed on exit. Atomics: the signal thread reads them.
#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    bytes: AtomicU64,
}

fn main() {
    let args = Args::parse();
    let counters = Arc::new(Counters::default());
    // monoio has no signal stream without an extra crate: SIGINT and SIGTERM are blocked in
    // every thread (the runtime's inherits the mask) and taken by one thread with sigwait.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    if let Err(e) = signals.thread_block() {
        eprintln!("echo_monoio: cannot block SIGINT/SIGTERM: {e}");
        std::process::exit(1);
    }
    let watched = Arc::clone(&counters);
    std::thread::spawn(move || {
        // An error here (none is documented for a valid set) ends the server like a signal.
        let _ = signals.wait();
        println!(
            "served {} connections, echoed {} bytes",
            watched.connections.load(Relaxed),
            watched.bytes.load(Relaxed)
        );
        std::process::exit(0);
    });

    let rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .with_entries(RING_ENTRIES)
        .enable_timer()
        .build();
    let mut rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("echo_monoio: cannot build the monoio runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(serve(args.addr, counters)) {
        eprintln!("echo_monoio: {e}");
        std::process::exit(1);
    }
}

async fn serve(addr: SocketAddr, counters: Arc<Counters>) -> std::io::Result<()> {
    let opts = ListenerOpts::new().reuse_addr(true).backlog(BACKLOG);
    let listener = TcpListener::bind_with_config(addr, &opts)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", listener.local_addr()?)?;
    out.flush()?;
    drop(out);

    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                counters.connections.fetch_add(1, Relaxed);
                monoio::spawn(echo(stream, Arc::clone(&counters)));
            }
            // Out of file descriptors and the like: back off instead of spinning.
            Err(e) => {
                eprintln!("echo_monoio: accept failed: {e}; retrying in 100 ms");
                monoio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Echo one connection until the peer closes it or an error ends it.
async fn echo(mut stream: TcpStream, counters: Arc<Counters>) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(BUF_SIZE);
    let mut unflushed = 0u64;
    loop {
        // monoio reads into the whole capacity and sets the length to what it read.
        let (read, back) = stream.read(buf).await;
        buf = back;
        let n = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let (written, back) = stream.write_all(buf).await;
        buf = back;
        if written.is_err() {
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
