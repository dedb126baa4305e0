//! hyper's HTTP/1.1 server on ringloop: hyper's connection code, unchanged, reads and writes
//! through `compat::Compat` (receiving into a shared `BufferPool`), times out slow clients
//! with `compat::HyperTimer`, and each connection is a ringloop task.
//!
//! ```text
//! cargo run --release --features hyper --example hyper_server -- 127.0.0.1:8081
//! curl -s localhost:8081/                     # hello
//! curl -s -d 'some bytes' localhost:8081/echo # the body back
//! nc localhost 8081                           # send nothing: closed after 5 s
//! ```
//!
//! Ctrl-C stops accepting, and the server exits once the connections open then have closed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use ringloop::compat::{Compat, HyperTimer};
use ringloop::net::{BufferPool, TcpListener};

async fn route(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, body: Bytes| {
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        Ok(response)
    };
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => reply(StatusCode::OK, Bytes::from_static(b"hello from ringloop\n")),
        (&Method::POST, "/echo") => match req.into_body().collect().await {
            Ok(body) => reply(StatusCode::OK, body.to_bytes()),
            Err(e) => reply(StatusCode::BAD_REQUEST, Bytes::from(format!("{e}\n"))),
        },
        _ => reply(StatusCode::NOT_FOUND, Bytes::from_static(b"not found\n")),
    }
}

/// One connection, until the client closes it or a timeout ends it.
async fn serve(stream: ringloop::net::TcpStream, pool: BufferPool) {
    let _ = stream.set_nodelay(true);
    let result = hyper::server::conn::http1::Builder::new()
        .timer(HyperTimer)
        .header_read_timeout(Duration::from_secs(5))
        .serve_connection(
            Compat::with_pool(stream, &pool),
            hyper::service::service_fn(route),
        )
        .await;
    if let Err(e) = result {
        if !e.is_incomplete_message() {
            eprintln!("hyper_server: connection ended: {e}");
        }
    }
}

#[ringloop::main]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{arg:?}: {e}"))
        })?,
        None => SocketAddr::from(([127, 0, 0, 1], 8081)),
    };
    let listener = TcpListener::bind(addr)?;
    println!("listening on http://{}/", listener.local_addr()?);
    // One multishot accept, cancel safe: a connection accepted while Ctrl-C wins the select
    // below waits in the stream instead of being dropped.
    let mut incoming = listener.incoming();
    // Requests are received into one shared pool (a multishot receive per connection): an
    // idle keep-alive connection holds no buffer.
    let pool = BufferPool::new(1024, 4096)?;
    let mut connections = ringloop::task::JoinSet::new();
    let mut stop = std::pin::pin!(ringloop::signal::ctrl_c());
    let mut served = 0u64;
    loop {
        ringloop::select! {
            accepted = incoming.next() => match accepted {
                Ok(stream) => connections.spawn(serve(stream, pool.clone())),
                // Out of fds and the like: say so and go on; the listener backs off by itself.
                Err(e) => eprintln!("hyper_server: accept failed: {e}"),
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
