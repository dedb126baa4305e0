//! A UDP echo server on ringloop: every datagram goes back to its sender. Datagrams arrive
//! through one multishot `recvmsg` into a shared pool of kernel-selected buffers
//! (`UdpSocket::recv_from_pooled`), so the receive side submits nothing per datagram; each
//! datagram goes back as it is, its pool buffer and all, through a `SendToQueue`
//! (`UdpSocket::send_queue`), whose sends complete in the reactor without waking the echo
//! task (up to `--depth` in flight).
//!
//! ```text
//! cargo run --release --example udp_echo -- --addr 127.0.0.1:7890
//! cargo run --release --example udp_echo_client -- --addr 127.0.0.1:7890 --clients 16 --size 64
//! nc -u 127.0.0.1 7890                     # type a line, get it back
//! ```
//!
//! It prints `listening on ADDR` once it receives. `--plain` receives with `recv_from` into
//! one 64 KiB buffer and awaits each `send_to` before the next receive (the same logic as
//! `udp_echo_tokio`). On Ctrl-C or SIGTERM it prints `echoed N datagrams, T truncated
//! (dropped), E receive errors` and exits 0.
//!
//! A pooled buffer holds 44 bytes of header in front of the payload, so with the default
//! 2048-byte buffers a datagram longer than 2004 bytes arrives cut: it is counted as
//! truncated and not echoed (a cut echo would only fail the sender's check).

use std::cell::Cell;
use std::io::Write;
use std::net::SocketAddr;
use std::rc::Rc;

use clap::Parser;
use ringloop::net::{BufferPool, PooledDatagram, UdpSocket};
use ringloop::signal::{wait_any, SignalKind};
use ringloop::IoBufExt;

/// The largest UDP payload over IPv4, the `--plain` receive buffer.
const PLAIN_BUF: usize = 65_507;

/// UDP echo server on ringloop.
#[derive(Parser, Debug)]
#[command(about = "UDP echo server on ringloop (Ctrl-C prints the datagrams echoed)")]
struct Args {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1:7890")]
    addr: SocketAddr,
    /// `recv_from` into one buffer and an awaited `send_to`, one datagram at a time, instead
    /// of the pooled multishot receive.
    #[arg(long)]
    plain: bool,
    /// Buffers in the receive pool (a power of two): the datagrams that may wait at once
    /// between the kernel and the echo loop.
    #[arg(long, default_value_t = 256)]
    pool_buffers: u16,
    /// Size of each pooled buffer, bytes (44 of them hold the kernel's header and the sender).
    #[arg(long, default_value_t = 2048)]
    pool_buffer_size: usize,
    /// Sends in flight at most (pooled mode): the echo task waits for a free send slot only
    /// past this.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    depth: u32,
}

/// What the server did; one thread, so plain cells.
#[derive(Default)]
struct Counters {
    echoed: Cell<u64>,
    truncated: Cell<u64>,
    errors: Cell<u64>,
}

fn main() {
    let args = Args::parse();
    // Blocked before the runtime starts, so a Ctrl-C that arrives before the listener exists
    // waits for it instead of killing the process with no summary.
    let mut signals = nix::sys::signal::SigSet::empty();
    signals.add(nix::sys::signal::Signal::SIGINT);
    signals.add(nix::sys::signal::Signal::SIGTERM);
    if let Err(e) = signals.thread_block() {
        eprintln!("udp_echo: cannot block SIGINT and SIGTERM: {e}");
        std::process::exit(1);
    }
    let mut builder = ringloop::Builder::new();
    builder.entries(1024);
    let result = builder.build().and_then(|rt| rt.block_on(serve(args)));
    match result {
        Ok(c) => println!(
            "echoed {} datagrams, {} truncated (dropped), {} receive errors",
            c.echoed.get(),
            c.truncated.get(),
            c.errors.get()
        ),
        Err(e) => {
            eprintln!("udp_echo: {e}");
            std::process::exit(1);
        }
    }
}

async fn serve(args: Args) -> std::io::Result<Rc<Counters>> {
    let socket = UdpSocket::bind(args.addr)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot bind {}: {e}", args.addr)))?;
    let socket = Rc::new(socket);
    let counters = Rc::new(Counters::default());
    let pool = if args.plain {
        None
    } else {
        Some(BufferPool::new(args.pool_buffers, args.pool_buffer_size)?)
    };

    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", socket.local_addr()?)?;
    out.flush()?;
    drop(out);

    let echoing = match pool {
        Some(pool) => ringloop::spawn(echo_pooled(
            socket.clone(),
            pool,
            args.depth as usize,
            counters.clone(),
        )),
        None => ringloop::spawn(echo_plain(socket.clone(), counters.clone())),
    };
    if let Err(e) = wait_any(&[SignalKind::interrupt(), SignalKind::terminate()]).await {
        eprintln!("udp_echo: cannot wait for Ctrl-C ({e}); stopping");
    }
    echoing.abort();
    let _ = echoing.await;
    Ok(counters)
}

/// Receives through the pool and sends each datagram back as it is: a `PooledDatagram` is an
/// `IoBuf` of its payload, so no copy is made, and its buffer returns to the pool once its send
/// completes. The queue's sends complete in the reactor, so this task is woken only by
/// datagrams (and by a full queue, past `depth` sends in flight).
async fn echo_pooled(
    socket: Rc<UdpSocket>,
    pool: BufferPool,
    depth: usize,
    counters: Rc<Counters>,
) -> std::io::Result<()> {
    let mut datagrams = socket.recv_from_pooled(&pool)?;
    let mut replies = socket.send_queue::<PooledDatagram>(depth);
    while let Some(datagram) = datagrams.next().await {
        match datagram {
            // A cut echo would only fail the sender's check.
            Ok(d) if d.is_truncated() => counters.truncated.set(counters.truncated.get() + 1),
            Ok(d) => {
                let peer = d.peer_addr();
                replies.send_to(d, peer).await?;
                counters.echoed.set(counters.echoed.get() + 1);
            }
            // About one datagram only (the stream goes on); counted, not fatal.
            Err(_) => counters.errors.set(counters.errors.get() + 1),
        }
    }
    Ok(())
}

fn count_send(counters: &Counters, res: std::io::Result<usize>) {
    if res.is_ok() {
        counters.echoed.set(counters.echoed.get() + 1);
    }
}

/// One buffer, receive then an awaited send, like the tokio server.
async fn echo_plain(socket: Rc<UdpSocket>, counters: Rc<Counters>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(PLAIN_BUF);
    loop {
        let (res, returned) = socket.recv_from(buf).await;
        buf = returned;
        let (n, peer) = match res {
            Ok(got) => got,
            Err(_) => {
                counters.errors.set(counters.errors.get() + 1);
                continue;
            }
        };
        let (res, slice) = socket.send_to(buf.slice(..n), peer).await;
        buf = slice.into_inner();
        count_send(&counters, res);
    }
}
