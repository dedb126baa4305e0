//! The UDP echo server of `examples/udp_echo.rs`, written on tokio's current_thread runtime:
//! the baseline `benches/udp_echo.sh` measures ringloop against. `recv_from` into one 64 KiB
//! buffer, `send_to` back to the sender, one datagram at a time (tokio's `send_to` on a UDP
//! socket is a `sendto(2)` that almost never has to wait, so awaiting it costs nothing).
//!
//! ```text
//! cargo run --release --example udp_echo_tokio -- --addr 127.0.0.1:7891
//! cargo run --release --example udp_echo_client -- --addr 127.0.0.1:7891 --clients 16 --size 64
//! ```
//!
//! It prints `listening on ADDR` once it receives, and on Ctrl-C or SIGTERM
//! `echoed N datagrams, 0 truncated (dropped), E receive errors`, then exits 0.

use std::io::Write;
use std::net::SocketAddr;

use clap::Parser;
use tokio::net::UdpSocket;
use tokio::signal::unix::{signal, SignalKind};

/// The largest UDP payload over IPv4.
const BUF_SIZE: usize = 65_507;

/// UDP echo server on tokio (current_thread).
#[derive(Parser, Debug)]
struct Args {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1:7891")]
    addr: SocketAddr,
}

fn main() {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("udp_echo_tokio: cannot build the tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    match rt.block_on(serve(args.addr)) {
        Ok((echoed, errors)) => {
            println!("echoed {echoed} datagrams, 0 truncated (dropped), {errors} receive errors")
        }
        Err(e) => {
            eprintln!("udp_echo_tokio: {e}");
            std::process::exit(1);
        }
    }
}

async fn serve(addr: SocketAddr) -> std::io::Result<(u64, u64)> {
    let socket = UdpSocket::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot bind {addr}: {e}")))?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;

    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", socket.local_addr()?)?;
    out.flush()?;
    drop(out);

    let mut buf = vec![0u8; BUF_SIZE];
    let (mut echoed, mut errors) = (0u64, 0u64);
    loop {
        tokio::select! {
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, peer)) => {
                    if socket.send_to(&buf[..n], peer).await.is_ok() {
                        echoed += 1;
                    }
                }
                Err(_) => errors += 1,
            },
        }
    }
    Ok((echoed, errors))
}
