//! A closed-loop load client for the UDP echo servers (`examples/udp_echo.rs` on ringloop,
//! `examples/udp_echo_tokio.rs` on tokio), on tokio's current_thread runtime so that it is
//! neutral between the two and fits on one CPU, as `echo_client` is for TCP.
//!
//! Each of `--clients` sockets (connected to the server, so it hears from nobody else) sends
//! one datagram of `--size` bytes, waits for it to come back, checks every byte, and sends the
//! next: one datagram in flight per socket. A datagram carries its sequence number in its
//! first 8 bytes and the client's number in the next 8, then a block unique to the client
//! rotated by a per-datagram offset, so a reply to another client or an older datagram is
//! caught, not counted.
//!
//! UDP may drop datagrams: one not answered within `--loss-timeout` (default 1 s) is counted
//! lost and the client sends the next one, so the run never hangs. A reply to a datagram
//! already given up on that arrives later is counted late (after its bytes are checked) and
//! skipped. Socket errors (`ConnectionRefused` while no server listens) are counted and the
//! client retries after 10 ms.
//!
//! ```text
//! cargo run --release --example udp_echo -- --addr 127.0.0.1:7890                  # terminal 1
//! cargo run --release --example udp_echo_client -- --addr 127.0.0.1:7890 \
//!     --clients 16 --size 64 --duration 5s --warmup 1s                             # terminal 2
//! ```
//!
//! It prints datagrams/s and latency p50 / p99 / p99.9 / max in µs over the `--duration`
//! window that follows `--warmup`, with the losses, late replies, verification failures and
//! socket errors. `--json` prints one line of JSON on stdout instead (the human summary goes
//! to stderr), for `benches/udp_echo.sh`. The exit status is 1 if any reply failed its check
//! or no datagram came back at all.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

#[path = "support/load.rs"]
mod load;
use hdrhistogram::Histogram;
use load::{cpu_time, new_histogram, parse_duration, pattern_block, rotate_into, Window};
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// Sequence number and client number in front of every payload.
const HEADER: usize = 16;
/// How long a client waits after a socket error before sending again.
const ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// Closed-loop UDP echo load client: datagrams/s and latency percentiles.
#[derive(Parser, Debug)]
struct Args {
    /// Address of the echo server.
    #[arg(long, default_value = "127.0.0.1:7890")]
    addr: SocketAddr,
    /// Sockets, each with one datagram in flight.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    clients: u64,
    /// Datagram size in bytes (at least 16: the sequence and client numbers).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(16..=65_507))]
    size: u64,
    /// Length of the measured window after the warm-up: `5`, `5s`, `2.5s` or `500ms`.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// Warm-up before the measured window (datagrams echoed but not counted).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// A datagram not answered within this long is counted lost, and the next one is sent.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    loss_timeout: Duration,
    /// Print one JSON line with the results on stdout (the human summary goes to stderr).
    #[arg(long)]
    json: bool,
}

/// What one client measured.
struct ClientStats {
    /// Round-trip µs of the datagrams answered inside the measured window.
    hist: Histogram<u64>,
    /// Datagrams answered inside the measured window.
    measured: u64,
    /// Datagrams answered in all, warm-up and tail included.
    total: u64,
    lost: u64,
    late: u64,
    failures: u64,
    errors: u64,
    first_problem: Option<String>,
}

fn main() {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("udp_echo_client: cannot build the tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    match rt.block_on(run(&args)) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("udp_echo_client: {e}");
            std::process::exit(1);
        }
    }
}

/// Drives every client to the deadline and prints the results; `Ok(false)` if a reply failed
/// its check or nothing came back.
async fn run(args: &Args) -> Result<bool, String> {
    let size = args.size as usize;
    let local: SocketAddr = if args.addr.is_ipv4() {
        (Ipv4Addr::LOCALHOST, 0).into()
    } else {
        (Ipv6Addr::LOCALHOST, 0).into()
    };
    let mut sockets = Vec::new();
    for _ in 0..args.clients {
        let socket = UdpSocket::bind(local)
            .await
            .map_err(|e| format!("cannot bind a client socket on {local}: {e}"))?;
        socket
            .connect(args.addr)
            .await
            .map_err(|e| format!("cannot connect a client socket to {}: {e}", args.addr))?;
        sockets.push(socket);
    }

    let cpu_start = cpu_time();
    let start = Instant::now();
    let window = Window {
        warm_end: start + args.warmup,
        deadline: start + args.warmup + args.duration,
    };
    let done = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(id, socket)| {
            tokio::spawn(drive(
                id as u64,
                socket,
                size,
                window,
                args.loss_timeout,
                done.clone(),
            ))
        })
        .collect();

    let mut hist = new_histogram();
    let (mut measured, mut total, mut lost, mut late, mut failures, mut errors) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut first_problem = None;
    // Each client stops by the deadline plus one loss timeout (and a backoff); this bound is a
    // second belt.
    let join_by = window.deadline + args.loss_timeout + Duration::from_secs(2);
    for (id, task) in tasks.into_iter().enumerate() {
        let stats = match tokio::time::timeout_at(join_by, task).await {
            Ok(Ok(stats)) => stats,
            Ok(Err(e)) => {
                failures += 1;
                first_problem.get_or_insert(format!("client {id}: task failed: {e}"));
                continue;
            }
            Err(_) => {
                failures += 1;
                first_problem.get_or_insert(format!("client {id}: did not finish in time"));
                continue;
            }
        };
        hist.add(&stats.hist).ok();
        measured += stats.measured;
        total += stats.total;
        lost += stats.lost;
        late += stats.late;
        failures += stats.failures;
        errors += stats.errors;
        if let Some(p) = stats.first_problem {
            first_problem.get_or_insert(format!("client {id}: {p}"));
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_time() - cpu_start;

    let secs = args.duration.as_secs_f64();
    let dps = if secs > 0.0 {
        measured as f64 / secs
    } else {
        0.0
    };
    let client_cpu_pct = if wall > 0.0 { 100.0 * cpu / wall } else { 0.0 };
    let (p50, p99, p999, max) = (
        hist.value_at_quantile(0.50),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
        hist.max(),
    );
    let summary = format!(
        "udp_echo_client: {} clients x {} B to {} for {secs:.2} s (after {:.2} s warm-up): \
         {dps:.0} datagrams/s, latency us p50 {p50} p99 {p99} p99.9 {p999} max {max}, \
         {lost} lost, {late} late, {failures} verification failures, {errors} socket errors, \
         client CPU {client_cpu_pct:.0}%",
        args.clients,
        args.size,
        args.addr,
        args.warmup.as_secs_f64()
    );
    if args.json {
        eprintln!("{summary}");
        println!(
            "{{\"clients\":{},\"size\":{},\"duration_s\":{secs},\"datagrams\":{measured},\
             \"total_datagrams\":{total},\"dps\":{dps:.1},\"p50_us\":{p50},\"p99_us\":{p99},\
             \"p999_us\":{p999},\"max_us\":{max},\"lost\":{lost},\"late\":{late},\
             \"failures\":{failures},\"errors\":{errors},\"client_cpu_pct\":{client_cpu_pct:.1},\
             \"run_ms\":{:.1}}}",
            args.clients,
            args.size,
            wall * 1e3
        );
    } else {
        println!("{summary}");
    }
    if let Some(p) = first_problem {
        eprintln!("udp_echo_client: first problem: {p}");
    }
    Ok(failures == 0 && total > 0)
}

/// A histogram of µs from 1 µs to 100 s, 3 significant digits.
/// One client's closed loop until the deadline: send, wait (at most `loss_timeout`) for the
/// reply, check it, send the next.
async fn drive(
    id: u64,
    socket: UdpSocket,
    size: usize,
    window: Window,
    loss_timeout: Duration,
    done: Arc<AtomicU64>,
) -> ClientStats {
    let mut stats = ClientStats {
        hist: new_histogram(),
        measured: 0,
        total: 0,
        lost: 0,
        late: 0,
        failures: 0,
        errors: 0,
        first_problem: None,
    };
    let base = pattern_block(id, size);
    let mut message = vec![0u8; size];
    let mut expected_late = vec![0u8; size];
    // One byte more than sent: a longer reply shows as a length mismatch, not a cut match.
    let mut reply = vec![0u8; size + 1];
    let mut seq = 0u64;
    while Instant::now() < window.deadline {
        fill_message(&mut message, &base, id, seq);
        let sent = Instant::now();
        if let Err(e) = socket.send(&message).await {
            stats.errors += 1;
            stats
                .first_problem
                .get_or_insert(format!("datagram {seq}: send failed: {e}"));
            tokio::time::sleep(ERROR_BACKOFF).await;
            seq += 1;
            continue;
        }
        let give_up = sent + loss_timeout;
        loop {
            let n = match tokio::time::timeout_at(give_up, socket.recv(&mut reply)).await {
                Err(_) => {
                    stats.lost += 1;
                    break;
                }
                Ok(Err(e)) => {
                    stats.errors += 1;
                    stats
                        .first_problem
                        .get_or_insert(format!("datagram {seq}: receive failed: {e}"));
                    tokio::time::sleep_until(give_up.min(Instant::now() + ERROR_BACKOFF)).await;
                    break;
                }
                Ok(Ok(n)) => n,
            };
            let received = Instant::now();
            let got = &reply[..n];
            let got_seq = u64::from_le_bytes(got[..8.min(n)].try_into().unwrap_or([0xff; 8]));
            if n == size && got_seq < seq {
                // A reply to a datagram counted lost: fine if its bytes are right.
                fill_message(&mut expected_late, &base, id, got_seq);
                if got == expected_late.as_slice() {
                    stats.late += 1;
                    continue;
                }
            }
            if got != message.as_slice() {
                stats.failures += 1;
                let problem = if n != size {
                    format!("datagram {seq}: reply of {n} bytes, sent {size}")
                } else {
                    let at = got.iter().zip(&message).position(|(a, b)| a != b);
                    let at = at.unwrap_or(0);
                    format!(
                        "datagram {seq}: echoed byte {at} of {size} is {:#04x}, expected {:#04x}",
                        got[at], message[at]
                    )
                };
                stats.first_problem.get_or_insert(problem);
                break;
            }
            stats.total += 1;
            done.fetch_add(1, Relaxed);
            if received >= window.warm_end && received <= window.deadline {
                stats.measured += 1;
                let micros = u64::try_from((received - sent).as_micros()).unwrap_or(u64::MAX);
                stats.hist.saturating_record(micros);
            }
            break;
        }
        seq += 1;
    }
    stats
}

/// Datagram `seq` of client `id`: the client's block rotated by a per-datagram offset (so a
/// stale buffer differs beyond the header too), under the sequence and client numbers.
fn fill_message(message: &mut [u8], base: &[u8], id: u64, seq: u64) {
    rotate_into(message, base, seq);
    message[..8].copy_from_slice(&seq.to_le_bytes());
    message[8..HEADER].copy_from_slice(&id.to_le_bytes());
}
