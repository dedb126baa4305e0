//! Thread-per-core shards: one runtime per CPU (pinned when there are enough CPUs), work pushed
//! to one shard through a bounded `shard::channel`, work pulled from the others with
//! `shard::spawn_on`, and a `shard::Shutdown` that stops every shard.
//!
//! ```text
//! cargo run --release --example shards
//! ```
//!
//! Shard 0 collects. Every other shard sums its block of 1..=1,000,000 and sends partial sums
//! to shard 0 (waiting whenever the channel is full: a send wakes shard 0's ring, a receive
//! wakes the waiting senders'), then keeps serving until shutdown. Meanwhile shard 0 runs a
//! job on each of them with `spawn_on` that sums the same block again, there; both must agree.

use std::ops::RangeInclusive;
use std::sync::Mutex;
use std::time::Instant;

use ringloop::shard::{self, Shard, Shutdown, TrySendError};

/// The numbers summed, how many go into one message, and the channel's capacity.
const TOTAL: u64 = 1_000_000;
const CHUNK: usize = 1_000;
const CAPACITY: usize = 8;

/// A partial sum on its way to shard 0: (from shard, sum).
type Partial = (usize, u64);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = cpus.max(2);
    let pin = cpus >= n; // pinning needs a CPU per shard
    let started = Instant::now();

    // The closure below runs once per shard, on that shard's thread: shard 0 takes the
    // receiver, every other shard one sender. None is kept here, so shard 0's receive loop
    // ends when the last worker drops its sender.
    let (tx, rx) = shard::channel::<Partial>(CAPACITY);
    let rx = Mutex::new(Some(rx));
    let senders = Mutex::new(vec![tx; n - 1]);
    let shutdown = Shutdown::new();
    let stop = shutdown.clone();
    let results = shard::Builder::new()
        .shards(n)
        .pin_cores(pin)
        .build()?
        .run(move |shard| {
            let rx = (shard.id() == 0).then(|| rx.lock().ok()?.take()).flatten();
            let tx = (shard.id() != 0)
                .then(|| senders.lock().ok()?.pop())
                .flatten();
            let stop = stop.clone();
            async move {
                match (rx, tx) {
                    (Some(rx), _) => {
                        let total = collect(rx, shard.count()).await;
                        stop.trigger(); // every shard's `wait` completes, on its own thread
                        total
                    }
                    (None, Some(tx)) => work(shard, tx, stop).await,
                    (None, None) => Err(format!("shard {}: no channel end", shard.id())),
                }
            }
        });

    let mut outputs = Vec::new();
    for (id, result) in results.into_iter().enumerate() {
        match result {
            Ok(Ok(sum)) => outputs.push(sum),
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(format!("shard {id} panicked").into()),
        }
    }
    let expected = TOTAL * (TOTAL + 1) / 2;
    let sent: u64 = outputs.iter().skip(1).sum();
    if outputs.first() != Some(&expected) || sent != expected || !shutdown.is_triggered() {
        return Err(format!("sums differ: got {outputs:?}, expected {expected}").into());
    }
    let how = if pin { "pinned" } else { "unpinned" };
    println!("{n} shards ({how}): sent {sent}, collected {expected}, as expected");
    println!("ok: shards (in {:?})", started.elapsed());
    Ok(())
}

/// Worker shard `id`'s share of 1..=TOTAL (shard 0 has none).
fn block(id: usize, shards: usize) -> RangeInclusive<u64> {
    let (w, workers) = (id as u64 - 1, shards as u64 - 1);
    (w * TOTAL / workers + 1)..=((w + 1) * TOTAL / workers)
}

/// Shard 0: pulls a sum from every worker with `spawn_on`, then receives their partial sums
/// until every sender is gone; returns the total once both agree.
async fn collect(mut rx: shard::Receiver<Partial>, n: usize) -> Result<u64, String> {
    let t = Instant::now();
    let jobs: Vec<_> = (1..n)
        .map(|id| {
            shard::spawn_on(id, async move {
                let on = std::thread::current().name().map(String::from);
                println!("shard {id}: running a job for shard 0 on thread {on:?}");
                block(id, n).sum::<u64>()
            })
        })
        .collect();
    let mut pulled = vec![0; n];
    for (id, job) in (1..n).zip(jobs) {
        pulled[id] = job.await.map_err(|e| format!("job on shard {id}: {e}"))?;
    }
    let (mut pushed, mut messages) = (vec![0; n], 0);
    while let Some((from, sum)) = rx.recv().await {
        pushed[from] += sum;
        messages += 1;
    }
    if pushed != pulled {
        return Err(format!("pushed {pushed:?} but pulled {pulled:?}"));
    }
    let total = pushed.iter().sum();
    let elapsed = t.elapsed();
    println!(
        "shard 0: ran {} jobs, received {messages} partial sums, total {total}, in {elapsed:?}",
        n - 1
    );
    Ok(total)
}

/// A worker shard: sends the partial sums of its block, then serves until shutdown; returns
/// what it sent.
async fn work(shard: Shard, tx: shard::Sender<Partial>, stop: Shutdown) -> Result<u64, String> {
    let (t, id) = (Instant::now(), shard.id());
    let range = block(id, shard.count());
    let hung_up = || format!("shard {id}: shard 0 hung up");
    let (mut sent, mut messages, mut waits) = (0, 0, 0);
    for lo in range.clone().step_by(CHUNK) {
        let sum = (lo..=(lo + CHUNK as u64 - 1).min(*range.end())).sum();
        match tx.try_send((id, sum)) {
            Ok(()) => {}
            Err(TrySendError::Full(partial)) => {
                waits += 1; // backpressure: shard 0 is behind, wait for room
                tx.send(partial).await.map_err(|_| hung_up())?;
            }
            Err(TrySendError::Closed(_)) => return Err(hung_up()),
        }
        sent += sum;
        messages += 1;
    }
    drop(tx);
    stop.wait().await; // keep serving (shard 0's job) until shard 0 has everything
    let elapsed = t.elapsed();
    println!(
        "shard {id}: sent {range:?} in {messages} sums ({waits} waits for room), stopped after {elapsed:?}"
    );
    Ok(sent)
}
