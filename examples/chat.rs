//! A line-based chat server: each client sends its name, then lines that every other client
//! receives. One task per connection waits in a `select!` on its next line and on the next
//! message from the others: `BufRecv` reads lines cancel-safely (a line half-read when a
//! message wins the `select!` is kept), a `broadcast` channel carries the messages, a
//! `SendQueue` writes to each client, and one `BufferPool` serves every connection's receive.
//!
//! ```text
//! cargo run --release --example chat -- --addr 127.0.0.1:6142   # serve until Ctrl-C; try nc
//! cargo run --release --example chat                            # a scripted demo, three clients
//! ```

use std::error::Error;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use ringloop::net::{BufRecv, BufferPool, TcpListener, TcpStream};
use ringloop::sync::broadcast::{self, error::RecvError};
use ringloop::sync::Barrier;
use ringloop::time::timeout;

/// Messages the hub holds for a slow reader before it misses some.
const HUB: usize = 256;
/// The longest line a client may send, in bytes.
const MAX_LINE: usize = 1024;

/// One chat message and the connection that sent it (not echoed back to it).
struct Message {
    from: u64,
    text: String,
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let addr = match (args.next().as_deref(), args.next()) {
        (Some("--addr"), Some(addr)) => Some(addr),
        (None, _) => None,
        _ => return Err("usage: chat [--addr HOST:PORT]".into()),
    };
    ringloop::Runtime::new()?.block_on(async {
        match addr {
            Some(addr) => serve_until_ctrl_c(&addr).await,
            None => demo().await,
        }
    })
}

async fn serve_until_ctrl_c(addr: &str) -> Result<(), Box<dyn Error>> {
    let listener = TcpListener::bind(addr)?;
    println!("chat on {} (Ctrl-C to stop)", listener.local_addr()?);
    ringloop::select! {
        res = accept_loop(listener) => res?,
        _ = ringloop::signal::ctrl_c() => println!("bye"),
    }
    Ok(())
}

/// Accepts connections for ever, each served by a task of its own.
async fn accept_loop(listener: TcpListener) -> io::Result<()> {
    let pool = BufferPool::new(256, 2048)?;
    let (hub, _) = broadcast::channel::<Rc<Message>>(HUB);
    let mut next_id = 0;
    loop {
        let (stream, peer) = listener.accept().await?;
        next_id += 1;
        let (pool, hub, id) = (pool.clone(), hub.clone(), next_id);
        ringloop::spawn(async move {
            if let Err(e) = serve(stream, pool, hub, id).await {
                eprintln!("{peer}: {e}");
            }
        });
    }
}

/// One client: its name, then its lines out to the others and theirs in to it.
async fn serve(
    stream: TcpStream,
    pool: BufferPool,
    hub: broadcast::Sender<Rc<Message>>,
    id: u64,
) -> io::Result<()> {
    let mut out = stream.send_queue::<Vec<u8>>(16);
    let mut reader = BufRecv::new(stream.recv_pooled(&pool));
    reader.set_max_line(MAX_LINE);
    let mut lines = reader.lines();
    out.send(b"name?\n".to_vec()).await?;
    let name = match lines.next_line().await? {
        Some(name) if !name.trim().is_empty() => name.trim().to_owned(),
        _ => return Ok(()),
    };
    let mut inbox = hub.subscribe();
    out.send(format!("welcome, {name}\n").into_bytes()).await?;
    let say = |text: String| {
        // No receiver at all is no error: nobody else is here.
        let _ = hub.send(Rc::new(Message { from: id, text }));
    };
    say(format!("* {name} joined"));
    loop {
        ringloop::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => say(format!("{name}: {line}")),
                Ok(None) => break,
                // An overlong or non-UTF-8 line costs only itself.
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    out.send(format!("! {e}\n").into_bytes()).await?;
                }
                Err(e) => return Err(e),
            },
            message = inbox.recv() => match message {
                Ok(message) if message.from != id => {
                    out.send(format!("{}\n", message.text).into_bytes()).await?;
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => {
                    out.send(format!("! you missed {n} messages\n").into_bytes()).await?;
                }
                Err(RecvError::Closed) => break,
            },
        }
    }
    say(format!("* {name} left"));
    out.flush().await
}

/// Three scripted clients on a server of their own: each joins, says two lines, and checks
/// that it heard the other two's four.
async fn demo() -> Result<(), Box<dyn Error>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = ringloop::spawn(accept_loop(listener));
    let names = ["alice", "bob", "carol"];
    let everyone_in = Rc::new(Barrier::new(names.len()));
    let clients: Vec<_> = names
        .iter()
        .map(|name| ringloop::spawn(client(addr, name, names, everyone_in.clone())))
        .collect();
    let mut heard = 0;
    for client in clients {
        let lines = timeout(Duration::from_secs(10), client)
            .await
            .map_err(|_| "the demo took over 10 s")?
            .map_err(|e| format!("a client panicked: {e}"))??;
        heard += lines;
    }
    server.abort();
    println!(
        "ok: {} clients each heard the other two's lines ({heard} in all)",
        names.len()
    );
    Ok(())
}

/// Joins as `name`, waits for everyone, says two lines, and returns how many chat lines it
/// heard (four are expected: two from each other client).
async fn client(
    addr: std::net::SocketAddr,
    name: &'static str,
    names: [&'static str; 3],
    everyone_in: Rc<Barrier>,
) -> io::Result<usize> {
    let stream = TcpStream::connect(addr).await?;
    let pool = BufferPool::new(16, 1024)?;
    let mut lines = BufRecv::new(stream.recv_pooled(&pool)).lines();
    let expect = |line: Option<String>, want: &str| match line {
        Some(line) if line == want => Ok(()),
        other => Err(io::Error::other(format!(
            "{name}: wanted {want:?}, got {other:?}"
        ))),
    };
    expect(lines.next_line().await?, "name?")?;
    let (res, _) = stream.write_all(format!("{name}\n").into_bytes()).await;
    res?;
    expect(lines.next_line().await?, &format!("welcome, {name}"))?;
    // Everyone is subscribed before anyone speaks, so nobody misses a line.
    everyone_in.wait().await;
    for n in 1..=2 {
        let (res, _) = stream
            .write_all(format!("{name} says {n}\n").into_bytes())
            .await;
        res?;
    }
    let mut heard = 0;
    while heard < 4 {
        let Some(line) = lines.next_line().await? else {
            return Err(io::Error::other(format!("{name}: the server hung up")));
        };
        if line.starts_with("* ") {
            continue; // someone joined
        }
        let (from, text) = line
            .split_once(": ")
            .ok_or_else(|| io::Error::other(format!("{name}: odd line {line:?}")))?;
        if from == name
            || !names.contains(&from)
            || text != format!("{from} says {}", text.chars().last().unwrap_or('?'))
        {
            return Err(io::Error::other(format!(
                "{name}: unexpected line {line:?}"
            )));
        }
        println!("{name} heard {line:?}");
        heard += 1;
    }
    Ok(heard)
}
