//! `BufRecv`: lines and delimited frames from a pooled receive, cancel safe.

use std::future::poll_fn;
use std::io;
use std::task::{Context, Poll};

use super::pool::{PooledBuf, RecvStream};

/// A buffered reader over a [`RecvStream`]: `fill_buf`/`consume`, `read_until`, `read_line`
/// and [`lines`](Self::lines), as tokio's `AsyncBufReadExt` offers on a `BufReader`.
///
/// It reads the pool's buffers in place: bytes are copied once, into what the caller is
/// given. A chunk is returned to the pool as soon as it is consumed, and a line still
/// incomplete is kept in a small buffer of the reader's own, so a connection idle in the
/// middle of a line holds no pool buffer.
///
/// **Cancel safe throughout**, unlike a plain `read`: the receive underneath keeps what
/// arrives while nobody waits, and a `read_line` or `next_line` given up on (a `select!` whose
/// other branch won) keeps the part of the line it had read for the next call. This makes it
/// the reader to use in a `select!` loop.
///
/// A line over [`set_max_line`](Self::set_max_line) bytes is an `InvalidData` error for that
/// line; the rest of it is skipped and the next line reads normally. A line that is not UTF-8
/// is an `InvalidData` error from `read_line` and `next_line` (`read_until` takes any bytes).
///
/// # Examples
///
/// ```
/// use ringloop::net::{BufRecv, BufferPool, TcpListener, TcpStream};
///
/// ringloop::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let client = ringloop::spawn(async move {
///         let stream = TcpStream::connect(addr).await.unwrap();
///         let (res, _) = stream.write_all(b"HELLO\r\nworld\nlast".to_vec()).await;
///         res.unwrap();
///     });
///     let (stream, _) = listener.accept().await.unwrap();
///     let pool = BufferPool::new(16, 4096).unwrap();
///     let mut lines = BufRecv::new(stream.recv_pooled(&pool)).lines();
///     let mut got = Vec::new();
///     while let Some(line) = lines.next_line().await.unwrap() {
///         got.push(line);
///     }
///     assert_eq!(got, ["HELLO", "world", "last"]);
///     client.await.unwrap();
/// });
/// ```
#[doc(alias = "BufReader")]
#[derive(Debug)]
pub struct BufRecv {
    chunks: RecvStream,
    /// The chunk being read, and how much of it is consumed.
    current: Option<PooledBuf>,
    pos: usize,
    /// The bytes of a line `read_line` has begun and not finished.
    partial: Vec<u8>,
    /// Skipping the rest of a line that went over `max_line`.
    skipping: bool,
    max_line: usize,
    /// The stream ended (or failed; the error was returned).
    done: bool,
}

impl BufRecv {
    /// Reads `chunks` through a buffer.
    pub fn new(chunks: RecvStream) -> BufRecv {
        BufRecv {
            chunks,
            current: None,
            pos: 0,
            partial: Vec::new(),
            skipping: false,
            max_line: usize::MAX,
            done: false,
        }
    }

    /// The longest line [`read_line`](Self::read_line) and [`Lines::next_line`] accept, its
    /// end of line included (default: no limit). A peer that sends a longer one gets an
    /// `InvalidData` error for it instead of growing the reader's memory without bound.
    pub fn set_max_line(&mut self, bytes: usize) {
        self.max_line = bytes.max(1);
    }

    /// The bytes received and not consumed yet, in the current chunk.
    pub fn buffer(&self) -> &[u8] {
        match &self.current {
            Some(chunk) => &chunk[self.pos..],
            None => &[],
        }
    }

    /// Polls for buffered bytes: the rest of the current chunk, or the next chunk once it
    /// arrives. Empty at end of stream.
    ///
    /// # Errors
    ///
    /// The socket's error (once; then end of stream).
    pub fn poll_fill_buf(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        if self.current.is_none() && !self.done {
            match std::task::ready!(self.chunks.poll_next(cx)) {
                Some(Ok(chunk)) => {
                    self.current = Some(chunk);
                    self.pos = 0;
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Poll::Ready(Err(e));
                }
                None => self.done = true,
            }
        }
        Poll::Ready(Ok(self.buffer()))
    }

    /// Waits for buffered bytes; see [`poll_fill_buf`](Self::poll_fill_buf). Consume what
    /// was used with [`consume`](Self::consume).
    ///
    /// # Errors
    ///
    /// The socket's error.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn fill_buf(&mut self) -> io::Result<&[u8]> {
        poll_fn(|cx| self.poll_fill_buf(cx).map_ok(|_| ())).await?;
        Ok(self.buffer())
    }

    /// Marks `n` buffered bytes as read; a chunk read to its end goes back to the pool.
    ///
    /// # Panics
    ///
    /// If `n` is more than [`buffer`](Self::buffer) holds.
    pub fn consume(&mut self, n: usize) {
        let left = self.buffer().len();
        assert!(
            n <= left,
            "BufRecv::consume: {n} bytes consumed, {left} buffered"
        );
        self.pos += n;
        if n == left {
            self.current = None;
            self.pos = 0;
        }
    }

    /// Appends bytes to `buf` up to and including `delim`, or to the end of the stream.
    /// Returns how many bytes this call appended; 0 at end of stream.
    ///
    /// # Errors
    ///
    /// The socket's error; what was appended before it stays in `buf`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe in tokio's sense: bytes read before the future was dropped are in `buf`,
    /// and calling again continues the same frame.
    pub async fn read_until(&mut self, delim: u8, buf: &mut Vec<u8>) -> io::Result<usize> {
        let mut appended = 0;
        loop {
            let available = self.fill_buf().await?;
            if available.is_empty() {
                return Ok(appended);
            }
            let (take, found) = match memchr(delim, available) {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            buf.extend_from_slice(&available[..take]);
            appended += take;
            self.consume(take);
            if found {
                return Ok(appended);
            }
        }
    }

    /// Appends the next line, its `\n` included, to `buf`; returns its length in bytes, 0 at
    /// end of stream. A last line without `\n` is returned whole.
    ///
    /// # Errors
    ///
    /// The socket's error; `InvalidData` for a line that is not UTF-8 or is longer than
    /// [`set_max_line`](Self::set_max_line) (that line is dropped, the next one reads
    /// normally). `buf` is left as it was on error.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a line begun when the future was dropped is kept in the reader and
    /// completed by the next call; `buf` gets only whole lines.
    pub async fn read_line(&mut self, buf: &mut String) -> io::Result<usize> {
        poll_fn(|cx| self.poll_line(cx, buf)).await
    }

    fn poll_line(&mut self, cx: &mut Context<'_>, buf: &mut String) -> Poll<io::Result<usize>> {
        loop {
            if let Err(e) = std::task::ready!(self.poll_fill_buf(cx)) {
                return Poll::Ready(Err(e));
            }
            // The fields, not `buffer()`: `partial` is written while the chunk is read.
            let available = match &self.current {
                Some(chunk) => &chunk[self.pos..],
                None => &[][..],
            };
            if available.is_empty() {
                // End of stream: a last line without its newline is still a line.
                self.skipping = false;
                return Poll::Ready(self.finish_line(buf));
            }
            let (take, found) = match memchr(b'\n', available) {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            if self.skipping {
                self.consume(take);
                self.skipping = !found;
                continue;
            }
            if self.partial.len() + take > self.max_line {
                // Drop the line: its rest is skipped, up to its newline.
                self.partial = Vec::new();
                self.consume(take);
                self.skipping = !found;
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a line is longer than {} bytes", self.max_line),
                )));
            }
            self.partial.extend_from_slice(&available[..take]);
            self.consume(take);
            if found {
                return Poll::Ready(self.finish_line(buf));
            }
        }
    }

    /// Moves the line in `partial` (maybe empty) to `buf`.
    fn finish_line(&mut self, buf: &mut String) -> io::Result<usize> {
        let bytes = std::mem::take(&mut self.partial);
        let n = bytes.len();
        match String::from_utf8(bytes) {
            Ok(line) => {
                buf.push_str(&line);
                Ok(n)
            }
            Err(_) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a line is not valid UTF-8",
            )),
        }
    }

    /// The lines, without their `\n` or `\r\n`.
    pub fn lines(self) -> Lines {
        Lines {
            reader: self,
            line: String::new(),
        }
    }

    /// The receive stream, and the bytes received and not consumed yet (a line begun by
    /// `read_line` first, then the rest of the current chunk).
    pub fn into_parts(self) -> (RecvStream, Vec<u8>) {
        let mut rest = self.partial;
        if let Some(chunk) = &self.current {
            rest.extend_from_slice(&chunk[self.pos..]);
        }
        (self.chunks, rest)
    }
}

/// The lines of a [`BufRecv`], from [`BufRecv::lines`].
#[derive(Debug)]
pub struct Lines {
    reader: BufRecv,
    line: String,
}

impl Lines {
    /// The next line without its `\n` or `\r\n`; `None` at end of stream.
    ///
    /// # Errors
    ///
    /// As [`BufRecv::read_line`]: after an `InvalidData` error the next call reads the next
    /// line.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe (see [`BufRecv::read_line`]).
    pub async fn next_line(&mut self) -> io::Result<Option<String>> {
        self.line.clear();
        if self.reader.read_line(&mut self.line).await? == 0 {
            return Ok(None);
        }
        if self.line.ends_with('\n') {
            self.line.pop();
            if self.line.ends_with('\r') {
                self.line.pop();
            }
        }
        Ok(Some(std::mem::take(&mut self.line)))
    }

    /// The reader underneath.
    pub fn into_inner(self) -> BufRecv {
        self.reader
    }
}

/// The first `byte` in `haystack` (the standard library's slice search, which the compiler
/// vectorises well enough for lines).
fn memchr(byte: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == byte)
}
