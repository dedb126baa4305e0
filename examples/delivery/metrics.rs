//! Counters shared by every shard, rendered as Prometheus text for `GET /metrics`.
//!
//! Atomics rather than per-shard copies: a scrape on any shard must see the whole process,
//! and a relaxed increment is cheap next to the work each one counts.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::model::Status;

/// Histogram bucket bounds, seconds.
const BOUNDS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A Prometheus histogram of durations.
#[derive(Default)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; BOUNDS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    pub(crate) fn record(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BOUNDS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(d.as_micros() as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, bucket) in BOUNDS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_us.load(Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// Everything `/metrics` reports.
#[derive(Default)]
pub(crate) struct Metrics {
    /// Orders currently in each status.
    pub(crate) in_state: [AtomicI64; 7],
    /// Transitions into each status since start.
    pub(crate) transitions: [AtomicU64; 7],
    /// Time spent reaching each status from the previous one.
    pub(crate) stage_latency: [Histogram; 7],
    /// Placed → delivered.
    pub(crate) order_latency: Histogram,
    pub(crate) http_requests: AtomicU64,
    pub(crate) http_responses_4xx: AtomicU64,
    pub(crate) http_responses_5xx: AtomicU64,
    pub(crate) connections_open: AtomicI64,
    pub(crate) connections_refused: AtomicU64,
    pub(crate) header_timeouts: AtomicU64,
    pub(crate) courier_skips: AtomicU64,
    pub(crate) logistics_retries: AtomicU64,
    pub(crate) store_commits: AtomicU64,
    pub(crate) store_writes: AtomicU64,
    pub(crate) store_commit_latency: Histogram,
    pub(crate) events_lagged: AtomicU64,
    /// Per shard: how late its last 100 ms timer fired, µs. A busy or starved shard shows
    /// here first.
    pub(crate) shard_timer_lag_us: Vec<AtomicU64>,
    /// Per shard: its runtime's counters (`RuntimeStats`), refreshed by the same probe.
    pub(crate) shard_runtime: Vec<[AtomicU64; RUNTIME_COUNTERS.len()]>,
}

/// The `RuntimeStats` fields exported per shard: name, help, and Prometheus type.
const RUNTIME_COUNTERS: [(&str, &str, &str); 9] = [
    ("ringloop_tasks_spawned_total", "Tasks spawned.", "counter"),
    ("ringloop_tasks_alive", "Live tasks.", "gauge"),
    ("ringloop_polls_total", "Task polls.", "counter"),
    ("ringloop_ready_queue_depth", "Tasks ready to run.", "gauge"),
    (
        "ringloop_ring_enters_total",
        "io_uring_enter calls.",
        "counter",
    ),
    (
        "ringloop_sqes_submitted_total",
        "Submission entries handed to the kernel.",
        "counter",
    ),
    (
        "ringloop_cqes_reaped_total",
        "Completions reaped.",
        "counter",
    ),
    (
        "ringloop_ops_in_flight",
        "Operations the kernel owns.",
        "gauge",
    ),
    ("ringloop_timers_fired_total", "Timers fired.", "counter"),
];

fn runtime_counters(stats: &ringloop::RuntimeStats) -> [u64; RUNTIME_COUNTERS.len()] {
    [
        stats.tasks_spawned,
        stats.tasks_alive,
        stats.polls,
        stats.ready_queue_depth,
        stats.ring_enters,
        stats.sqes_submitted,
        stats.cqes_reaped,
        stats.ops_in_flight,
        stats.timers_fired,
    ]
}

impl Metrics {
    pub(crate) fn new(shards: usize) -> Metrics {
        Metrics {
            shard_timer_lag_us: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            shard_runtime: (0..shards)
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
            ..Metrics::default()
        }
    }

    pub(crate) fn record_commit(&self, writes: usize, took: Duration) {
        self.store_commits.fetch_add(1, Relaxed);
        self.store_writes.fetch_add(writes as u64, Relaxed);
        self.store_commit_latency.record(took);
    }

    /// An order moved from `from` (if it was counted somewhere) to `to`, `stage` after it
    /// entered `from`.
    pub(crate) fn record_transition(&self, from: Option<Status>, to: Status, stage: Duration) {
        if let Some(from) = from {
            self.in_state[from.index()].fetch_sub(1, Relaxed);
            self.stage_latency[to.index()].record(stage);
        }
        self.in_state[to.index()].fetch_add(1, Relaxed);
        self.transitions[to.index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn render(&self, shards: usize) -> String {
        let mut out = String::with_capacity(8192);
        let gauge = |out: &mut String, name: &str, help: &str, kind: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        gauge(
            &mut out,
            "delivery_orders",
            "Orders by current status.",
            "gauge",
        );
        for s in Status::ALL {
            let n = self.in_state[s.index()].load(Relaxed);
            let _ = writeln!(out, "delivery_orders{{status=\"{}\"}} {n}", s.as_str());
        }
        gauge(
            &mut out,
            "delivery_transitions_total",
            "Stored transitions since start.",
            "counter",
        );
        for s in Status::ALL {
            let n = self.transitions[s.index()].load(Relaxed);
            let _ = writeln!(
                out,
                "delivery_transitions_total{{status=\"{}\"}} {n}",
                s.as_str()
            );
        }
        gauge(
            &mut out,
            "delivery_stage_seconds",
            "Time from the previous status to this one.",
            "histogram",
        );
        for s in &Status::ALL[1..] {
            let labels = format!("status=\"{}\"", s.as_str());
            self.stage_latency[s.index()].render(&mut out, "delivery_stage_seconds", &labels);
        }
        gauge(
            &mut out,
            "delivery_order_seconds",
            "Placed to delivered.",
            "histogram",
        );
        self.order_latency
            .render(&mut out, "delivery_order_seconds", "");
        let counters: [(&str, &str, &str, i64); 11] = [
            (
                "delivery_http_requests_total",
                "HTTP requests parsed.",
                "counter",
                self.http_requests.load(Relaxed) as i64,
            ),
            (
                "delivery_http_responses_4xx_total",
                "Requests answered 4xx.",
                "counter",
                self.http_responses_4xx.load(Relaxed) as i64,
            ),
            (
                "delivery_http_responses_5xx_total",
                "Requests answered 5xx.",
                "counter",
                self.http_responses_5xx.load(Relaxed) as i64,
            ),
            (
                "delivery_connections_open",
                "HTTP connections open.",
                "gauge",
                self.connections_open.load(Relaxed),
            ),
            (
                "delivery_connections_refused_total",
                "Connections answered 503 (over the limit).",
                "counter",
                self.connections_refused.load(Relaxed) as i64,
            ),
            (
                "delivery_header_timeouts_total",
                "Connections closed because a request head did not finish in time.",
                "counter",
                self.header_timeouts.load(Relaxed) as i64,
            ),
            (
                "delivery_courier_skips_total",
                "Couriers skipped for not answering in time.",
                "counter",
                self.courier_skips.load(Relaxed) as i64,
            ),
            (
                "delivery_logistics_retries_total",
                "Logistics calls retried.",
                "counter",
                self.logistics_retries.load(Relaxed) as i64,
            ),
            (
                "delivery_store_commits_total",
                "SQLite transactions committed (one fsync each).",
                "counter",
                self.store_commits.load(Relaxed) as i64,
            ),
            (
                "delivery_store_writes_total",
                "Writes in those transactions.",
                "counter",
                self.store_writes.load(Relaxed) as i64,
            ),
            (
                "delivery_events_lagged_total",
                "Events an /events client missed by falling behind.",
                "counter",
                self.events_lagged.load(Relaxed) as i64,
            ),
        ];
        for (name, help, kind, value) in counters.into_iter().chain(process_rows(shards)) {
            gauge(&mut out, name, help, kind);
            let _ = writeln!(out, "{name} {value}");
        }
        gauge(
            &mut out,
            "delivery_store_commit_seconds",
            "Time per group commit.",
            "histogram",
        );
        self.store_commit_latency
            .render(&mut out, "delivery_store_commit_seconds", "");
        gauge(
            &mut out,
            "ringloop_shard_timer_lag_seconds",
            "How late each shard's last 100 ms probe timer fired.",
            "gauge",
        );
        for (shard, lag) in self.shard_timer_lag_us.iter().enumerate() {
            let lag = lag.load(Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "ringloop_shard_timer_lag_seconds{{shard=\"{shard}\"}} {lag}"
            );
        }
        for (i, (name, help, kind)) in RUNTIME_COUNTERS.iter().enumerate() {
            gauge(
                &mut out,
                name,
                &format!("{help} Per shard, refreshed every 100 ms."),
                kind,
            );
            for (shard, counters) in self.shard_runtime.iter().enumerate() {
                let value = counters[i].load(Relaxed);
                let _ = writeln!(out, "{name}{{shard=\"{shard}\"}} {value}");
            }
        }
        out
    }
}

/// What the process can tell about itself: shards, threads, memory, open descriptors (gauges,
/// in the shape of `render`'s counter table).
fn process_rows(shards: usize) -> [(&'static str, &'static str, &'static str, i64); 4] {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    [
        (
            "ringloop_shards",
            "Shards (threads with their own ring).",
            "gauge",
            shards as i64,
        ),
        (
            "process_threads",
            "Threads in the process.",
            "gauge",
            field("Threads:"),
        ),
        (
            "process_resident_memory_bytes",
            "Resident memory.",
            "gauge",
            field("VmRSS:") * 1024,
        ),
        (
            "process_open_fds",
            "Open file descriptors.",
            "gauge",
            fds as i64,
        ),
    ]
}

/// Runs on each shard: measures how late a 100 ms timer fires there, again and again, and
/// copies the shard's runtime counters for `/metrics` (which is served by any one shard).
pub(crate) async fn probe_timer_lag(metrics: std::sync::Arc<Metrics>, shard: usize) {
    const PERIOD: Duration = Duration::from_millis(100);
    loop {
        let start = std::time::Instant::now();
        ringloop::time::sleep(PERIOD).await;
        let lag = start.elapsed().saturating_sub(PERIOD).as_micros() as u64;
        if let Some(slot) = metrics.shard_timer_lag_us.get(shard) {
            slot.store(lag, Relaxed);
        }
        if let Some(slots) = metrics.shard_runtime.get(shard) {
            let values = runtime_counters(&ringloop::RuntimeStats::current());
            for (slot, value) in slots.iter().zip(values) {
                slot.store(value, Relaxed);
            }
        }
    }
}
