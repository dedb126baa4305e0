//! Scheduling fairness: two CPU-bound classes with shares 1:3 run side by side for a while;
//! prints the CPU split they got and how late a latency-sensitive task, woken by a timer every
//! 2 ms meanwhile, started running (wake-to-run).
//!
//! ```text
//! cargo bench --bench sched            # 2 s
//! cargo bench --bench sched -- --quick # 0.5 s
//! ```
//!
//! Targets (issue 5): split within 5% of 25/75; wake-to-run p99 under 1 ms.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ringloop::{Builder, Latency};

fn spin(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var_os("RINGLOOP_BENCH_QUICK").is_some();
    let run_for = if quick {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(2)
    };
    let mut builder = Builder::new();
    let light = builder.task_class("light", 1, Latency::Normal);
    let heavy = builder.task_class("heavy", 3, Latency::Normal);
    let urgent = builder.task_class("urgent", 10, Latency::Sensitive);
    let rt = builder.build().expect("runtime");
    let mut lateness = Histogram::<u64>::new(3).expect("histogram");
    rt.block_on(async {
        let stop = Rc::new(Cell::new(false));
        let mut hogs = Vec::new();
        for (class, poll) in [(&light, 50), (&light, 200), (&heavy, 50), (&heavy, 200)] {
            let stop = stop.clone();
            hogs.push(ringloop::spawn_in(class, async move {
                while !stop.get() {
                    spin(Duration::from_micros(poll));
                    ringloop::task::yield_now().await;
                }
            }));
        }
        let probe = ringloop::spawn_in(&urgent, async move {
            let started = Instant::now();
            let mut late = Vec::new();
            while started.elapsed() < run_for {
                let due = Instant::now() + Duration::from_millis(2);
                ringloop::time::sleep_until(due).await;
                late.push(due.elapsed());
            }
            late
        });
        for l in probe.await.expect("probe") {
            lateness.record(l.as_nanos() as u64).expect("record");
        }
        stop.set(true);
        for h in hogs {
            h.await.expect("hog");
        }
    });
    let stats = rt.stats();
    let cpu = |name: &str| stats.class(name).map_or(0.0, |c| c.cpu_time.as_secs_f64());
    let (l, h) = (cpu("light"), cpu("heavy"));
    let light_pct = 100.0 * l / (l + h);
    println!("## Scheduling fairness ({:?} run)\n", run_for);
    println!("| measure | figure | target |");
    println!("|---|---|---|");
    println!(
        "| CPU split light:heavy (shares 1:3) | {:.1}% : {:.1}% | 25:75 ± 5% |",
        light_pct,
        100.0 - light_pct
    );
    println!(
        "| latency-sensitive wake-to-run p50 / p99 / max | {:.0} µs / {:.0} µs / {:.0} µs | p99 < 1 ms |",
        lateness.value_at_quantile(0.5) as f64 / 1e3,
        lateness.value_at_quantile(0.99) as f64 / 1e3,
        lateness.max() as f64 / 1e3
    );
    println!("| wakes measured | {} | |", lateness.len());
}
