//! The echo benchmark: ringloop's echo server against tokio's, same client, same machine, one
//! run, cell by cell, reported as ratios ringloop / tokio.
//!
//! What runs: three example binaries as child processes, built beforehand (this bench builds
//! nothing): `echo` (ringloop's server), `echo_tokio` (the same server on tokio's current_thread
//! runtime: 64 KiB buffer per connection, read → write_all) and `echo_client` (a closed-loop
//! tokio client that verifies every byte and prints a JSON line). Both servers run side by side
//! on CPU 0; the client runs on CPU 1 (no pinning on a one-CPU machine; the bench says so).
//!
//! The grid is conns ∈ {1, 16, 100, 1000} × message size ∈ {64, 1024, 16384} bytes, and each
//! cell runs ringloop then tokio, so that a drift of the machine hits both alike. Per cell and
//! server: requests/s and p99 latency from the client, and the server's user and system CPU
//! time per request from `/proc/PID/stat` (utime, stime) sampled around the client run,
//! divided by every request the client completed (warm-up included, as the CPU was spent on
//! those too). On loopback most of a server's CPU is the kernel's TCP work, so whole-request
//! ratios stay near 1.0; the runtime's own cost shows in the **user** CPU per request.
//!
//! Then the sharded grid: ringloop's server with `--shards 2 --no-pin` against tokio's with
//! `--workers 2` (multi_thread), conns ∈ {16, 100, 1000} × size ∈ {64, 1024} ({16, 1000} in
//! quick mode), servers and client all unpinned, sharing the machine's CPUs (the table says
//! so). Same figures per cell; server CPU is the whole process, every thread.
//!
//! Then the memory figure: a fresh server is warmed up (10 connections × 1,000 one-byte round
//! trips, so a shared receive pool is resident before the count: a fixed cost, not a
//! per-connection one), then gets 10,000 idle connections (each echoes one byte first, so it
//! is accepted and has a read armed), and the growth of its VmRSS is reported per connection. It needs `RLIMIT_NOFILE` ≥ 10,100 (the bench raises the soft
//! limit to the hard one, and the servers inherit it) and is skipped with a note otherwise.
//!
//! How to run:
//!
//! ```text
//! cargo build --release --examples                   # the servers and the client
//! cargo bench --bench echo                           # full grid, 5 s per cell after 1 s warm-up
//! cargo bench --bench echo -- --quick                # 1,16,1000 × 64,16384 and the sharded
//!                                                    # 16,1000 × 64,1024; 2 s per cell: < 2 min
//! RINGLOOP_BENCH_QUICK=1 cargo bench --bench echo    # the same quick mode
//! cargo bench --bench echo -- --no-memory            # skip the 10,000-idle-connection figure
//!                                                    # (or RINGLOOP_BENCH_MEMORY=0)
//! cargo bench --bench echo -- --memory-only          # only that figure
//! cargo bench --bench echo -- --no-sharded           # skip the sharded grid
//!                                                    # (or RINGLOOP_BENCH_SHARDED=0)
//! cargo bench --bench echo -- --sharded-only         # only the sharded grid
//! ```
//!
//! `RINGLOOP_BENCH_ECHO`, `RINGLOOP_BENCH_ECHO_TOKIO` and `RINGLOOP_BENCH_ECHO_CLIENT` replace
//! the path of a binary (for instance to compare two builds). Output is Markdown: a header with
//! the machine and the command, the results table, a details table (raw ticks; server, client
//! and other CPU % — a client near 100% means the client, not the server, set the pace; other
//! CPU well above a few % means the machine was not quiet), the
//! targets of issue 3 met or missed, and the memory table. Every child is killed by pid when
//! the bench ends or panics, and dies with the bench if it is killed (`PR_SET_PDEATHSIG`).
//! Loopback only. Exit status 1 if a binary is missing, a server failed, or a request failed.

mod common;

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use common::{cpu_set, load_average, machine, utc_now};

/// Connections per cell, full grid.
const FULL_CONNS: &[u64] = &[1, 16, 100, 1000];
/// Message sizes per cell, full grid.
const FULL_SIZES: &[u64] = &[64, 1024, 16384];
/// Connections per cell, quick grid.
const QUICK_CONNS: &[u64] = &[1, 16, 1000];
/// Message sizes per cell, quick grid.
const QUICK_SIZES: &[u64] = &[64, 16384];
/// Connections per cell of the sharded grid, full mode.
const FULL_SHARDED_CONNS: &[u64] = &[16, 100, 1000];
/// Connections per cell of the sharded grid, quick mode.
const QUICK_SHARDED_CONNS: &[u64] = &[16, 1000];
/// Message sizes of the sharded grid, both modes.
const SHARDED_SIZES: &[u64] = &[64, 1024];
/// Idle connections held open for the memory figure.
const IDLE_CONNS: usize = 10_000;
/// Descriptors needed beyond the idle connections (the bench's and the server's own).
const FD_SLACK: u64 = 100;
/// How long a server may take to print `listening on`.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a server may take to exit after SIGTERM before it is killed (ringloop's is
/// started with a 2 s grace period for open connections).
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Below this many user ticks (on either server) a user-CPU ratio is flagged as noise.
const FEW_TICKS: u64 = 20;

/// The CPUs the bench was allowed at start; children started without a CPU get all of them
/// (they would otherwise inherit the bench's own pinning to the client's CPU).
static ALLOWED_CPUS: std::sync::OnceLock<CpuSet> = std::sync::OnceLock::new();

/// The two servers, in the order each cell runs them.
const SERVERS: [&str; 2] = ["ringloop", "tokio"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then only say so.
    if !args.iter().any(|a| a == "--bench") {
        println!("echo bench: not run under `cargo test`; run `cargo bench --bench echo`");
        return;
    }
    // Positional arguments are name filters, as criterion takes them (`cargo bench -- timer`).
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty() && !filters.iter().any(|f| "echo".contains(f.as_str())) {
        println!("echo bench: skipped (filtered out)");
        return;
    }
    let env_on = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0");
    let quick = args.iter().any(|a| a == "--quick") || env_on("RINGLOOP_BENCH_QUICK");
    let memory = !args.iter().any(|a| a == "--no-memory")
        && std::env::var("RINGLOOP_BENCH_MEMORY").map_or(true, |v| v != "0");

    let only = |what: &str| args.iter().any(|a| a == what);
    let grid = !only("--memory-only") && !only("--sharded-only");
    let sharded = !only("--memory-only")
        && !only("--no-sharded")
        && std::env::var("RINGLOOP_BENCH_SHARDED").map_or(true, |v| v != "0");
    let memory = memory && !only("--sharded-only");
    match run(quick, grid, sharded, memory) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("echo bench: {e}");
            std::process::exit(1);
        }
    }
}

/// The three binaries the bench runs.
struct Binaries {
    ringloop: PathBuf,
    tokio: PathBuf,
    client: PathBuf,
}

impl Binaries {
    fn server(&self, name: &str) -> &Path {
        if name == "ringloop" {
            &self.ringloop
        } else {
            &self.tokio
        }
    }
}

/// Which CPUs the servers and the client run on, if the machine has two.
#[derive(Clone, Copy)]
struct Pinning {
    server: Option<usize>,
    client: Option<usize>,
}

/// How every client run of the grid is made.
struct ClientSetup {
    path: PathBuf,
    cpu: Option<usize>,
    /// Measured window per cell, seconds.
    secs: f64,
    /// Warm-up before it, seconds.
    warmup: f64,
    clk_tck: f64,
}

/// One measurement: one server, one cell.
struct Sample {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    total_requests: u64,
    errors: u64,
    client_cpu_pct: f64,
    user_ticks: u64,
    sys_ticks: u64,
    /// The client's measured run (warm-up + window), without its connect phase.
    run: Duration,
    /// Busy ticks of the whole machine (all CPUs) during the cell.
    machine_ticks: u64,
}

/// One cell of the grid: a sample (or why there is none) per server.
struct Cell {
    conns: u64,
    size: u64,
    results: [Result<Sample, String>; 2],
}

/// Run the whole bench. `Ok(false)` when something failed but a report was printed.
fn run(quick: bool, grid: bool, sharded: bool, memory: bool) -> Result<bool, String> {
    let bins = find_binaries()?;
    let fd_limit = raise_fd_limit();
    if let Ok(set) = sched_getaffinity(Pid::from_raw(0)) {
        // Before the bench pins itself: unpinned children get these back, not its one CPU.
        let _ = ALLOWED_CPUS.set(set);
    }
    let pinning = pick_cpus();
    if let Some(cpu) = pinning.client {
        // The bench itself (idle most of the time) stays off the servers' CPU too.
        let _ = sched_setaffinity(Pid::from_raw(0), &cpu_set(cpu));
    }
    // SAFETY: sysconf takes an integer name and reads no memory of ours.
    let clk_tck = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        t if t > 0 => t as f64,
        _ => return Err("sysconf(_SC_CLK_TCK) failed".into()),
    };
    let (conns_list, sizes, cell_secs, warmup_secs) = if quick {
        (QUICK_CONNS, QUICK_SIZES, 2.0, 0.5)
    } else {
        (FULL_CONNS, FULL_SIZES, 5.0, 1.0)
    };

    let mut report = String::new();
    header(
        &mut report,
        &bins,
        pinning,
        quick,
        cell_secs,
        warmup_secs,
        clk_tck,
    );
    eprint!("{report}");

    let mut ok = true;
    let run_setup = ClientSetup {
        path: bins.client.clone(),
        cpu: pinning.client,
        secs: cell_secs,
        warmup: warmup_secs,
        clk_tck,
    };
    if grid {
        let layout = Layout {
            title: "Results (ratio = ringloop / tokio)",
            args: [&["--grace", "2"], &[]],
            server_cpu: pinning.server,
            issue3_targets: true,
        };
        ok &= run_grid(&mut report, &bins, &layout, &run_setup, conns_list, sizes)?;
    }
    if sharded {
        // Unpinned on purpose: two shards (or workers) and the client share the machine's
        // CPUs as the kernel schedules them, as a multi-threaded server on a small box does.
        let layout = Layout {
            title: "Sharded: ringloop `--shards 2` vs tokio multi_thread `--workers 2` \
                    (ratio = ringloop / tokio)",
            args: [
                &["--shards", "2", "--no-pin", "--grace", "2"],
                &["--workers", "2"],
            ],
            server_cpu: None,
            issue3_targets: false,
        };
        let setup = ClientSetup {
            cpu: None,
            path: run_setup.path.clone(),
            ..run_setup
        };
        let (conns, sizes) = if quick {
            (QUICK_SHARDED_CONNS, SHARDED_SIZES)
        } else {
            (FULL_SHARDED_CONNS, SHARDED_SIZES)
        };
        let _ = writeln!(
            report,
            "\n## echo, sharded: 2 threads per server, servers and client unpinned, sharing \
             the machine's CPUs\n"
        );
        ok &= run_grid(&mut report, &bins, &layout, &setup, conns, sizes)?;
    }

    if memory {
        report.push_str("\n### Memory: 10,000 idle connections\n\n");
        if fd_limit < IDLE_CONNS as u64 + FD_SLACK {
            let _ = writeln!(
                report,
                "Skipped: RLIMIT_NOFILE allows {fd_limit} descriptors, {} are needed \
                 (raise the hard limit, e.g. `ulimit -Hn 20000` as root).",
                IDLE_CONNS as u64 + FD_SLACK
            );
        } else {
            eprintln!("opening {IDLE_CONNS} idle connections to each server...");
            report.push_str(
                "| server | VmRSS before (KiB) | VmRSS with 10,000 idle (KiB) | per connection (bytes) |\n\
                 | --- | ---: | ---: | ---: |\n",
            );
            for name in SERVERS {
                match idle_memory(name, bins.server(name), pinning.server) {
                    Ok((before, after)) => {
                        let per_conn = (after as f64 - before as f64) * 1024.0 / IDLE_CONNS as f64;
                        let _ = writeln!(report, "| {name} | {before} | {after} | {per_conn:.0} |");
                    }
                    Err(e) => {
                        ok = false;
                        let _ = writeln!(report, "| {name} | failed: {e} | | |");
                    }
                }
            }
            report.push_str(
                "\nFresh servers. Before the first sample, 10 connections make 1,000 one-byte \
                 round trips each (so a shared receive pool is already resident: a fixed cost, \
                 not a per-connection one), then close. Each idle connection echoes one byte \
                 before the second sample, so the server has accepted it and armed a read. \
                 Target for ringloop: at most 2 KiB per connection.\n",
            );
        }
    }

    println!("{report}");
    Ok(ok)
}

/// How one grid runs: the servers' extra arguments (ringloop's, tokio's) and pinning.
struct Layout {
    title: &'static str,
    args: [&'static [&'static str]; 2],
    server_cpu: Option<usize>,
    /// Check issue 3's targets (single-threaded servers).
    issue3_targets: bool,
}

/// Runs one grid (both servers, cell by cell) and appends its tables; `Ok(false)` if a
/// measurement failed or a server did not exit cleanly.
fn run_grid(
    report: &mut String,
    bins: &Binaries,
    layout: &Layout,
    setup: &ClientSetup,
    conns_list: &[u64],
    sizes: &[u64],
) -> Result<bool, String> {
    eprintln!("running the grid: {}...", layout.title);
    let mut ok = true;
    let mut cells = Vec::new();
    let servers = [
        Server::start(
            "ringloop",
            bins.server("ringloop"),
            layout.server_cpu,
            layout.args[0],
        )?,
        Server::start(
            "tokio",
            bins.server("tokio"),
            layout.server_cpu,
            layout.args[1],
        )?,
    ];
    let clk_tck = setup.clk_tck;
    let total = conns_list.len() * sizes.len();
    'grid: for &conns in conns_list {
        for &size in sizes {
            let n = cells.len() + 1;
            let results = [0, 1].map(|i| {
                let r = measure(&servers[i], setup, conns, size);
                match &r {
                    Ok(s) => eprintln!(
                        "[{n}/{total}] conns {conns:>4} size {size:>5} {:<8} {:>9.0} req/s  \
                         p99 {:>6} us  user {:>6.2} + sys {:>6.2} us/req  errors {}",
                        SERVERS[i],
                        s.rps,
                        s.p99_us,
                        per_req_us(s.user_ticks, s.total_requests, clk_tck),
                        per_req_us(s.sys_ticks, s.total_requests, clk_tck),
                        s.errors
                    ),
                    Err(e) => eprintln!(
                        "[{n}/{total}] conns {conns} size {size} {}: FAILED: {e}",
                        SERVERS[i]
                    ),
                }
                r
            });
            if results
                .iter()
                .any(|r| r.as_ref().map_or(true, |s| s.errors > 0))
            {
                ok = false;
            }
            cells.push(Cell {
                conns,
                size,
                results,
            });
            for server in &servers {
                if !server.alive() {
                    eprintln!("the {} server has exited: stopping the grid", server.name);
                    break 'grid;
                }
            }
        }
    }
    for server in servers {
        let name = server.name;
        match server.stop() {
            Ok((status, lines)) if status.success() => {
                let _ = writeln!(
                    report,
                    "\n{name} server exited cleanly: {}",
                    lines.join(" / ")
                );
            }
            Ok((status, lines)) => {
                ok = false;
                let _ = writeln!(
                    report,
                    "\n{name} server did not exit cleanly ({status}): {}",
                    lines.join(" / ")
                );
            }
            Err(e) => {
                ok = false;
                let _ = writeln!(report, "\n{name} server: {e}");
            }
        }
    }
    results_tables(report, layout, &cells, clk_tck);
    Ok(ok)
}

/// Locate the example binaries next to the bench executable (`target/release/deps/..` →
/// `target/release/examples/`), under `CARGO_TARGET_DIR`, or under the package's `target/`.
fn find_binaries() -> Result<Binaries, String> {
    let mut dirs = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(profile_dir) = exe.parent().and_then(Path::parent) {
            dirs.push(profile_dir.join("examples"));
        }
    }
    if let Ok(target) = std::env::var("CARGO_TARGET_DIR") {
        dirs.push(Path::new(&target).join("release/examples"));
    }
    if let Ok(manifest) = std::env::var("CARGO_MANIFEST_DIR") {
        dirs.push(Path::new(&manifest).join("target/release/examples"));
    }
    let find = |var: &str, name: &str| -> Result<PathBuf, String> {
        if let Ok(path) = std::env::var(var) {
            let path = PathBuf::from(path);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(format!("{var}={} is not a file", path.display()))
            };
        }
        dirs.iter()
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
                format!(
                    "the example binary `{name}` is missing (looked in {}).\n\
                     Build the examples first: cargo build --release --examples",
                    looked.join(", ")
                )
            })
    };
    Ok(Binaries {
        ringloop: find("RINGLOOP_BENCH_ECHO", "echo")?,
        tokio: find("RINGLOOP_BENCH_ECHO_TOKIO", "echo_tokio")?,
        client: find("RINGLOOP_BENCH_ECHO_CLIENT", "echo_client")?,
    })
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit (children inherit it); return the result.
fn raise_fd_limit() -> u64 {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(_) => soft,
        },
        Ok((soft, _)) => soft,
        Err(_) => 0,
    }
}

/// The first two CPUs this process may run on: servers on the first, client on the second.
fn pick_cpus() -> Pinning {
    let allowed: Vec<usize> = sched_getaffinity(Pid::from_raw(0))
        .map(|set| {
            (0..CpuSet::count())
                .filter(|&i| set.is_set(i).unwrap_or(false))
                .collect()
        })
        .unwrap_or_default();
    match allowed[..] {
        [server, client, ..] => Pinning {
            server: Some(server),
            client: Some(client),
        },
        _ => Pinning {
            server: None,
            client: None,
        },
    }
}

/// A command whose child dies with the bench and, with `cpu`, runs pinned to that CPU
/// (without, on every CPU the bench was allowed at start).
fn command(path: &Path, cpu: Option<usize>) -> Command {
    let mut cmd = Command::new(path);
    cmd.stdin(Stdio::null());
    let set = cpu.map(cpu_set).or_else(|| ALLOWED_CPUS.get().copied());
    let hook = move || -> io::Result<()> {
        // SAFETY: prctl(PR_SET_PDEATHSIG) takes two integers and touches no memory of ours.
        let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        if let Some(set) = &set {
            sched_setaffinity(Pid::from_raw(0), set)?;
        }
        Ok(())
    };
    // SAFETY: the hook runs in the forked child before exec. It only makes two system calls
    // (prctl, sched_setaffinity), both async-signal-safe, allocates nothing and takes no lock,
    // and the CpuSet it reads was copied into the closure before the fork.
    unsafe {
        cmd.pre_exec(hook);
    }
    cmd
}

/// A child process that is killed and reaped when dropped, unless it already exited.
struct ChildGuard {
    child: Child,
}

impl ChildGuard {
    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Wait for the child until `deadline`; `None` if it is still running then.
    fn wait_until(&mut self, deadline: Instant) -> io::Result<Option<ExitStatus>> {
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(self.pid(), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// A running echo server.
struct Server {
    name: &'static str,
    guard: ChildGuard,
    addr: SocketAddr,
    /// Lines the server prints on stdout after `listening on`.
    lines: Receiver<String>,
}

impl Server {
    /// Start `path --addr 127.0.0.1:PORT` and wait for its `listening on ADDR` line.
    fn start(
        name: &'static str,
        path: &Path,
        cpu: Option<usize>,
        extra: &[&str],
    ) -> Result<Server, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free loopback port: {e}"))?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = command(path, cpu)
            .arg("--addr")
            .arg(addr.to_string())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", path.display()))?;
        let mut guard = ChildGuard { child };
        let stdout = guard.child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        // Trust the printed address when it parses and names a real port.
                        let printed = rest
                            .split_whitespace()
                            .next()
                            .and_then(|a| a.parse::<SocketAddr>().ok())
                            .filter(|a| a.port() != 0);
                        return Ok(Server {
                            name,
                            guard,
                            addr: printed.unwrap_or(addr),
                            lines,
                        });
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "the {name} server ({}) did not print `listening on ADDR` within {:?}",
                        path.display(),
                        START_TIMEOUT
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = guard.wait_until(Instant::now() + STOP_TIMEOUT);
                    return Err(format!(
                        "the {name} server ({}) exited before listening: {status:?}",
                        path.display()
                    ));
                }
            }
        }
    }

    fn alive(&self) -> bool {
        std::fs::metadata(format!("/proc/{}", self.guard.pid())).is_ok()
            && !proc_state_is_zombie(self.guard.pid())
    }

    /// SIGTERM, wait (then SIGKILL); return the exit status and what it printed on the way.
    fn stop(mut self) -> Result<(ExitStatus, Vec<String>), String> {
        kill(self.guard.pid(), Signal::SIGTERM)
            .map_err(|e| format!("cannot signal the {} server: {e}", self.name))?;
        let status = self
            .guard
            .wait_until(Instant::now() + STOP_TIMEOUT)
            .map_err(|e| format!("waiting for the {} server: {e}", self.name))?;
        let Some(status) = status else {
            return Err(format!(
                "the {} server ignored SIGTERM for {:?} and was killed",
                self.name, STOP_TIMEOUT
            ));
        };
        let mut lines = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            lines.push(line);
        }
        Ok((status, lines))
    }
}

fn proc_state_is_zombie(pid: Pid) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// (utime, stime) of a process, in clock ticks: fields 14 and 15 of `/proc/PID/stat`.
fn cpu_ticks(pid: Pid) -> Result<(u64, u64), String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("cannot read /proc/{pid}/stat: {e}"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| -> Result<u64, String> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("/proc/{pid}/stat has no field {n}"))
    };
    Ok((field(14)?, field(15)?))
}

/// Idle clock ticks (idle + iowait) of all CPUs together since boot, from the `cpu` line of
/// `/proc/stat`, and the number of CPUs. Idle time is measured exactly on tickless kernels,
/// while the busy columns are sampled at ticks, so busy time is taken as elapsed − idle.
fn machine_idle_ticks() -> Result<(u64, usize), String> {
    let stat = std::fs::read_to_string("/proc/stat")
        .map_err(|e| format!("cannot read /proc/stat: {e}"))?;
    let fields: Vec<u64> = stat
        .lines()
        .find_map(|l| l.strip_prefix("cpu "))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let cpus = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    // user nice system idle iowait ...
    if fields.len() < 5 || cpus == 0 {
        return Err("/proc/stat has no `cpu` lines".into());
    }
    Ok((fields[3] + fields[4], cpus))
}

/// VmRSS of a process in KiB, from `/proc/PID/status`.
fn vm_rss_kib(pid: Pid) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("cannot read /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// Run the client against `server` for one cell, sampling the server's CPU ticks around it.
fn measure(server: &Server, setup: &ClientSetup, conns: u64, size: u64) -> Result<Sample, String> {
    let ClientSetup {
        path: ref client,
        cpu,
        secs,
        warmup,
        clk_tck,
    } = *setup;
    let before = cpu_ticks(server.guard.pid())?;
    let idle_before = machine_idle_ticks()?;
    let started = Instant::now();
    let child = command(client, cpu)
        .arg("--addr")
        .arg(server.addr.to_string())
        .args(["--conns", &conns.to_string(), "--size", &size.to_string()])
        .args([
            "--duration",
            &format!("{secs}s"),
            "--warmup",
            &format!("{warmup}s"),
        ])
        .args(["--timeout", "10s", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", client.display()))?;
    let mut guard = ChildGuard { child };
    let stdout = read_all(guard.child.stdout.take().expect("stdout is piped"));
    let stderr = read_all(guard.child.stderr.take().expect("stderr is piped"));
    // Connect (10 s at most) + warm-up + window + the client's 10 s grace, and a margin.
    let limit = Duration::from_secs_f64(warmup + secs + 30.0);
    let status = guard
        .wait_until(started + limit)
        .map_err(|e| format!("waiting for the client: {e}"))?;
    let after = cpu_ticks(server.guard.pid())?;
    let idle_after = machine_idle_ticks()?;
    let wall = started.elapsed();
    let Some(status) = status else {
        return Err(format!("the client did not finish within {limit:?}"));
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let Some(json) = stdout.lines().find(|l| l.starts_with('{')) else {
        return Err(format!(
            "the client printed no result ({status}): {}",
            stderr.trim()
        ));
    };
    let num = |key: &str| json_number(json, key).ok_or_else(|| format!("no `{key}` in {json}"));
    let errors = num("errors")? as u64;
    if errors > 0 {
        eprintln!("client: {}", stderr.trim());
    }
    Ok(Sample {
        rps: num("rps")?,
        p50_us: num("p50_us")?,
        p99_us: num("p99_us")?,
        p999_us: num("p999_us")?,
        total_requests: num("total_requests")? as u64,
        errors,
        client_cpu_pct: num("client_cpu_pct")?,
        user_ticks: after.0.saturating_sub(before.0),
        sys_ticks: after.1.saturating_sub(before.1),
        run: Duration::from_secs_f64(num("run_ms")?.max(0.0) / 1e3),
        machine_ticks: {
            let elapsed = wall.as_secs_f64() * idle_after.1 as f64 * clk_tck;
            (elapsed - idle_after.0.saturating_sub(idle_before.0) as f64).max(0.0) as u64
        },
    })
}

/// Read a pipe to the end on a thread, so the child never blocks on a full pipe.
fn read_all(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut out = String::new();
        let _ = pipe.read_to_string(&mut out);
        out
    })
}

/// The number after `"key":` in a flat JSON object.
fn json_number(json: &str, key: &str) -> Option<f64> {
    let start = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &json[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

/// Hold `IDLE_CONNS` idle connections to a fresh server; VmRSS (KiB) before and with them.
fn idle_memory(name: &'static str, path: &Path, cpu: Option<usize>) -> Result<(u64, u64), String> {
    // ringloop's server drains open connections on SIGTERM: keep that well inside STOP_TIMEOUT.
    let extra: &[&str] = if name == "ringloop" {
        &["--grace", "2"]
    } else {
        &[]
    };
    let server = Server::start(name, path, cpu, extra)?;
    let pid = server.guard.pid();
    let deadline = Instant::now() + Duration::from_secs(120);
    let open = |i: usize| -> Result<TcpStream, String> {
        if Instant::now() > deadline {
            return Err(format!("{i} connections opened in 120 s; giving up"));
        }
        let mut s = TcpStream::connect_timeout(&server.addr, Duration::from_secs(5))
            .map_err(|e| format!("connection {i}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .and_then(|()| s.set_nodelay(true))
            .and_then(|()| s.write_all(&[i as u8]))
            .map_err(|e| format!("connection {i}: {e}"))?;
        let mut byte = [0u8; 1];
        s.read_exact(&mut byte)
            .map_err(|e| format!("connection {i}: no echo: {e}"))?;
        if byte[0] != i as u8 {
            return Err(format!("connection {i}: wrong byte echoed"));
        }
        Ok(s)
    };
    // Warm up first, so that one-time costs are not counted per connection: 10 connections
    // each make 1,000 one-byte round trips, enough to cycle through a shared receive pool of
    // a few thousand buffers, whose pages are then resident before the count.
    for i in 0..10 {
        let mut s = open(i)?;
        let mut byte = [0u8; 1];
        for k in 0..1_000u32 {
            s.write_all(&[k as u8])
                .and_then(|()| s.read_exact(&mut byte))
                .map_err(|e| format!("warm-up connection {i}: {e}"))?;
        }
    }
    thread::sleep(Duration::from_millis(200));
    let before = vm_rss_kib(pid)?;
    let mut held = Vec::with_capacity(IDLE_CONNS);
    for i in 0..IDLE_CONNS {
        held.push(open(i)?);
    }
    thread::sleep(Duration::from_millis(500));
    let after = vm_rss_kib(pid)?;
    drop(held);
    let _ = server.stop();
    Ok((before, after))
}

fn per_req_us(ticks: u64, requests: u64, clk_tck: f64) -> f64 {
    if requests == 0 {
        return f64::NAN;
    }
    ticks as f64 * 1e6 / clk_tck / requests as f64
}

/// `a / b` with two decimals, or `n/a` when it means nothing.
fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "n/a".into()
    }
}

fn header(
    out: &mut String,
    bins: &Binaries,
    pinning: Pinning,
    quick: bool,
    cell_secs: f64,
    warmup_secs: f64,
    clk_tck: f64,
) {
    let _ = writeln!(
        out,
        "## echo: ringloop vs tokio{}\n",
        if quick { " (quick mode)" } else { "" }
    );
    let _ = writeln!(out, "- date: {}", utc_now());
    let _ = writeln!(
        out,
        "- load average at start (1, 5, 15 min): {} (a quiet machine is near 0)",
        load_average()
    );
    let _ = writeln!(out, "- machine: {}", machine());
    let _ = writeln!(
        out,
        "- command: `cargo build --release --examples && cargo bench --bench echo{}`",
        if quick { " -- --quick" } else { "" }
    );
    match (pinning.server, pinning.client) {
        (Some(s), Some(c)) => {
            let _ = writeln!(
                out,
                "- pinning: both servers on CPU {s}, the client on CPU {c}"
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "- pinning: none (only one CPU available): servers and client share it"
            );
        }
    }
    let _ = writeln!(
        out,
        "- each cell: {cell_secs} s measured after {warmup_secs} s warm-up, ringloop then \
         tokio; CPU from /proc/PID/stat at {clk_tck} ticks/s"
    );
    for (name, path) in [
        ("ringloop", &bins.ringloop),
        ("tokio", &bins.tokio),
        ("client", &bins.client),
    ] {
        let age = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .map_or(String::new(), |a| {
                format!(" (built {} min ago)", a.as_secs() / 60)
            });
        let _ = writeln!(out, "- {name}: `{}`{age}", path.display());
    }
    out.push('\n');
}

fn results_tables(out: &mut String, layout: &Layout, cells: &[Cell], clk_tck: f64) {
    let cell_text = |r: &Result<Sample, String>, f: &dyn Fn(&Sample) -> String| match r {
        Ok(s) => f(s),
        Err(_) => "failed".into(),
    };
    let _ = write!(out, "\n### {}\n\n", layout.title);
    out.push_str(
        "| conns | size (B) | req/s ringloop | req/s tokio | req/s ratio \
         | user µs/req ringloop | user µs/req tokio | user ratio \
         | sys µs/req ringloop | sys µs/req tokio | total CPU ratio \
         | p99 µs ringloop | p99 µs tokio | p99 ratio |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let user = |s: &Sample| per_req_us(s.user_ticks, s.total_requests, clk_tck);
    let sys = |s: &Sample| per_req_us(s.sys_ticks, s.total_requests, clk_tck);
    let total = |s: &Sample| user(s) + sys(s);
    for cell in cells {
        let [r, t] = &cell.results;
        let both = |f: &dyn Fn(&Sample, &Sample) -> String| match (r, t) {
            (Ok(r), Ok(t)) => f(r, t),
            _ => "n/a".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell.conns,
            cell.size,
            cell_text(r, &|s| format!("{:.0}", s.rps)),
            cell_text(t, &|s| format!("{:.0}", s.rps)),
            both(&|r, t| ratio(r.rps, t.rps)),
            cell_text(r, &|s| format!("{:.2}", user(s))),
            cell_text(t, &|s| format!("{:.2}", user(s))),
            both(&|r, t| {
                let few = r.user_ticks.min(t.user_ticks) < FEW_TICKS;
                format!("{}{}", ratio(user(r), user(t)), if few { " †" } else { "" })
            }),
            cell_text(r, &|s| format!("{:.2}", sys(s))),
            cell_text(t, &|s| format!("{:.2}", sys(s))),
            both(&|r, t| ratio(total(r), total(t))),
            cell_text(r, &|s| format!("{:.0}", s.p99_us)),
            cell_text(t, &|s| format!("{:.0}", s.p99_us)),
            both(&|r, t| ratio(r.p99_us, t.p99_us)),
        );
    }

    let _ = writeln!(
        out,
        "\n† fewer than {FEW_TICKS} user ticks on one side: that user ratio is mostly the \
         kernel's tick sampling; the full mode (5 s cells) gives more ticks."
    );
    out.push_str(
        "\n### Details\n\n\
         | conns | size (B) | server | requests (all) | errors | user ticks | sys ticks \
         | server CPU | client CPU | other CPU | p50 µs | p99.9 µs |\n\
         | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let mut failures = Vec::new();
    for cell in cells {
        for (i, r) in cell.results.iter().enumerate() {
            match r {
                Ok(s) => {
                    let run = s.run.as_secs_f64().max(1e-9);
                    let server_ticks = (s.user_ticks + s.sys_ticks) as f64;
                    let busy = 100.0 * server_ticks / clk_tck / run;
                    let client_ticks = s.client_cpu_pct / 100.0 * run * clk_tck;
                    let other = 100.0 * (s.machine_ticks as f64 - server_ticks - client_ticks)
                        / clk_tck
                        / run;
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {} | {} | {} | {} | {busy:.0}% | {:.0}% | {other:.0}% | {:.0} | {:.0} |",
                        cell.conns,
                        cell.size,
                        SERVERS[i],
                        s.total_requests,
                        s.errors,
                        s.user_ticks,
                        s.sys_ticks,
                        s.client_cpu_pct,
                        s.p50_us,
                        s.p999_us
                    );
                }
                Err(e) => failures.push(format!(
                    "- conns {} size {} {}: {e}",
                    cell.conns, cell.size, SERVERS[i]
                )),
            }
        }
    }
    if !failures.is_empty() {
        out.push_str("\nFailed measurements:\n\n");
        for f in failures {
            let _ = writeln!(out, "{f}");
        }
    }

    if !layout.issue3_targets {
        out.push_str(
            "\nServer CPU is the whole process (every thread), in % of one CPU: up to 200% \
             for two threads. Unpinned, the client competes with the servers' threads for \
             the same two CPUs, so requests/s mostly shows how the three share them; CPU \
             per request is the fairer comparison.\n",
        );
        return;
    }
    // The targets of issue 3, checked on the cells that have both samples.
    let pairs: Vec<(&Cell, &Sample, &Sample)> = cells
        .iter()
        .filter_map(|c| match &c.results {
            [Ok(r), Ok(t)] => Some((c, r, t)),
            _ => None,
        })
        .collect();
    let check = |what: &str,
                 pairs: &[&(&Cell, &Sample, &Sample)],
                 ok: &dyn Fn(f64) -> bool,
                 v: &dyn Fn(&Sample, &Sample) -> f64| {
        let met = pairs.iter().filter(|(_, r, t)| ok(v(r, t))).count();
        let worst = pairs
            .iter()
            .map(|(c, r, t)| (v(r, t), c.conns, c.size))
            .filter(|(x, _, _)| !ok(*x))
            .map(|(x, c, s)| {
                format!(
                    "{x:.2} at {c} conn{} × {s} B",
                    if c == 1 { "" } else { "s" }
                )
            })
            .collect::<Vec<_>>();
        let missed = if worst.is_empty() {
            String::new()
        } else {
            format!("; missed: {}", worst.join(", "))
        };
        format!("- {what}: met in {met} of {} cells{missed}\n", pairs.len())
    };
    let all: Vec<&(&Cell, &Sample, &Sample)> = pairs.iter().collect();
    let single: Vec<&(&Cell, &Sample, &Sample)> =
        pairs.iter().filter(|(c, _, _)| c.conns == 1).collect();
    out.push_str("\n### Targets (issue 3)\n\n");
    out.push_str(&check(
        "requests/s at least tokio's (ratio ≥ 1.00)",
        &all,
        &|x| x >= 1.0,
        &|r, t| r.rps / t.rps,
    ));
    out.push_str(&check(
        "user CPU per request at most 0.5× tokio's",
        &all,
        &|x| x <= 0.5,
        &|r, t| user(r) / user(t),
    ));
    out.push_str(&check(
        "total CPU per request no worse than tokio's (ratio ≤ 1.00)",
        &all,
        &|x| x <= 1.0,
        &|r, t| total(r) / total(t),
    ));
    out.push_str(&check(
        "1-connection p99 no worse than tokio's (ratio ≤ 1.00)",
        &single,
        &|x| x <= 1.0,
        &|r, t| r.p99_us / t.p99_us,
    ));
    out.push_str(
        "\nServer, client and other CPU are in % of one CPU over the client's run. Other CPU is \
         the machine's busy time less the server's and the client's: softirq work the kernel \
         ran outside both (ksoftirqd), and any other process; a few % is normal, much more \
         means the machine was not quiet. A client near 100% set the pace, not the server: \
         compare CPU per request there. The kernel splits user and system time at tick \
         granularity: trust user ratios only from cells with tens of ticks or more.\n",
    );
}
