//! A closed-loop load client for the echo servers (`examples/echo.rs` on ringloop,
//! `examples/echo_tokio.rs` on tokio), written on tokio's current_thread runtime so that it is
//! neutral between the two and fits on one CPU.
//!
//! Each of `--conns` connections sends one message of `--size` bytes, reads exactly that many
//! bytes back, checks every byte, and sends the next: one message in flight per connection.
//! Every message carries a pattern unique to its connection and request (a per-connection
//! random block, rotated by a per-request offset, with the request number in its first bytes),
//! so a reply from another connection or a stale buffer is caught, not counted.
//!
//! ```text
//! cargo run --release --example echo -- --addr 127.0.0.1:7878            # terminal 1
//! cargo run --release --example echo_client -- --addr 127.0.0.1:7878 \
//!     --conns 16 --size 1024 --duration 5s --warmup 1s                  # terminal 2
//! ```
//!
//! It shows progress on stderr while running (hidden when stderr is not a terminal) and then
//! prints requests/s, MB/s (payload, each way) and latency p50 / p99 / p99.9 / max in µs,
//! measured over the `--duration` window that follows `--warmup`. `--json` prints one line of
//! JSON on stdout instead (the human summary goes to stderr), for `benches/echo.rs`. The exit
//! status is 1 if any request failed or the server could not be reached.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

#[path = "support/load.rs"]
mod load;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use load::{cpu_time, new_histogram, parse_duration, pattern_block, rotate_into, Window};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Closed-loop TCP echo load client: throughput and latency percentiles.
#[derive(Parser, Debug)]
struct Args {
    /// Address of the echo server.
    #[arg(long, default_value = "127.0.0.1:7878")]
    addr: SocketAddr,
    /// Concurrent connections, each with one message in flight.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    conns: u64,
    /// Message size in bytes.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=(1 << 26)))]
    size: u64,
    /// Length of the measured window after the warm-up: `5`, `5s`, `2.5s` or `500ms`.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// Warm-up before the measured window (requests run but are not counted).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// Give up on a connect, or on a connection still waiting this long after the end.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Print one JSON line with the results on stdout (the human summary goes to stderr).
    #[arg(long)]
    json: bool,
}

/// What one connection measured.
struct ConnStats {
    /// Latency in µs of the requests that completed inside the measured window.
    hist: Histogram<u64>,
    /// Requests completed inside the measured window.
    measured: u64,
    /// Requests completed in all, warm-up and tail included.
    total: u64,
    /// Why the connection stopped early, if it did.
    error: Option<String>,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = raise_fd_limit(args.conns + 64) {
        eprintln!("echo_client: {e}");
        std::process::exit(1);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("echo_client: cannot build the tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    match rt.block_on(run(&args)) {
        Ok(0) => {}
        Ok(_) => std::process::exit(1),
        Err(e) => {
            eprintln!("echo_client: {e}");
            std::process::exit(1);
        }
    }
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit when `needed` descriptors do not fit.
fn raise_fd_limit(needed: u64) -> Result<(), String> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)
        .map_err(|e| format!("cannot read the file-descriptor limit: {e}"))?;
    if soft >= needed {
        return Ok(());
    }
    if hard < needed {
        return Err(format!(
            "{needed} file descriptors needed, but the hard limit (ulimit -Hn) is {hard}"
        ));
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
        .map_err(|e| format!("cannot raise the file-descriptor limit to {hard}: {e}"))
}

/// Connect, drive every connection until the deadline, print the results. Returns the number
/// of failed requests; `Err` when the server could not be reached at all.
async fn run(args: &Args) -> Result<u64, String> {
    let size = usize::try_from(args.size).map_err(|_| "--size is too large".to_string())?;
    let connecting = Instant::now();
    let mut streams = Vec::with_capacity(usize::try_from(args.conns).unwrap_or(0));
    for i in 0..args.conns {
        let stream = match tokio::time::timeout(args.timeout, TcpStream::connect(args.addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                let hint = if e.kind() == io::ErrorKind::ConnectionRefused {
                    "; is the echo server running? (cargo run --release --example echo -- --addr ADDR)"
                } else {
                    ""
                };
                return Err(format!(
                    "cannot connect to {} (connection {} of {}): {e}{hint}",
                    args.addr,
                    i + 1,
                    args.conns
                ));
            }
            Err(_) => {
                return Err(format!(
                    "cannot connect to {} (connection {} of {}): no answer within {:?}",
                    args.addr,
                    i + 1,
                    args.conns,
                    args.timeout
                ))
            }
        };
        stream
            .set_nodelay(true)
            .map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
        streams.push(stream);
    }

    let connect_ms = connecting.elapsed().as_secs_f64() * 1e3;
    let cpu_start = cpu_time();
    let start = Instant::now();
    let window = Window {
        warm_end: start + args.warmup,
        deadline: start + args.warmup + args.duration,
    };
    let hard_deadline = window.deadline + args.timeout;
    let done = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(conn, stream)| {
            let done = Arc::clone(&done);
            tokio::spawn(drive(
                conn as u64,
                stream,
                size,
                window,
                hard_deadline,
                done,
            ))
        })
        .collect();

    show_progress(args, start, window, &done).await;

    let mut hist = new_histogram();
    let (mut measured, mut total, mut errors) = (0u64, 0u64, 0u64);
    let mut first_error = None;
    for (conn, task) in tasks.into_iter().enumerate() {
        // Every task ends by `hard_deadline` on its own; this bound is a second belt.
        let joined = tokio::time::timeout_at(hard_deadline + Duration::from_secs(1), task).await;
        let stats = match joined {
            Ok(Ok(stats)) => stats,
            Ok(Err(e)) => {
                errors += 1;
                first_error.get_or_insert(format!("connection {conn}: task failed: {e}"));
                continue;
            }
            Err(_) => {
                errors += 1;
                first_error.get_or_insert(format!("connection {conn}: did not finish in time"));
                continue;
            }
        };
        hist.add(&stats.hist).ok();
        measured += stats.measured;
        total += stats.total;
        if let Some(e) = stats.error {
            errors += 1;
            first_error.get_or_insert(format!("connection {conn}: {e}"));
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_time() - cpu_start;

    let secs = args.duration.as_secs_f64();
    let rps = if secs > 0.0 {
        measured as f64 / secs
    } else {
        0.0
    };
    let mbps = rps * args.size as f64 / 1e6;
    let client_cpu_pct = if wall > 0.0 { 100.0 * cpu / wall } else { 0.0 };
    let (p50, p99, p999, max) = (
        hist.value_at_quantile(0.50),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
        hist.max(),
    );

    let summary = format!(
        "echo_client: {} conns x {} B to {} for {:.2} s (after {:.2} s warm-up): \
         {rps:.0} req/s, {mbps:.2} MB/s each way, latency us p50 {p50} p99 {p99} p99.9 {p999} \
         max {max}, {errors} errors, client CPU {client_cpu_pct:.0}%",
        args.conns,
        args.size,
        args.addr,
        secs,
        args.warmup.as_secs_f64()
    );
    if args.json {
        eprintln!("{summary}");
        println!(
            "{{\"conns\":{},\"size\":{},\"duration_s\":{secs},\"requests\":{measured},\
             \"total_requests\":{total},\"rps\":{rps:.1},\"mbps\":{mbps:.3},\"p50_us\":{p50},\
             \"p99_us\":{p99},\"p999_us\":{p999},\"max_us\":{max},\"errors\":{errors},\
             \"client_cpu_pct\":{client_cpu_pct:.1},\"connect_ms\":{connect_ms:.1},\
             \"run_ms\":{:.1}}}",
            args.conns,
            args.size,
            wall * 1e3
        );
    } else {
        println!("{summary}");
    }
    if let Some(e) = first_error {
        eprintln!("echo_client: first error: {e}");
    }
    Ok(errors)
}

/// A histogram of µs from 1 µs to 100 s, 3 significant digits.
/// Update the progress bar every 100 ms until the end of the measured window.
async fn show_progress(args: &Args, start: Instant, window: Window, done: &AtomicU64) {
    let total_ms = (window.deadline - start).as_millis() as u64;
    let bar = ProgressBar::new(total_ms.max(1));
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {percent:>3}% {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let mut last = (Instant::now(), done.load(Relaxed));
    loop {
        let now = Instant::now();
        if now >= window.deadline {
            break;
        }
        tokio::time::sleep_until((now + Duration::from_millis(100)).min(window.deadline)).await;
        let (now, count) = (Instant::now(), done.load(Relaxed));
        let rate = (count - last.1) as f64 / (now - last.0).as_secs_f64().max(1e-9);
        last = (now, count);
        let phase = if now < window.warm_end {
            "warm-up"
        } else {
            "measuring"
        };
        bar.set_position((now - start).as_millis() as u64);
        bar.set_message(format!(
            "{phase}: {rate:.0} req/s, {} conns x {} B",
            args.conns, args.size
        ));
    }
    bar.finish_and_clear();
}

/// One connection's closed loop: write a message, read it back, verify it, until the deadline.
async fn drive(
    conn: u64,
    mut stream: TcpStream,
    size: usize,
    window: Window,
    hard_deadline: Instant,
    done: Arc<AtomicU64>,
) -> ConnStats {
    let mut stats = ConnStats {
        hist: new_histogram(),
        measured: 0,
        total: 0,
        error: None,
    };
    let looped = tokio::time::timeout_at(
        hard_deadline,
        closed_loop(conn, &mut stream, size, window, &done, &mut stats),
    )
    .await;
    match looped {
        Ok(Ok(())) => {}
        Ok(Err(e)) => stats.error = Some(e),
        Err(_) => {
            stats.error = Some(format!(
                "request {}: no complete reply by the end of the run",
                stats.total
            ))
        }
    }
    stats
}

async fn closed_loop(
    conn: u64,
    stream: &mut TcpStream,
    size: usize,
    window: Window,
    done: &AtomicU64,
    stats: &mut ConnStats,
) -> Result<(), String> {
    let base = pattern_block(conn, size);
    let mut message = vec![0u8; size];
    let mut reply = vec![0u8; size];
    let mut request = 0u64;
    while Instant::now() < window.deadline {
        fill_message(&mut message, &base, request);
        let sent = Instant::now();
        if let Err(e) = stream.write_all(&message).await {
            return Err(format!("request {request}: write failed: {e}"));
        }
        if let Err(e) = stream.read_exact(&mut reply).await {
            return Err(if e.kind() == io::ErrorKind::UnexpectedEof {
                format!("request {request}: the server closed the connection mid-reply")
            } else {
                format!("request {request}: read failed: {e}")
            });
        }
        let received = Instant::now();
        if reply != message {
            let at = reply
                .iter()
                .zip(&message)
                .position(|(got, want)| got != want)
                .unwrap_or(0);
            return Err(format!(
                "request {request}: echoed byte {at} of {size} is {:#04x}, expected {:#04x}",
                reply[at], message[at]
            ));
        }
        stats.total += 1;
        done.fetch_add(1, Relaxed);
        if received >= window.warm_end && received <= window.deadline {
            stats.measured += 1;
            let micros = (received - sent).as_micros();
            stats
                .hist
                .saturating_record(u64::try_from(micros).unwrap_or(u64::MAX));
        }
        request += 1;
    }
    Ok(())
}

/// Request `request`'s message: the connection's block rotated by a per-request offset, with
/// the request number XORed into the first (up to) 8 bytes.
fn fill_message(message: &mut [u8], base: &[u8], request: u64) {
    rotate_into(message, base, request);
    for (byte, tag) in message.iter_mut().zip(request.to_le_bytes()) {
        *byte ^= tag;
    }
}
