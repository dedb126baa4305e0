//! TCP: a listener and a stream, one type per file, both thin layers over `RingSocket` and
//! `Acceptor`.

mod listener;
mod stream;

pub use listener::{Incoming, TcpListener};
pub use stream::{OwnedReadHalf, OwnedWriteHalf, TcpStream};
