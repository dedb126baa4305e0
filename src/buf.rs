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
