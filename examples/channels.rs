//! Channels between tasks on one runtime: a pipeline of tasks linked by bounded `mpsc` queues
//! (a fast producer waits for room: backpressure), a `oneshot` reply to a request, a `watch`
//! channel as a shutdown signal, and an `EventBus` whose slow subscriber gets `Lagged(n)`.
//!
//! ```text
//! cargo run --release --example channels
//! ```
//!
//! The pipeline is produce → square → sum; it prints what each stage did, then a summary.

use std::error::Error;
use std::time::Instant;

use ringloop::event::{EventBus, RecvError, Subscriber};
use ringloop::sync::mpsc::{self, error::TrySendError};
use ringloop::sync::{oneshot, watch};

/// Numbers pushed through the pipeline, the capacity of each queue, and of the event bus.
const ITEMS: u64 = 100;
const QUEUE: usize = 4;
const BUS: usize = 16;

/// What the summing stage receives: a value to add, or a request for its total.
enum ToSum {
    Add(u64),
    Total(oneshot::Sender<u64>),
}

fn main() -> Result<(), Box<dyn Error>> {
    let rt = ringloop::Runtime::new()?;
    let started = Instant::now();
    rt.block_on(async {
        let bus = EventBus::new(BUS);
        let mut audit = bus.subscribe("squared"); // read only at the end: it will lag
        let (stop_tx, stop_rx) = watch::channel(false);
        let (raw_tx, raw_rx) = mpsc::channel(QUEUE);
        let (sum_tx, sum_rx) = mpsc::channel(QUEUE);

        let producer = ringloop::spawn(produce(raw_tx));
        let squarer = ringloop::spawn(square(raw_rx, sum_tx.clone(), bus.clone()));
        let summer = ringloop::spawn(sum(sum_rx, stop_rx.clone()));
        let watcher = ringloop::spawn(watch_events(bus.subscribe("squared"), stop_rx));

        let waits = producer.await?;
        println!(
            "produce: sent {ITEMS} numbers to a queue of {QUEUE}, waited for room {waits} times"
        );
        let squared = squarer.await?;
        println!("square:  squared {squared} numbers and published each on topic \"squared\"");

        // A request with a reply: the oneshot sender travels in the message.
        let (reply_tx, reply_rx) = oneshot::channel();
        sum_tx.send(ToSum::Total(reply_tx)).await?;
        let total = reply_rx.await?;
        println!("sum:     replied to the request for its total with {total}");

        // Shutdown: one send on the watch channel reaches every task holding a receiver.
        stop_tx.send(true)?;
        let (adds, seen) = (summer.await?, watcher.await?);
        println!(
            "shutdown: the summer stopped after {adds} values, the watcher after {seen} events"
        );

        // The audit subscriber never read while the pipeline ran: it lost all but the last BUS.
        let (mut lagged, mut held) = (0, 0);
        drop(bus); // every handle gone: the subscriber gets what is held, then Closed
        loop {
            match audit.recv().await {
                Ok(_) => held += 1,
                Err(RecvError::Lagged(n)) => lagged += n,
                Err(RecvError::Closed) => break,
            }
        }
        println!("audit:   read only now: Lagged({lagged}), then the {held} events still held");

        let expected: u64 = (1..=ITEMS).map(|n| n * n).sum();
        if total != expected || seen != ITEMS || lagged + held != ITEMS {
            return Err(format!("wrong: total {total} (expected {expected}), {seen} seen").into());
        }
        Ok::<_, Box<dyn Error>>(())
    })?;
    println!("ok: channels (in {:?})", started.elapsed());
    Ok(())
}

/// Sends 1..=ITEMS; returns how many times the queue was full and it had to wait.
async fn produce(tx: mpsc::Sender<u64>) -> u64 {
    let mut waits = 0;
    for n in 1..=ITEMS {
        match tx.try_send(n) {
            Ok(()) => {}
            Err(TrySendError::Full(n)) => {
                waits += 1; // backpressure: wait until the next stage makes room
                if tx.send(n).await.is_err() {
                    break;
                }
            }
            Err(TrySendError::Closed(_)) => break,
        }
    }
    waits
}

/// Squares each number, passes it on and publishes it on the bus; returns how many it did.
async fn square(mut rx: mpsc::Receiver<u64>, tx: mpsc::Sender<ToSum>, bus: EventBus<u64>) -> u64 {
    let mut count = 0;
    while let Some(n) = rx.recv().await {
        bus.publish("squared", n * n); // never waits, whoever listens
        if tx.send(ToSum::Add(n * n)).await.is_err() {
            break;
        }
        count += 1;
    }
    count
}

/// Adds up values and answers requests for the total until shutdown; returns how many it added.
async fn sum(mut rx: mpsc::Receiver<ToSum>, mut stop: watch::Receiver<bool>) -> u64 {
    let (mut total, mut adds) = (0, 0);
    loop {
        ringloop::select! {
            Some(msg) = rx.recv() => match msg {
                ToSum::Add(v) => {
                    total += v;
                    adds += 1;
                }
                ToSum::Total(reply) => {
                    let _ = reply.send(total); // the asker may have given up
                }
            },
            _ = stop.changed() => return adds,
        }
    }
}

/// Counts events as they are published until shutdown (biased: pending events first).
async fn watch_events(mut events: Subscriber<u64>, mut stop: watch::Receiver<bool>) -> u64 {
    let mut seen = 0;
    loop {
        ringloop::select! {
            biased;
            event = events.recv() => match event {
                Ok(_) => seen += 1,
                Err(RecvError::Lagged(n)) => println!("watcher: missed {n} events"),
                Err(RecvError::Closed) => return seen,
            },
            _ = stop.changed() => return seen,
        }
    }
}
