//! Timers on ringloop: sub-millisecond sleeps, an interval and what it does with missed ticks,
//! a timeout, and a retry loop with exponential backoff built from `select!`.
//!
//! ```text
//! cargo run --release --example timers
//! ```
//!
//! Each step prints what it did and how long it took; the whole run takes about 50 ms.

use std::time::{Duration, Instant};

use ringloop::sync::oneshot;
use ringloop::time::{interval, sleep, timeout, MissedTickBehavior};

/// The interval's period, and how long its one slow tick takes (missing three deadlines).
const PERIOD: Duration = Duration::from_millis(2);
const SLOW_TICK: Duration = Duration::from_millis(7);
/// How long one attempt of the retry loop may take, and how many attempts it makes.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(5);
const MAX_ATTEMPTS: u32 = 5;

fn main() -> std::io::Result<()> {
    let rt = ringloop::Runtime::new()?;
    let started = Instant::now();
    rt.block_on(async {
        // 1. Sleeps: the wheel ticks in microseconds, so short sleeps are not rounded to 1 ms.
        for asked in [100, 250, 1_000].map(Duration::from_micros) {
            let t = Instant::now();
            sleep(asked).await;
            println!("sleep({asked:?}) -> woke after {:?}", t.elapsed());
        }

        // 2. An interval whose second tick takes 7 ms, past three deadlines. Burst fires the
        //    missed ticks back to back (the 2 ms grid is kept), Delay restarts the grid at the
        //    late tick, Skip drops them and rejoins the original grid at its next point.
        for behavior in [
            MissedTickBehavior::Burst,
            MissedTickBehavior::Delay,
            MissedTickBehavior::Skip,
        ] {
            let fired = ticks_around_a_slow_one(behavior).await;
            println!("interval(2 ms), {behavior:?}: ticks at {fired} ms");
        }

        // 3. A timeout cuts off a slow future (dropping it), and lets a fast one finish.
        let t = Instant::now();
        let slow = timeout(Duration::from_millis(5), sleep(Duration::from_millis(50))).await;
        let said = slow.map_err(|e| e.to_string());
        println!(
            "timeout(5 ms) on a 50 ms sleep -> {said:?} after {:?}",
            t.elapsed()
        );
        let t = Instant::now();
        let fast = timeout(Duration::from_millis(5), async { 7 }).await;
        println!(
            "timeout(5 ms) on a ready future -> {fast:?} after {:?}",
            t.elapsed()
        );
        if slow.is_ok() || fast != Ok(7) {
            return Err(std::io::Error::other(
                "timeout did not cut off only the slow future",
            ));
        }

        // 4. Retry with exponential backoff: each attempt races its reply against a deadline.
        let t = Instant::now();
        let mut backoff = Duration::from_millis(1);
        for attempt in 1..=MAX_ATTEMPTS {
            let a = Instant::now();
            let outcome = ringloop::select! {
                reply = call_flaky_service(attempt) => reply.unwrap_or(Err("no reply")),
                _ = sleep(ATTEMPT_TIMEOUT) => Err("timed out"),
            };
            match outcome {
                Ok(answer) => {
                    println!(
                        "  attempt {attempt}: answer {answer} after {:?}",
                        a.elapsed()
                    );
                    println!("retry with backoff -> {answer} in {:?}", t.elapsed());
                    return Ok(());
                }
                Err(why) => {
                    println!(
                        "  attempt {attempt}: {why} after {:?}; retrying in {backoff:?}",
                        a.elapsed()
                    );
                    sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
        Err(std::io::Error::other("the service never answered"))
    })?;
    println!("ok: timers (in {:?})", started.elapsed());
    Ok(())
}

/// Runs an interval with `behavior` for six ticks, the second of which takes [`SLOW_TICK`],
/// and returns when each tick fired, in milliseconds from the first.
async fn ticks_around_a_slow_one(behavior: MissedTickBehavior) -> String {
    let mut ticks = interval(PERIOD);
    ticks.set_missed_tick_behavior(behavior);
    let start = Instant::now();
    let mut fired = Vec::new();
    for n in 0..6 {
        ticks.tick().await;
        fired.push(format!("{:.1}", start.elapsed().as_secs_f64() * 1e3));
        if n == 1 {
            // Handling this tick takes a while (say, a slow request): ticks 2 to 4 are missed.
            sleep(SLOW_TICK).await;
        }
    }
    fired.join(", ")
}

/// A remote call that fails in two ways before it works: attempt 1 answers too late, attempt
/// 2 answers at once with an error, attempt 3 succeeds. The reply comes on a oneshot channel.
fn call_flaky_service(attempt: u32) -> oneshot::Receiver<Result<u32, &'static str>> {
    let (tx, rx) = oneshot::channel();
    ringloop::spawn(async move {
        let (delay, reply) = match attempt {
            1 => (Duration::from_millis(20), Ok(0)),
            2 => (Duration::from_micros(200), Err("503 busy")),
            _ => (Duration::from_micros(500), Ok(42)),
        };
        sleep(delay).await;
        // The caller may have given up and dropped its receiver: then the reply is dropped.
        let _ = tx.send(reply);
    });
    rx
}
