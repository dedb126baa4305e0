//! The server of `examples/hyper_server.rs`, on tokio's current_thread runtime: the baseline
//! `benches/hyper_http.sh` compares ringloop's hyper server with. Same hyper connection code,
//! same routes (`GET /`, `POST /echo`, anything else 404), same `header_read_timeout` of 5 s
//! (hyper-util's `TokioTimer` here, `compat::HyperTimer` there), `TCP_NODELAY` on every accepted
//! socket, a listen backlog of 1024 on both, one task per connection on the one thread, I/O
//! through hyper-util's `TokioIo`.
//!
//! ```text
//! cargo run --release --example hyper_server_tokio -- 127.0.0.1:8082
//! curl -s localhost:8082/                     # hello
//! curl -s -d 'some bytes' localhost:8082/echo # the body back
//! nc localhost 8082                           # send nothing: closed after 5 s
//! ```
//!
//! `GET /`'s body has the same length (20 bytes) as ringloop's, so both servers send the same
//! number of bytes per response. Ctrl-C stops accepting, and the server exits once the
//! connections open then have closed, printing `served N connections`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

async fn route(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, body: Bytes| {
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        Ok(response)
    };
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => reply(StatusCode::OK, Bytes::from_static(b"hello from tokio rt\n")),
        (&Method::POST, "/echo") => match req.into_body().collect().await {
            Ok(body) => reply(StatusCode::OK, body.to_bytes()),
            Err(e) => reply(StatusCode::BAD_REQUEST, Bytes::from(format!("{e}\n"))),
        },
        _ => reply(StatusCode::NOT_FOUND, Bytes::from_static(b"not found\n")),
    }
}

/// One connection, until the client closes it or a timeout ends it.
async fn serve(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let result = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(5))
        .serve_connection(TokioIo::new(stream), hyper::service::service_fn(route))
        .await;
    if let Err(e) = result {
        if !e.is_incomplete_message() {
            eprintln!("hyper_server_tokio: connection ended: {e}");
        }
    }
}

async fn run(addr: SocketAddr) -> std::io::Result<()> {
    // Backlog 1024, as ringloop's `TcpListener::bind`.
    let listener = TcpListener::bind(addr).await?;
    println!("listening on http://{}/", listener.local_addr()?);
    let mut connections = tokio::task::JoinSet::new();
    let mut stop = std::pin::pin!(tokio::signal::ctrl_c());
    let mut served = 0u64;
    loop {
        // `accept` is cancel safe: losing the select drops no connection.
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve(stream));
                }
                Err(e) => {
                    eprintln!("hyper_server_tokio: accept failed: {e}");
                    // Out of fds and the like: back off rather than spin on the error.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            // Finished connections are reaped as they end, so the set holds only open ones.
            Some(_) = connections.join_next() => served += 1,
            _ = &mut stop => break,
        }
    }
    // Closing the listener stops the kernel accepting for us.
    drop(listener);
    println!(
        "stopping: waiting for {} open connection(s)",
        connections.len()
    );
    while connections.join_next().await.is_some() {
        served += 1;
    }
    println!("served {served} connections");
    Ok(())
}

fn main() -> std::io::Result<()> {
    let addr: SocketAddr = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{arg:?}: {e}"))
        })?,
        None => SocketAddr::from(([127, 0, 0, 1], 8082)),
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(addr))
}
