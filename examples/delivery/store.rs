//! Durable storage in SQLite (WAL, `synchronous=FULL`) with group commit.
//!
//! One writer thread owns the write connection. Tasks on any shard hand it a write and await
//! its acknowledgement; the thread takes every write that is waiting, runs them in one
//! transaction, commits (one fsync for the whole batch) and only then acknowledges each one.
//! While a commit is in progress new writes queue up and form the next batch, so the number
//! of fsyncs per second stays bounded however many orders arrive.
//!
//! Reads (`GET /orders/..`) run on the blocking pool with one read connection per pool thread;
//! WAL lets them proceed while the writer commits.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use ringloop::shard::{Receiver, Sender, TrySendError};
use rusqlite::{params, Connection, OptionalExtension};

use crate::metrics::Metrics;
use crate::model::{us_to_ms, Order, Status, Transition};

/// The catalogue a fresh database starts with: name, stock, price in cents.
const SEED_ITEMS: [(&str, i64, i64); 8] = [
    ("apples", 1_000_000, 120),
    ("bicycle", 1_000_000, 24_900),
    ("book", 1_000_000, 1_500),
    ("coffee", 1_000_000, 900),
    ("lamp", 1_000_000, 3_900),
    ("teapot", 1_000_000, 2_500),
    // Scarce on purpose: the page and the tests can run it out (409).
    ("telescope", 5, 89_900),
    ("umbrella", 1_000_000, 1_900),
];

/// Most writes in one transaction: bounds the time a commit holds its batch's waiters.
const MAX_BATCH: usize = 8192;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    name TEXT PRIMARY KEY,
    stock INTEGER NOT NULL,
    price_cents INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    item TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    address TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_by_status ON orders(status, id);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    at_us INTEGER NOT NULL,
    detail TEXT,
    -- An order enters each status at most once: a stage replayed after a crash cannot
    -- deliver it twice.
    UNIQUE (order_id, status)
);
";

/// One change to the database.
#[derive(Debug)]
pub(crate) enum Write {
    /// A new order the shop accepted: the order, its `placed` and `accepted` transitions and
    /// its stock reservation, in one transaction.
    NewOrder {
        order: Order,
        placed_us: i64,
        accepted_us: i64,
    },
    /// A later transition; `restock` gives reserved goods back (a failed order).
    Transition {
        id: u64,
        status: Status,
        at_us: i64,
        detail: Option<String>,
        restock: Option<(String, u32)>,
    },
}

/// `Ok(true)`: stored; `Ok(false)`: already stored before (a replayed transition).
type Ack = Result<bool, String>;

struct Job {
    write: Write,
    done: Sender<Ack>,
    /// The shard whose task waits for the acknowledgement.
    home: usize,
}

/// Acknowledgements for one shard from one commit, handed over in one cross-thread message
/// (one wake of that shard per commit instead of one per write).
pub(crate) type AckBatch = Vec<(Sender<Ack>, Ack)>;

/// The door to the writer thread; cheap to clone, usable from every shard.
#[derive(Clone)]
pub(crate) struct Store {
    jobs: mpsc::Sender<Job>,
    path: PathBuf,
    home: usize,
}

/// What the database holds at startup.
#[derive(Debug, Default)]
pub(crate) struct Recovery {
    /// Name, stock, price in cents.
    pub(crate) items: Vec<(String, i64, i64)>,
    pub(crate) next_id: u64,
    /// Orders that were not delivered or failed, with their last stored status and its detail.
    pub(crate) pending: Vec<(Order, Status, Option<String>)>,
    /// Orders per status.
    pub(crate) counts: [i64; 7],
}

/// An order with its history, for `GET /orders/{id}`.
#[derive(Debug, serde::Serialize)]
pub(crate) struct OrderView {
    #[serde(flatten)]
    pub(crate) order: Order,
    pub(crate) status: Status,
    pub(crate) history: Vec<Transition>,
}

/// A line of `GET /orders?status=..`.
#[derive(Debug, serde::Serialize)]
pub(crate) struct OrderLine {
    pub(crate) id: u64,
    pub(crate) status: Status,
    pub(crate) item: String,
    pub(crate) quantity: u32,
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // WAL: readers never block the writer. FULL: a commit is on disk when COMMIT returns, so
    // a 201 survives power loss, not only a crash of the process.
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "journal_mode is {mode}, WAL is needed"
        )));
    }
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;")?;
    Ok(conn)
}

impl Store {
    /// Opens (or creates) the database, reads what must be resumed, and starts the writer
    /// thread. Returns the thread's handle so shutdown can wait for the last commit, and for
    /// each of `shards` the receiver its [`relay_acks`] task reads.
    pub(crate) fn open(
        path: &Path,
        metrics: Arc<Metrics>,
        shards: usize,
    ) -> Result<Opened, String> {
        let describe = |e: rusqlite::Error| format!("database {}: {e}", path.display());
        let mut conn = open(path).map_err(describe)?;
        conn.execute_batch(SCHEMA).map_err(describe)?;
        let recovery = recover(&mut conn).map_err(describe)?;
        let (jobs, rx) = mpsc::channel::<Job>();
        let (homes, acks): (Vec<_>, Vec<_>) =
            (0..shards).map(|_| ringloop::shard::channel(1024)).unzip();
        let writer = std::thread::Builder::new()
            .name("delivery-store".into())
            .spawn(move || write_loop(conn, rx, &homes, &metrics))
            .map_err(|e| format!("cannot start the storage thread: {e}"))?;
        Ok(Opened {
            store: Store {
                jobs,
                path: path.to_owned(),
                home: 0,
            },
            recovery,
            writer,
            acks,
        })
    }

    /// This store as used by tasks of shard `home` (where their acknowledgements go).
    pub(crate) fn for_shard(&self, home: usize) -> Store {
        Store {
            home,
            ..self.clone()
        }
    }

    /// Queues `write` now; the returned future resolves once it is committed (or failed).
    /// Writes are committed in the order they were queued.
    pub(crate) fn submit(&self, write: Write) -> impl std::future::Future<Output = Ack> + 'static {
        let (done, mut ack) = ringloop::shard::channel(1);
        let job = Job {
            write,
            done,
            home: self.home,
        };
        let queued = self.jobs.send(job).is_ok();
        async move {
            if !queued {
                return Err("the storage thread has stopped".to_owned());
            }
            ack.recv()
                .await
                .unwrap_or_else(|| Err("the storage thread has stopped".to_owned()))
        }
    }

    /// Stores `write` and returns once it is committed (or failed).
    pub(crate) async fn commit(&self, write: Write) -> Ack {
        self.submit(write).await
    }

    /// One order and its history.
    pub(crate) async fn order(&self, id: u64) -> Result<Option<OrderView>, String> {
        self.read(move |conn| read_order(conn, id)).await
    }

    /// Up to `limit` orders, newest first, optionally only those in `status`.
    pub(crate) async fn orders(
        &self,
        status: Option<Status>,
        limit: u32,
    ) -> Result<Vec<OrderLine>, String> {
        self.read(move |conn| read_orders(conn, status, limit))
            .await
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        thread_local! {
            // One read connection per blocking-pool thread, opened on first use.
            static READER: RefCell<Option<(PathBuf, Connection)>> = const { RefCell::new(None) };
        }
        let path = self.path.clone();
        ringloop::spawn_blocking(move || {
            READER.with(|reader| {
                let mut reader = reader.borrow_mut();
                if reader.as_ref().is_none_or(|(p, _)| *p != path) {
                    *reader = Some((path.clone(), open(&path)?));
                }
                let (_, conn) = reader.as_ref().expect("opened just above");
                f(conn)
            })
        })
        .await
        .map_err(|e| format!("read failed: {e}"))?
        .map_err(|e| format!("read failed: {e}"))
    }
}

/// What [`Store::open`] returns.
pub(crate) struct Opened {
    pub(crate) store: Store,
    pub(crate) recovery: Recovery,
    pub(crate) writer: std::thread::JoinHandle<()>,
    /// One per shard, for its [`relay_acks`] task.
    pub(crate) acks: Vec<Receiver<AckBatch>>,
}

/// Runs on each shard: hands each acknowledgement of a commit to its waiting task (a local
/// wake).
pub(crate) async fn relay_acks(mut batches: Receiver<AckBatch>) {
    while let Some(batch) = batches.recv().await {
        for (done, ack) in batch {
            let _ = done.try_send(ack);
        }
    }
}

fn write_loop(
    mut conn: Connection,
    jobs: mpsc::Receiver<Job>,
    homes: &[Sender<AckBatch>],
    metrics: &Metrics,
) {
    let mut per_home: Vec<AckBatch> = homes.iter().map(|_| Vec::new()).collect();
    let mut batch = Vec::new();
    // Ends when every Store handle is gone (shutdown), after committing what was queued.
    while let Ok(first) = jobs.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let start = Instant::now();
        let acks = commit_batch(&mut conn, &batch);
        metrics.record_commit(batch.len(), start.elapsed());
        for (job, ack) in batch.drain(..).zip(acks) {
            match per_home.get_mut(job.home) {
                Some(acks) => acks.push((job.done, ack)),
                None => drop(job.done.try_send(ack)),
            }
        }
        for (home, acks) in homes.iter().zip(&mut per_home) {
            if acks.is_empty() {
                continue;
            }
            // A full relay queue (or a stopped shard): acknowledge directly instead. The
            // waiter may be gone (its connection closed); the writes are stored anyway.
            if let Err(TrySendError::Full(acks) | TrySendError::Closed(acks)) =
                home.try_send(std::mem::take(acks))
            {
                for (done, ack) in acks {
                    let _ = done.try_send(ack);
                }
            }
        }
    }
}

fn commit_batch(conn: &mut Connection, batch: &[Job]) -> Vec<Ack> {
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => return batch.iter().map(|_| Err(format!("begin: {e}"))).collect(),
    };
    let mut acks: Vec<Ack> = batch
        .iter()
        .map(|job| apply(&tx, &job.write).map_err(|e| format!("write: {e}")))
        .collect();
    if let Err(e) = tx.commit() {
        let failed = format!("commit: {e}");
        acks.iter_mut().for_each(|ack| *ack = Err(failed.clone()));
    }
    acks
}

fn apply(tx: &rusqlite::Transaction<'_>, write: &Write) -> rusqlite::Result<bool> {
    let mut event = tx.prepare_cached(
        "INSERT OR IGNORE INTO events (order_id, status, at_us, detail) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut restock = tx.prepare_cached("UPDATE items SET stock = stock + ?1 WHERE name = ?2")?;
    match write {
        Write::NewOrder {
            order,
            placed_us,
            accepted_us,
        } => {
            tx.prepare_cached(
                "INSERT INTO orders (id, item, quantity, address, status) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                order.id as i64,
                order.item,
                order.quantity,
                order.address,
                Status::Accepted.as_str()
            ])?;
            event.execute(params![
                order.id as i64,
                Status::Placed.as_str(),
                placed_us,
                None::<String>
            ])?;
            event.execute(params![
                order.id as i64,
                Status::Accepted.as_str(),
                accepted_us,
                None::<String>
            ])?;
            restock.execute(params![-i64::from(order.quantity), order.item])?;
            Ok(true)
        }
        Write::Transition {
            id,
            status,
            at_us,
            detail,
            restock: give_back,
        } => {
            if event.execute(params![*id as i64, status.as_str(), at_us, detail])? == 0 {
                return Ok(false);
            }
            tx.prepare_cached("UPDATE orders SET status = ?1 WHERE id = ?2")?
                .execute(params![status.as_str(), *id as i64])?;
            if let Some((item, quantity)) = give_back {
                restock.execute(params![i64::from(*quantity), item])?;
            }
            Ok(true)
        }
    }
}

fn recover(conn: &mut Connection) -> rusqlite::Result<Recovery> {
    let empty: i64 = conn.query_row("SELECT COUNT(*) FROM items", [], |r| r.get(0))?;
    if empty == 0 {
        let tx = conn.transaction()?;
        for (name, stock, price) in SEED_ITEMS {
            tx.execute(
                "INSERT INTO items (name, stock, price_cents) VALUES (?1, ?2, ?3)",
                params![name, stock, price],
            )?;
        }
        tx.commit()?;
    }
    let mut recovery = Recovery::default();
    let mut items = conn.prepare("SELECT name, stock, price_cents FROM items ORDER BY name")?;
    recovery.items = items
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let max: Option<i64> = conn.query_row("SELECT MAX(id) FROM orders", [], |r| r.get(0))?;
    recovery.next_id = max.map_or(1, |m| m as u64 + 1);
    let mut counts = conn.prepare("SELECT status, COUNT(*) FROM orders GROUP BY status")?;
    for row in counts.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (status, n) = row?;
        if let Some(status) = Status::parse(&status) {
            recovery.counts[status.index()] = n;
        }
    }
    let mut pending = conn.prepare(
        "SELECT o.id, o.item, o.quantity, o.address, o.status,
                (SELECT detail FROM events e WHERE e.order_id = o.id AND e.status = o.status)
         FROM orders o WHERE o.status NOT IN ('delivered', 'failed') ORDER BY o.id",
    )?;
    recovery.pending = pending
        .query_map([], |r| {
            let status: String = r.get(4)?;
            Ok((
                Order {
                    id: r.get::<_, i64>(0)? as u64,
                    item: r.get(1)?,
                    quantity: r.get(2)?,
                    address: r.get(3)?,
                },
                Status::parse(&status).unwrap_or(Status::Accepted),
                r.get(5)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    drop(items);
    drop(counts);
    drop(pending);
    Ok(recovery)
}

fn read_order(conn: &Connection, id: u64) -> rusqlite::Result<Option<OrderView>> {
    let order = conn
        .prepare_cached("SELECT item, quantity, address, status FROM orders WHERE id = ?1")?
        .query_row([id as i64], |r| {
            Ok((
                Order {
                    id,
                    item: r.get(0)?,
                    quantity: r.get(1)?,
                    address: r.get(2)?,
                },
                r.get::<_, String>(3)?,
            ))
        })
        .optional()?;
    let Some((order, status)) = order else {
        return Ok(None);
    };
    let mut history = conn.prepare_cached(
        "SELECT status, at_us, detail FROM events WHERE order_id = ?1 ORDER BY seq",
    )?;
    let history = history
        .query_map([id as i64], |r| {
            Ok(Transition {
                id,
                status: Status::parse(&r.get::<_, String>(0)?).unwrap_or(Status::Placed),
                at: us_to_ms(r.get(1)?),
                detail: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(OrderView {
        order,
        status: Status::parse(&status).unwrap_or(Status::Placed),
        history,
    }))
}

fn read_orders(
    conn: &Connection,
    status: Option<Status>,
    limit: u32,
) -> rusqlite::Result<Vec<OrderLine>> {
    let line = |r: &rusqlite::Row<'_>| {
        Ok(OrderLine {
            id: r.get::<_, i64>(0)? as u64,
            status: Status::parse(&r.get::<_, String>(1)?).unwrap_or(Status::Placed),
            item: r.get(2)?,
            quantity: r.get(3)?,
        })
    };
    match status {
        Some(status) => conn
            .prepare_cached(
                "SELECT id, status, item, quantity FROM orders WHERE status = ?1 ORDER BY id DESC LIMIT ?2",
            )?
            .query_map(params![status.as_str(), limit], line)?
            .collect(),
        None => conn
            .prepare_cached("SELECT id, status, item, quantity FROM orders ORDER BY id DESC LIMIT ?1")?
            .query_map(params![limit], line)?
            .collect(),
    }
}
