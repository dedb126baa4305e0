//! Buffers the kernel may read from ([`IoBuf`]) or write into ([`IoBufMut`]).
//!
//! An operation takes its buffer by value and gives it back with the result, so the buffer
//! is owned by the operation (and, if the operation's future is dropped, by its driver slot)
//! for exactly as long as the kernel may touch it. What makes that sound is the traits'
//! contract: the memory the kernel sees stays put when the buffer value is moved.
//!
//! # Invariants
//!
//! - (B1) Every implementation below points into heap or `'static` memory owned by the value,
//!   which does not move when the value moves and is not freed before the value is dropped.

use bytes::{Bytes, BytesMut};

/// A buffer the kernel may read from, passed to an operation by value.
///
/// # Safety
///
/// `stable_ptr()` must point to `bytes_total()` bytes, of which the first `bytes_init()` are
/// initialised, and that memory must stay valid and at the same address when the value is moved,
/// until it is dropped. Implementations for buffers stored inline (such as `[u8; N]`) are unsound.
pub unsafe trait IoBuf: Unpin + 'static {
    /// Where the buffer's bytes start.
    fn stable_ptr(&self) -> *const u8;

    /// How many bytes are initialised (for a `Vec`, its length): what a write sends.
    fn bytes_init(&self) -> usize;

    /// How many bytes the buffer can hold (for a `Vec`, its capacity): what a read may fill.
    fn bytes_total(&self) -> usize;
}

/// A buffer the kernel may write into.
///
/// # Safety
///
/// As for [`IoBuf`]; and `stable_mut_ptr()` must be valid for writes of `bytes_total()` bytes.
pub unsafe trait IoBufMut: IoBuf {
    /// Where the kernel may write.
    fn stable_mut_ptr(&mut self) -> *mut u8;

    /// Records that the first `init` bytes are initialised (a read wrote them). Never shrinks
    /// the initialised part.
    ///
    /// # Safety
    ///
    /// The first `init` bytes must really be initialised, and `init <= bytes_total()`.
    unsafe fn set_init(&mut self, init: usize);
}

// SAFETY: (B1) a Vec's elements live on the heap and do not move when the Vec does.
unsafe impl IoBuf for Vec<u8> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: (B1) as above; the spare capacity is writable.
unsafe impl IoBufMut for Vec<u8> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, init: usize) {
        if self.len() < init {
            // SAFETY: the caller guarantees the first `init <= capacity` bytes are initialised.
            unsafe { self.set_len(init) };
        }
    }
}

// SAFETY: (B1) as above; every byte of a boxed slice is initialised already.
unsafe impl IoBufMut for Box<[u8]> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, _: usize) {}
}

// SAFETY: (B1) `BytesMut` owns its heap region uniquely; moving the handle does not move it.
unsafe impl IoBuf for BytesMut {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: (B1) as above; its spare capacity is writable.
unsafe impl IoBufMut for BytesMut {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, init: usize) {
        if self.len() < init {
            // SAFETY: the caller guarantees the first `init <= capacity` bytes are initialised.
            unsafe { self.set_len(init) };
        }
    }
}

/// `IoBuf` for read-only, fully initialised byte containers whose bytes live on the heap or in
/// static memory: length is both what is initialised and what the buffer holds.
macro_rules! impl_io_buf_for_fixed {
    ($($ty:ty => $why:literal),* $(,)?) => {$(
        #[doc = $why]
        // SAFETY: (B1) the bytes live on the heap (kept alive by the value) or in static memory,
        // do not move when the value moves, and are all initialised.
        unsafe impl IoBuf for $ty {
            fn stable_ptr(&self) -> *const u8 {
                self.as_ptr()
            }
            fn bytes_init(&self) -> usize {
                self.len()
            }
            fn bytes_total(&self) -> usize {
                self.len()
            }
        }
    )*};
}

impl_io_buf_for_fixed! {
    Box<[u8]> => "A boxed slice: its heap bytes.",
    Bytes => "`Bytes`: shared heap or static bytes it keeps alive and never mutates (read-only).",
    &'static [u8] => "A static byte slice.",
    &'static str => "A static string's bytes.",
}

/// A range of a buffer, passed to an operation in place of the whole buffer (to write its tail
/// after a short write, or read into its unfilled part). [`into_inner`](Slice::into_inner) gives
/// the buffer back.
///
/// # Examples
///
/// ```
/// use ringloop::{IoBuf, IoBufExt, Slice};
///
/// let slice: Slice<Vec<u8>> = b"hello world".to_vec().slice(6..);
/// assert_eq!(slice.bytes_init(), 5);
/// assert_eq!(slice.into_inner(), b"hello world");
/// ```
#[derive(Debug)]
pub struct Slice<T> {
    buf: T,
    begin: usize,
    end: usize,
}

impl<T: IoBuf> Slice<T> {
    /// Where the range starts in the buffer.
    pub fn begin(&self) -> usize {
        self.begin
    }

    /// Where the range ends in the buffer.
    pub fn end(&self) -> usize {
        self.end
    }

    /// The whole buffer back.
    pub fn into_inner(self) -> T {
        self.buf
    }
}

/// Turns a buffer into a [`Slice`] of itself.
pub trait IoBufExt: IoBuf + Sized {
    /// The bytes `range` of the buffer (within `bytes_total`).
    ///
    /// # Panics
    ///
    /// If the range reaches beyond `bytes_total()`.
    fn slice(self, range: impl std::ops::RangeBounds<usize>) -> Slice<Self> {
        use std::ops::Bound;
        let begin = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&n) => n + 1,
            Bound::Excluded(&n) => n,
            Bound::Unbounded => self.bytes_total(),
        };
        assert!(
            begin <= end && end <= self.bytes_total(),
            "slice {begin}..{end} out of the buffer"
        );
        Slice {
            buf: self,
            begin,
            end,
        }
    }
}

impl<T: IoBuf> IoBufExt for T {}

// SAFETY: (B1) the range lies inside the inner buffer, whose memory is stable under moves.
unsafe impl<T: IoBuf> IoBuf for Slice<T> {
    fn stable_ptr(&self) -> *const u8 {
        self.buf.stable_ptr().wrapping_add(self.begin)
    }
    fn bytes_init(&self) -> usize {
        self.buf.bytes_init().clamp(self.begin, self.end) - self.begin
    }
    fn bytes_total(&self) -> usize {
        self.end - self.begin
    }
}

// SAFETY: (B1) as above; writes land inside the range.
unsafe impl<T: IoBufMut> IoBufMut for Slice<T> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.buf.stable_mut_ptr().wrapping_add(self.begin)
    }
    unsafe fn set_init(&mut self, init: usize) {
        // Only contiguous growth: if bytes before `begin` were never initialised, marking
        // `begin + init` would claim them too.
        if self.begin <= self.buf.bytes_init() {
            // SAFETY: bytes up to `begin` are initialised (checked just above) and the caller
            // guarantees the next `init`.
            unsafe { self.buf.set_init(self.begin + init) };
        }
    }
}
