//! The stages an order flows through on its shard, as tasks linked by queues:
//!
//! ```text
//! HTTP ─Place─► shop ──► dispatch ─Offer─► courier (one task per courier, per zone)
//!                ▲                            │ accepts, fills the slip
//!                └──────────Slip──────────────┘
//!               shop ──► logistics (hand-over with retries, schedule) ──► delivered
//! ```
//!
//! Each stage is one task reading its queue and starting a small task per order, so a slow
//! order never holds up the others. Every transition is stored before it is published on the
//! event bus; a restart resumes each unfinished order from its last stored stage (see
//! [`Pipeline::advance`] for why later stages do not wait for their commits).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ringloop::event::SharedBus;
use ringloop::shard::{self, Receiver, Sender};
use ringloop::time::{sleep, timeout};

use crate::logistics::Client;
use crate::metrics::Metrics;
use crate::model::{now_us, us_to_ms, Order, Status, Transition, ZONE_NAMES};
use crate::store::{Store, Write};

/// The topic every transition is published on.
pub(crate) const TOPIC: &str = "transitions";

/// Room in each stage queue; a full queue makes its sender wait.
const QUEUE: usize = 4096;
/// Times the dispatcher goes round a zone's couriers before giving up.
const DISPATCH_ROUNDS: usize = 2;

/// The simulated world, from the command line.
#[derive(Debug, Clone)]
pub(crate) struct Timing {
    /// A courier's time to answer an offer, and again to fill in the slip.
    pub(crate) courier_delay: Duration,
    /// An offer not answered within this goes to the next courier.
    pub(crate) courier_timeout: Duration,
    /// Travel time from hand-over to delivery.
    pub(crate) travel: Duration,
    /// Percent of offers a courier never answers.
    pub(crate) courier_ignore_percent: u32,
    pub(crate) couriers_per_zone: usize,
}

/// Why the shop turned an order down (before anything was stored).
#[derive(Debug)]
pub(crate) enum Reject {
    UnknownItem,
    OutOfStock { available: i64 },
    Store(String),
}

/// Messages to a shard's shop.
pub(crate) enum ShopMsg {
    /// A new order from the HTTP front end (on any shard); the reply comes once it is stored.
    Place {
        order: Order,
        placed_us: i64,
        reply: Sender<Result<(), Reject>>,
    },
    /// A courier's filled-in slip: the order is ready for the logistics company.
    Slip { ticket: Ticket, courier: Courier },
}

/// An order moving through the stages, with what is needed to time them.
pub(crate) struct Ticket {
    pub(crate) order: Order,
    pub(crate) status: Status,
    /// When it entered `status` (this process's clock).
    since: Instant,
    /// When it was placed; `None` for an order resumed after a restart.
    placed: Option<Instant>,
}

#[derive(Debug, Clone)]
pub(crate) struct Courier {
    pub(crate) name: String,
    pub(crate) contact: String,
    pub(crate) zone: usize,
    index: usize,
}

/// An offer of an order to a courier; the courier answers with its name on `answer`.
struct Offer {
    order_id: u64,
    answer: Sender<()>,
}

/// The goods and their stock, shared by every shard's shop.
#[derive(Debug, Default)]
pub(crate) struct Catalogue {
    items: Mutex<BTreeMap<String, (i64, i64)>>,
}

impl Catalogue {
    /// From (name, stock, price in cents).
    pub(crate) fn new(items: &[(String, i64, i64)]) -> Catalogue {
        Catalogue {
            items: Mutex::new(
                items
                    .iter()
                    .map(|(name, stock, price)| (name.clone(), (*stock, *price)))
                    .collect(),
            ),
        }
    }

    pub(crate) fn contains(&self, item: &str) -> bool {
        self.lock().contains_key(item)
    }

    /// Takes `quantity` of `item` out of stock, or says why not.
    pub(crate) fn reserve(&self, item: &str, quantity: u32) -> Result<(), Reject> {
        let mut items = self.lock();
        let (stock, _) = items.get_mut(item).ok_or(Reject::UnknownItem)?;
        if *stock < i64::from(quantity) {
            return Err(Reject::OutOfStock { available: *stock });
        }
        *stock -= i64::from(quantity);
        Ok(())
    }

    pub(crate) fn release(&self, item: &str, quantity: u32) {
        if let Some((stock, _)) = self.lock().get_mut(item) {
            *stock += i64::from(quantity);
        }
    }

    /// Name, stock, price in cents.
    pub(crate) fn list(&self) -> Vec<(String, i64, i64)> {
        self.lock()
            .iter()
            .map(|(name, (stock, price))| (name.clone(), *stock, *price))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (i64, i64)>> {
        // Nothing panics while holding it; a poisoned map is still consistent.
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What every shard shares (all `Send + Sync`).
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) bus: SharedBus<Transition>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) catalogue: Arc<Catalogue>,
    pub(crate) timing: Timing,
}

/// One shard's stages.
pub(crate) struct Pipeline {
    shared: Arc<Shared>,
    /// The shared store, with this shard's acknowledgement relay.
    store: Store,
    logistics: Client,
    shop: Sender<ShopMsg>,
    dispatch: Sender<Ticket>,
    couriers: Vec<Vec<(Courier, Sender<Offer>)>>,
    next_courier: Cell<usize>,
}

impl Pipeline {
    /// Starts this shard's stages; `shop` is the queue the HTTP front ends send to (its sender
    /// side is `shop_tx`).
    pub(crate) fn start(
        shard: usize,
        shared: Arc<Shared>,
        logistics: Client,
        shop_tx: Sender<ShopMsg>,
        shop_rx: Receiver<ShopMsg>,
    ) -> Rc<Pipeline> {
        let (dispatch, dispatch_rx) = shard::channel(QUEUE);
        let timing = shared.timing.clone();
        let mut couriers = Vec::new();
        for (zone, zone_name) in ZONE_NAMES.iter().enumerate() {
            let mut crew = Vec::new();
            for index in 0..timing.couriers_per_zone.max(1) {
                let (tx, rx) = shard::channel(QUEUE);
                let courier = Courier {
                    name: format!("{zone_name}-{shard}.{index}"),
                    contact: format!("+1-555-{:02}{:02}", zone * 10 + shard % 10, index),
                    zone,
                    index,
                };
                drop(ringloop::spawn(courier_loop(
                    courier.clone(),
                    rx,
                    timing.clone(),
                )));
                crew.push((courier, tx));
            }
            couriers.push(crew);
        }
        let pipeline = Rc::new(Pipeline {
            store: shared.store.for_shard(shard),
            shared,
            logistics,
            shop: shop_tx,
            dispatch,
            couriers,
            next_courier: Cell::new(0),
        });
        drop(ringloop::spawn(shop_loop(pipeline.clone(), shop_rx)));
        drop(ringloop::spawn(dispatch_loop(
            pipeline.clone(),
            dispatch_rx,
        )));
        pipeline
    }

    /// Continues an order that a previous run left at `status` (with its stored `detail`).
    pub(crate) fn resume(self: &Rc<Self>, order: Order, status: Status, detail: Option<String>) {
        let ticket = Ticket {
            order,
            status,
            since: Instant::now(),
            placed: None,
        };
        let p = self.clone();
        match status {
            Status::Placed | Status::Accepted => drop(ringloop::spawn(async move {
                let _ = p.dispatch.send(ticket).await;
            })),
            Status::Assigned => {
                let courier = self.courier_named(&ticket.order, detail.as_deref());
                drop(ringloop::spawn(fill_slip(p, ticket, courier)));
            }
            Status::SlipFilled => {
                let courier = self.courier_named(&ticket.order, detail.as_deref());
                drop(ringloop::spawn(hand_over(p, ticket, courier)));
            }
            Status::HandedToLogistics => drop(ringloop::spawn(deliver(p, ticket))),
            Status::Delivered | Status::Failed => {}
        }
    }

    /// The courier a stored `assigned` or `slip_filled` detail names ("courier NAME ..."), or
    /// the zone's first (the names carry the shard, which may differ after a restart).
    fn courier_named(&self, order: &Order, detail: Option<&str>) -> Courier {
        let crew = &self.couriers[order.zone(ZONE_NAMES.len())];
        detail
            .and_then(|d| {
                crew.iter()
                    .find(|(c, _)| d.contains(&format!("courier {} ", c.name)))
            })
            .unwrap_or(&crew[0])
            .0
            .clone()
    }

    /// Records the transition of `ticket` to `status`. The write is queued for the store at
    /// once, so stored histories keep pipeline order (the writer commits in queue order); the
    /// transition is published, counted and its effects on stock applied only once committed.
    /// The stage goes on without waiting for that commit: a crash before it loses only the
    /// transition, and the order resumes from its last stored stage and redoes this one (every
    /// step is idempotent; the store keeps one entry per status). Only a new order waits for
    /// its commit, because its `201` is a promise.
    fn advance(self: &Rc<Self>, ticket: &mut Ticket, status: Status, detail: Option<String>) {
        let at_us = now_us();
        let order = &ticket.order;
        let restock = (status == Status::Failed).then(|| (order.item.clone(), order.quantity));
        let committed = self.store.submit(Write::Transition {
            id: order.id,
            status,
            at_us,
            detail: detail.clone(),
            restock: restock.clone(),
        });
        let (id, from, stage, placed) = (
            order.id,
            ticket.status,
            ticket.since.elapsed(),
            ticket.placed,
        );
        let p = self.clone();
        drop(ringloop::spawn(async move {
            match committed.await {
                Ok(true) => {
                    if let Some((item, quantity)) = restock {
                        p.shared.catalogue.release(&item, quantity);
                    }
                    let m = &p.shared.metrics;
                    m.record_transition(Some(from), status, stage);
                    if let (Status::Delivered, Some(placed)) = (status, placed) {
                        m.order_latency.record(placed.elapsed());
                    }
                    p.publish(id, status, at_us, detail);
                }
                // Stored by an earlier run, and published then.
                Ok(false) => {}
                Err(e) => eprintln!("delivery: order {id}: {} not stored: {e}", status.as_str()),
            }
        }));
        ticket.status = status;
        ticket.since = Instant::now();
    }

    fn publish(&self, id: u64, status: Status, at_us: i64, detail: Option<String>) {
        self.shared.bus.publish(
            TOPIC,
            Transition {
                id,
                status,
                at: us_to_ms(at_us),
                detail,
            },
        );
    }

    fn fail(self: &Rc<Self>, mut ticket: Ticket, reason: String) {
        self.advance(&mut ticket, Status::Failed, Some(reason));
    }
}

async fn shop_loop(p: Rc<Pipeline>, mut rx: Receiver<ShopMsg>) {
    while let Some(msg) = rx.recv().await {
        match msg {
            ShopMsg::Place {
                order,
                placed_us,
                reply,
            } => match p.shared.catalogue.reserve(&order.item, order.quantity) {
                Ok(()) => drop(ringloop::spawn(accept(p.clone(), order, placed_us, reply))),
                Err(reject) => drop(reply.try_send(Err(reject))),
            },
            ShopMsg::Slip { ticket, courier } => {
                drop(ringloop::spawn(hand_over(p.clone(), ticket, courier)))
            }
        }
    }
}

/// Stores a new order with its reservation; answers the front end only once it is durable.
async fn accept(p: Rc<Pipeline>, order: Order, placed_us: i64, reply: Sender<Result<(), Reject>>) {
    let placed = Instant::now();
    let accepted_us = now_us();
    let write = Write::NewOrder {
        order: order.clone(),
        placed_us,
        accepted_us,
    };
    if let Err(e) = p.store.commit(write).await {
        p.shared.catalogue.release(&order.item, order.quantity);
        let _ = reply.try_send(Err(Reject::Store(e)));
        return;
    }
    let m = &p.shared.metrics;
    m.record_transition(None, Status::Placed, Duration::ZERO);
    m.record_transition(Some(Status::Placed), Status::Accepted, placed.elapsed());
    p.publish(order.id, Status::Placed, placed_us, None);
    p.publish(order.id, Status::Accepted, accepted_us, None);
    let _ = reply.try_send(Ok(()));
    let ticket = Ticket {
        order,
        status: Status::Accepted,
        since: Instant::now(),
        placed: Some(placed),
    };
    let _ = p.dispatch.send(ticket).await;
}

async fn dispatch_loop(p: Rc<Pipeline>, mut rx: Receiver<Ticket>) {
    while let Some(ticket) = rx.recv().await {
        drop(ringloop::spawn(dispatch(p.clone(), ticket)));
    }
}

/// Offers the order to the zone's couriers in turn until one accepts in time.
async fn dispatch(p: Rc<Pipeline>, mut ticket: Ticket) {
    let crew = &p.couriers[ticket.order.zone(ZONE_NAMES.len())];
    let first = p.next_courier.get();
    p.next_courier.set(first.wrapping_add(1));
    let mut skipped = 0;
    for k in 0..crew.len() * DISPATCH_ROUNDS {
        let (courier, offers) = &crew[(first + k) % crew.len()];
        let (answer, mut answered) = shard::channel(1);
        let offer = Offer {
            order_id: ticket.order.id,
            answer,
        };
        if offers.send(offer).await.is_err() {
            continue;
        }
        match timeout(p.shared.timing.courier_timeout, answered.recv()).await {
            Ok(Some(())) => {
                let detail = format!(
                    "courier {} ({}){}",
                    courier.name,
                    courier.contact,
                    if skipped > 0 {
                        format!(", after {skipped} skipped")
                    } else {
                        String::new()
                    }
                );
                let courier = courier.clone();
                p.advance(&mut ticket, Status::Assigned, Some(detail));
                fill_slip(p.clone(), ticket, courier).await;
                return;
            }
            Ok(None) | Err(_) => {
                skipped += 1;
                p.shared.metrics.courier_skips.fetch_add(1, Relaxed);
            }
        }
    }
    let reason = format!(
        "no courier in zone {} accepted within {:?} ({skipped} offers)",
        ZONE_NAMES[ticket.order.zone(ZONE_NAMES.len())],
        p.shared.timing.courier_timeout
    );
    p.fail(ticket, reason);
}

/// One courier: answers each offer after its response time, or (some of the time) never.
async fn courier_loop(courier: Courier, mut offers: Receiver<Offer>, timing: Timing) {
    while let Some(offer) = offers.recv().await {
        let ignores = ignores(offer.order_id, &courier, timing.courier_ignore_percent);
        let (delay, timeout) = (timing.courier_delay, timing.courier_timeout);
        drop(ringloop::spawn(async move {
            if ignores {
                // Never answers: holds the offer past the dispatcher's patience.
                sleep(timeout * 2).await;
                drop(offer);
            } else {
                pause(delay).await;
                let _ = offer.answer.try_send(());
            }
        }));
    }
}

/// Whether `courier` ignores the offer of `order_id`: a fixed function of both, so a run is
/// reproducible.
fn ignores(order_id: u64, courier: &Courier, percent: u32) -> bool {
    let mut h = order_id
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(courier.index as u64 * 0xbf58_476d_1ce4_e5b9 + courier.zone as u64);
    h ^= h >> 31;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 29;
    (h % 100) < u64::from(percent)
}

/// The courier fills in the delivery slip and sends the order back to the shop.
async fn fill_slip(p: Rc<Pipeline>, mut ticket: Ticket, courier: Courier) {
    pause(p.shared.timing.courier_delay).await;
    let o = &ticket.order;
    let slip = format!(
        "slip S-{}: {} x {} to {:?}, courier {} {}",
        o.id, o.quantity, o.item, o.address, courier.name, courier.contact
    );
    p.advance(&mut ticket, Status::SlipFilled, Some(slip));
    let _ = p.shop.send(ShopMsg::Slip { ticket, courier }).await;
}

/// The shop hands the order to the logistics company (with retries), then it is delivered.
async fn hand_over(p: Rc<Pipeline>, mut ticket: Ticket, courier: Courier) {
    let zone = ticket.order.zone(ZONE_NAMES.len());
    let handoff = p
        .logistics
        .hand_over(&ticket.order, zone, &courier.name, &courier.contact)
        .await;
    match handoff {
        Ok(h) => {
            let detail = format!(
                "depot {} ({}), parcel {}, courier {}",
                h.depot, h.depot_contact, h.parcel, courier.name
            );
            p.advance(&mut ticket, Status::HandedToLogistics, Some(detail));
            deliver(p, ticket).await;
        }
        Err(reason) => p.fail(ticket, reason),
    }
}

/// The company schedules the courier; after the travel time the order is delivered.
async fn deliver(p: Rc<Pipeline>, mut ticket: Ticket) {
    match p.logistics.schedule(ticket.order.id).await {
        Ok(slot) => {
            pause(p.shared.timing.travel).await;
            let detail = Some(format!("delivered in {slot}"));
            p.advance(&mut ticket, Status::Delivered, detail);
        }
        Err(reason) => p.fail(ticket, reason),
    }
}

/// A simulated delay; zero (`--instant`) costs no timer at all.
async fn pause(d: Duration) {
    if !d.is_zero() {
        sleep(d).await;
    }
}
