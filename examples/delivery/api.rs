//! The routes: what each HTTP request does, and every bad-input answer.

use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use ringloop::event::{RecvError, TryRecvError};
use ringloop::shard::{self, Sender};
use ringloop::time::timeout;

use crate::api_parse::{parse_list_query, parse_order, parse_order_id, NewOrder};
use crate::http::{Conn, Limits, ReadError, Request, Response};
use crate::model::{now_us, Order, Status};
use crate::pipeline::{Reject, Shared, ShopMsg, TOPIC};

const INDEX_HTML: &str = include_str!("web/index.html");
/// An `/events` stream sends a comment this often, so a vanished client is noticed.
const SSE_HEARTBEAT: Duration = Duration::from_secs(15);

/// What the front end of every shard shares.
pub(crate) struct Api {
    pub(crate) shared: Arc<Shared>,
    /// Each shard's shop queue, indexed by shard.
    pub(crate) shops: Arc<[Sender<ShopMsg>]>,
    pub(crate) next_id: Arc<AtomicU64>,
    pub(crate) limits: Limits,
    pub(crate) connections: Arc<AtomicUsize>,
    pub(crate) max_connections: usize,
}

/// Serves one accepted connection until it closes.
pub(crate) async fn serve_connection(api: Rc<Api>, stream: ringloop::net::TcpStream) {
    let _ = stream.set_nodelay(true);
    let metrics = &api.shared.metrics;
    let conn = Conn::new(stream);
    let open = api.connections.fetch_add(1, Relaxed) + 1;
    let count = Counted(api.connections.clone());
    if open > api.max_connections {
        // A refused connection gives its slot back at once, not after the answer.
        drop(count);
        metrics.connections_refused.fetch_add(1, Relaxed);
        let busy = Response::error(503, "too many connections; try again later");
        if conn.respond(busy, true).await.is_ok() {
            conn.linger_close().await;
        }
        return;
    }
    metrics.connections_open.fetch_add(1, Relaxed);
    serve_requests(&api, conn).await;
    metrics.connections_open.fetch_sub(1, Relaxed);
    drop(count);
}

/// Gives a connection's slot back when it ends, however it ends.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

async fn serve_requests(api: &Rc<Api>, mut conn: Conn) {
    let metrics = &api.shared.metrics;
    loop {
        let request = match conn.next_request(api.limits).await {
            Ok(request) => request,
            Err(ReadError::Closed) | Err(ReadError::Io) => return,
            Err(ReadError::TimedOut) => {
                metrics.header_timeouts.fetch_add(1, Relaxed);
                return;
            }
            Err(ReadError::Reject(status, message)) => {
                count_status(metrics, status);
                if conn
                    .respond(Response::error(status, &message), true)
                    .await
                    .is_ok()
                {
                    conn.linger_close().await;
                }
                return;
            }
        };
        metrics.http_requests.fetch_add(1, Relaxed);
        if request.method == "GET" && request.path == "/events" {
            events(api, conn).await;
            return;
        }
        let response = route(api, &request).await;
        count_status(metrics, response.status);
        if conn.respond(response, request.close).await.is_err() || request.close {
            return;
        }
    }
}

fn count_status(metrics: &crate::metrics::Metrics, status: u16) {
    match status {
        400..=499 => metrics.http_responses_4xx.fetch_add(1, Relaxed),
        500.. => metrics.http_responses_5xx.fetch_add(1, Relaxed),
        _ => 0,
    };
}

async fn route(api: &Api, req: &Request) -> Response {
    let path = req.path.trim_end_matches('/');
    match (req.method.as_str(), path) {
        ("GET", "") => Response::text(200, "text/html; charset=utf-8", INDEX_HTML),
        ("GET", "/healthz") => Response::text(200, "text/plain", "ok\n"),
        ("GET", "/items") => items(api),
        ("POST", "/orders") => place(api, &req.body).await,
        ("GET", "/orders") => list(api, &req.query).await,
        ("GET", "/metrics") => Response::text(
            200,
            "text/plain; version=0.0.4",
            api.shared.metrics.render(api.shops.len()),
        ),
        ("GET", p) if p.starts_with("/orders/") => one(api, &p["/orders/".len()..]).await,
        (_, "" | "/healthz" | "/items" | "/orders" | "/metrics" | "/events") => {
            Response::error(405, "method not allowed")
        }
        (_, p) if p.starts_with("/orders/") => Response::error(405, "method not allowed"),
        _ => Response::error(404, "no such page"),
    }
}

fn items(api: &Api) -> Response {
    let items: Vec<_> = api
        .shared
        .catalogue
        .list()
        .into_iter()
        .map(|(name, stock, price)| {
            serde_json::json!({ "name": name, "stock": stock, "price_cents": price })
        })
        .collect();
    Response::json(200, &items)
}

async fn place(api: &Api, body: &[u8]) -> Response {
    let NewOrder {
        item,
        quantity,
        address,
    } = match parse_order(body) {
        Ok(order) => order,
        Err(message) => return Response::error(400, &message),
    };
    if !api.shared.catalogue.contains(&item) {
        return Response::error(422, &format!("unknown item {item:?}; see GET /items"));
    }
    let placed_us = now_us();
    let id = api.next_id.fetch_add(1, Relaxed);
    // Orders are spread over shards by id: this order's every stage runs on that shard.
    let shard = (id % api.shops.len() as u64) as usize;
    let order = Order {
        id,
        item,
        quantity,
        address,
    };
    let (reply, mut replied) = shard::channel(1);
    let msg = ShopMsg::Place {
        order: order.clone(),
        placed_us,
        reply,
    };
    if api.shops[shard].send(msg).await.is_err() {
        return Response::error(503, "the shop is closed (shutting down)");
    }
    match replied.recv().await {
        Some(Ok(())) => Response::json(
            201,
            &serde_json::json!({
                "id": order.id,
                "status": Status::Accepted,
                "item": order.item,
                "quantity": order.quantity,
                "address": order.address,
            }),
        ),
        Some(Err(Reject::UnknownItem)) => {
            Response::error(422, &format!("unknown item {:?}", order.item))
        }
        Some(Err(Reject::OutOfStock { available })) => Response::error(
            409,
            &format!(
                "not enough {} in stock: {} asked, {available} left",
                order.item, order.quantity
            ),
        ),
        Some(Err(Reject::Store(e))) => {
            eprintln!("delivery: order {id} not stored: {e}");
            Response::error(503, "the order could not be stored; try again")
        }
        None => Response::error(503, "the shop is closed (shutting down)"),
    }
}

async fn one(api: &Api, id: &str) -> Response {
    let id = match parse_order_id(id) {
        Ok(id) => id,
        Err(message) => return Response::error(400, &message),
    };
    match api.shared.store.order(id).await {
        Ok(Some(view)) => Response::json(200, &view),
        Ok(None) => Response::error(404, &format!("no order {id}")),
        Err(e) => Response::error(500, &e),
    }
}

async fn list(api: &Api, query: &str) -> Response {
    let (status, limit) = match parse_list_query(query, Status::parse) {
        Ok(list) => (list.status, list.limit),
        Err(message) => return Response::error(400, &message),
    };
    match api.shared.store.orders(status, limit).await {
        Ok(orders) => Response::json(200, &orders),
        Err(e) => Response::error(500, &e),
    }
}

/// `GET /events`: every stored transition from now on, as Server-Sent Events.
async fn events(api: &Rc<Api>, conn: Conn) {
    let mut events = api.shared.bus.subscribe(TOPIC);
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nConnection: keep-alive\r\n\r\n: stream of order transitions\n\n";
    if conn.write(head.as_bytes().to_vec()).await.is_err() {
        return;
    }
    let mut out = Vec::with_capacity(16 * 1024);
    loop {
        let first = match timeout(SSE_HEARTBEAT, events.recv()).await {
            Ok(Ok(t)) => Some(t),
            Ok(Err(RecvError::Lagged(n))) => {
                lagged(api, &mut out, n);
                None
            }
            Ok(Err(RecvError::Closed)) => return,
            Err(_) => {
                out.extend_from_slice(b": heartbeat\n\n");
                None
            }
        };
        if let Some(t) = first {
            sse_data(&mut out, &t);
        }
        // Under load many events are waiting: send them all in one write.
        for _ in 0..1024 {
            match events.try_recv() {
                Ok(t) => sse_data(&mut out, &t),
                Err(TryRecvError::Lagged(n)) => lagged(api, &mut out, n),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => return,
            }
        }
        match conn.write(out).await {
            Ok(sent) => out = sent,
            Err(_) => return,
        }
        out.clear();
    }
}

fn sse_data(out: &mut Vec<u8>, t: &crate::model::Transition) {
    out.extend_from_slice(b"data: ");
    serde_json::to_writer(&mut *out, t).expect("a transition serializes");
    out.extend_from_slice(b"\n\n");
}

fn lagged(api: &Api, out: &mut Vec<u8>, missed: u64) {
    api.shared.metrics.events_lagged.fetch_add(missed, Relaxed);
    out.extend_from_slice(format!("event: lagged\ndata: {{\"missed\":{missed}}}\n\n").as_bytes());
}
