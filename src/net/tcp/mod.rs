//! TCP: a listener and a stream, one type per file, both thin layers over `RingSocket` and
//! `Acceptor`.

mod listener;
mod socket;
mod stream;

pub use listener::{Incoming, TcpListener};
pub use socket::TcpSocket;
pub use stream::{OwnedReadHalf, OwnedWriteHalf, TcpStream};
