//! Networking over io_uring: TCP, UDP and Unix sockets, with pooled multishot receive.
//!
//! Every type here follows one shape: buffers go in by value and come back with the result,
//! `let (res, buf) = stream.read(buf).await;`. Socket options are set through `nix`; the
//! operations themselves live in `driver/op/`, one file per opcode.
#![forbid(unsafe_code)]

mod accept;
mod buf_recv;
mod copy;
mod lookup;
mod pool;
pub(crate) mod ring_socket;
mod send_queue;
mod send_to_queue;
pub(crate) mod socket;
mod tcp;
mod udp;
mod udp_pooled;
pub mod unix;

pub use buf_recv::{BufRecv, Lines};
pub use copy::copy_bidirectional;
pub use lookup::lookup_host;
pub use pool::{BufferPool, PooledBuf, RecvStream};
pub use send_queue::SendQueue;
pub use send_to_queue::SendToQueue;
pub use socket::ListenOptions;
pub use tcp::{Incoming, OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpSocket, TcpStream};
pub use udp::UdpSocket;
pub use udp_pooled::{PooledDatagram, RecvFromStream};
pub use unix::{UnixDatagram, UnixListener, UnixStream};
